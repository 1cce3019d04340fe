"""Styles live in web/src/styles/, never in the templates: the content security policy's style-src
has no 'unsafe-inline', so a ``<style>`` block or a ``style=`` attribute would be ignored by the
browser (and reported as a violation). Checked on the template sources, not a rendered page, so
a branch no test renders is covered too."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = sorted((ROOT / "server" / "templates").rglob("*.html"))
# `<style` opening a block, or a style attribute (any case, any quoting, even with no value).
INLINE_STYLE = re.compile(r"<style[\s>]|\sstyle\s*=", re.IGNORECASE)


def test_there_are_templates_to_check() -> None:
    assert len(TEMPLATES) > 10


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_template_has_no_inline_style(path: Path) -> None:
    found = [
        f"{path.name}:{n}: {line.strip()[:120]}"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if INLINE_STYLE.search(line)
    ]
    assert found == [], "move these into web/src/styles/ (a class, or an SVG attribute):\n" + (
        "\n".join(found)
    )


def _palette() -> list[str]:
    """The presence colours the server hands out (``PALETTE = [...]`` wherever it lives)."""
    for path in sorted((ROOT / "server").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "PALETTE" for t in node.targets
            ):
                return list(ast.literal_eval(node.value))
    raise AssertionError("no PALETTE in server/")


def test_every_presence_colour_has_its_class() -> None:
    # The plan list colours each person's dot with a class named after their colour.
    css = "".join(p.read_text() for p in (ROOT / "web" / "src" / "styles").glob("*.css"))
    palette = _palette()
    assert palette
    for colour in palette:
        rule = f".dot-{colour.lstrip('#').lower()} {{ background: {colour.lower()}; }}"
        assert rule in css.lower(), f"add `{rule}` to web/src/styles/plan-list.css"
