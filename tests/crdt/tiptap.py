"""The real Tiptap schema, Yjs and y-tiptap (through tiptap_yjs.mjs in Node), and a sample plan."""

from __future__ import annotations

import base64
import functools
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("tiptap_yjs.mjs")


@dataclass(frozen=True)
class Tiptap:
    node: str

    def _run(self, mode: str, stdin: str = "") -> Any:
        result = subprocess.run(
            [self.node, str(SCRIPT), mode],
            input=stdin,
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
        )
        if result.returncode != 0:
            pytest.fail(f"tiptap_yjs.mjs {mode} failed:\n{result.stderr}")
        return json.loads(result.stdout)

    def encode(self, pm_json: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
        """(Yjs update written by y-tiptap, the doc as Tiptap's getJSON() gives it)."""
        out = self._run("encode", json.dumps(pm_json))
        return base64.b64decode(out["update"]), out["json"]

    def decode(self, update: bytes) -> dict[str, Any]:
        """The ProseMirror JSON that y-tiptap builds from the update (what the editor shows)."""
        return self._run("decode", base64.b64encode(update).decode())

    def schema(self) -> dict[str, Any]:
        return self._run("schema")


@functools.cache
def tiptap() -> Tiptap:
    """The Node bridge; fails (not skips) when Node or the project's node_modules are missing."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("`node` is not on PATH; these tests check crdt/ against the real Yjs")
    if not (ROOT / "node_modules" / "@tiptap" / "y-tiptap").is_dir():
        pytest.fail(f"{ROOT / 'node_modules'} is missing: run `npm ci` (or `make test-setup`)")
    return Tiptap(node)


def text(value: str, *marks: str | dict[str, Any]) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "text", "text": value}
    if marks:
        node["marks"] = [{"type": m} if isinstance(m, str) else m for m in marks]
    return node


def para(*content: dict[str, Any]) -> dict[str, Any]:
    return {"type": "paragraph", "content": list(content)} if content else {"type": "paragraph"}


def item(kind: str, *content: dict[str, Any], **attrs: Any) -> dict[str, Any]:
    node: dict[str, Any] = {"type": kind, "content": list(content)}
    if attrs:
        node["attrs"] = attrs
    return node


def link(href: str, target: str | None = "_blank") -> dict[str, Any]:
    attrs = {"href": href, "target": target, "rel": "noopener noreferrer nofollow"}
    return {"type": "link", "attrs": {**attrs, "class": None, "title": None}}


def cell(kind: str, *content: dict[str, Any], **attrs: Any) -> dict[str, Any]:
    defaults = {"colspan": 1, "rowspan": 1, "colwidth": None, "align": None}
    return {"type": kind, "attrs": {**defaults, **attrs}, "content": list(content)}


HARD_BREAK = {"type": "hardBreak"}
#: The plan-document attrs of a task the editor has not given an id yet.
NO_PLAN_ATTRS: dict[str, Any] = {"id": None, "status": None, "milestone": None}

#: A plan using every construct, exactly as Tiptap's getJSON() gives it (checked in the tests).
SAMPLE: dict[str, Any] = {
    "type": "doc",
    "content": [
        {"type": "heading", "attrs": {"level": 1}, "content": [text("Acme × Globex 🚀")]},
        para(
            text("Goals: "),
            text("grow", "bold"),
            text(" usage", "bold", "italic"),
            text(", "),
            text("old", "strike"),
            text(", "),
            text("api_key", "code"),
            text(", "),
            text("docs", link("https://example.com/a(b)")),
            text(" and "),
            text("this", "underline"),
            text("."),
            HARD_BREAK,
            text("*not bold* # 1. <b> | x"),
        ),
        para(),
        {"type": "heading", "attrs": {"level": 2}, "content": [text("Milestones")]},
        item(
            "bulletList",
            item(
                "listItem",
                para(text("Kick-off")),
                item(
                    "orderedList",
                    item("listItem", para(text("agenda"))),
                    item("listItem", para(text("invite"))),
                    start=3,
                    type=None,
                ),
            ),
            item("listItem", para(text("Go live"))),
        ),
        item(
            "taskList",
            item(
                "taskItem",
                para(text("Sign SOW")),
                item(
                    "taskList",
                    item("taskItem", para(text("legal review")), checked=True, **NO_PLAN_ATTRS),
                ),
                checked=False,
                **NO_PLAN_ATTRS,
            ),
            item("taskItem", para(text("Done thing")), checked=True, **NO_PLAN_ATTRS),
        ),
        item(
            "table",
            item(
                "tableRow",
                cell("tableHeader", para(text("Owner")), colwidth=[150]),
                cell("tableHeader", para(text("Due")), align="right"),
                id=None,
            ),
            item(
                "tableRow",
                cell("tableCell", para(text("Casey")), para(text("a|b"))),
                cell("tableCell", para(text("Q3"))),
                id=None,
            ),
            item("tableRow", cell("tableCell", para(text("Both")), colspan=2), id=None),
        ),
        item("blockquote", para(text("Quote"))),
        {"type": "codeBlock", "attrs": {"language": "python"}, "content": [text("x = 1\n")]},
        {"type": "codeBlock", "attrs": {"language": None}, "content": [text("no lang")]},
        {"type": "horizontalRule"},
        para(text("End")),
    ],
}
