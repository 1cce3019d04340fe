"""The editor's link check (web/src/lib/links.js) agrees with the server's (crdt.prosemirror):
a target the editor lets through is one every export keeps."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from crdt.prosemirror import safe_href
from tests.server.test_link_targets import BAD, GOOD

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import { isAllowedHref, normalizeHref } from './web/src/lib/links.js'
const inputs = JSON.parse(process.argv[1])
process.stdout.write(JSON.stringify({
  allowed: inputs.map((s) => isAllowedHref(s)),
  normalized: inputs.map((s) => normalizeHref(s)),
}))
"""


@pytest.fixture(scope="module")
def verdicts() -> dict[str, list]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("`node` is not on PATH")
    done = subprocess.run(
        [node, "--input-type=module", "-e", SCRIPT, json.dumps([*BAD, *GOOD])],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return json.loads(done.stdout)


def test_the_editor_allows_exactly_what_the_exports_keep(verdicts: dict[str, list]) -> None:
    assert verdicts["allowed"] == [safe_href(h) for h in [*BAD, *GOOD]]


def test_what_the_link_prompt_makes_is_kept(verdicts: dict[str, list]) -> None:
    for given, made in zip([*BAD, *GOOD], verdicts["normalized"], strict=True):
        assert made is None or safe_href(made), (given, made)
