"""Constants that both the Python and the editor's JavaScript hold must agree.

The JavaScript modules of web/src/lib are imported in Node and their values printed as JSON;
each test compares one of them with the Python value it copies. A copy changed on one side
only fails here, with both values in the message.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from crdt import structure
from server import identity, live
from server.plan import summary

ROOT = Path(__file__).resolve().parents[1]

# Headings typed the many ways people type them: the editor and the server must read each alike.
HEADINGS = [
    "Key contacts",
    "KEY CONTACTS:",
    "  Key   contacts  ",
    "Key contacts.",
    "Key contacts :",
    "Key contacts::",
    "Risks.:",
    "Key results",
    "Measures of success",
    "KPIs",
    "Major concerns",
    "Milestones",
    "Key: contacts",
    "Contacts and more",
    "Risk",
    "",
]

SCRIPT = """
const lib = (name) => import(process.cwd() + '/web/src/lib/' + name)
const sections = await lib('sections.js')
const tasks = await lib('tasks.js')
const connection = await lib('connection.js')
const due = await lib('duedate.js')
const ids = await lib('ids.js')
const headings = JSON.parse(process.argv[1])
const now = new Date(2026, 10, 24, 12)
const inDays = (n) => due.isoDate(new Date(2026, 10, 24 + n, 12))
const cellText = (cell) => cell.content[0].content.map((x) => x.text).join('')
const headers = (nodes) => nodes.filter((n) => n.type === 'table')
  .map((t) => t.content[0].content.map(cellText))
process.stdout.write(JSON.stringify({
  sectionHeadings: sections.SECTION_HEADINGS,
  sectionKinds: headings.map((h) => sections.sectionKind(h)),
  templates: sections.SECTION_TEMPLATES.map((t) => ({
    value: t.value, label: t.label, headers: headers(t.content()),
  })),
  sides: sections.SIDES,
  statuses: tasks.STATUSES.map((s) => s.value),
  closeCodes: connection.CLOSE_CODES,
  soonDays: due.SOON_DAYS,
  dueStates: Array.from({ length: 40 }, (_, n) => [n, due.dueState(inDays(n), now)]),
  idPrefixes: ids.ID_PREFIX,
}))
"""


@pytest.fixture(scope="module")
def js() -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("`node` is not on PATH")
    done = subprocess.run(
        [node, "--input-type=module", "-e", SCRIPT, json.dumps(HEADINGS)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def snake(name: str) -> str:
    """keyResults and key-results, as Python spells them: key_results."""
    return re.sub(r"(?<=[a-z])([A-Z])", r"_\1", name).replace("-", "_").lower()


def test_section_headings(js: dict[str, Any]) -> None:
    python = {kind: list(heads) for kind, heads in structure.SECTION_HEADINGS.items()}
    assert {snake(k): v for k, v in js["sectionHeadings"].items()} == python


def test_a_heading_names_the_same_section_in_the_editor_and_the_server(
    js: dict[str, Any],
) -> None:
    editor = [snake(k) if k else None for k in js["sectionKinds"]]
    server = [structure.section_kind(h) for h in HEADINGS]
    assert dict(zip(HEADINGS, editor, strict=True)) == dict(zip(HEADINGS, server, strict=True))


def test_a_section_the_insert_menu_adds_is_read_by_the_server(js: dict[str, Any]) -> None:
    for template in js["templates"]:
        kind = snake(template["value"])
        assert structure.section_kind(template["label"]) == kind, template
        for columns in template["headers"]:
            known = structure.COLUMNS[kind]
            unread = [c for c in columns if c.lower() not in known]
            assert not unread, f"{kind} columns the server does not read: {unread}"


def test_sides(js: dict[str, Any]) -> None:
    assert js["sides"] == list(structure.SIDES) == list(identity.SIDES)


def test_task_statuses(js: dict[str, Any]) -> None:
    assert js["statuses"] == list(structure.STATUSES)


def test_stable_id_prefixes(js: dict[str, Any]) -> None:
    assert js["idPrefixes"] == structure._ID_OWNERS


def test_close_codes_the_editor_names_are_the_servers(js: dict[str, Any]) -> None:
    close = live.Close
    assert js["closeCodes"] == {name: int(close[name]) for name in js["closeCodes"]}
    # Every code the connection indicator handles by name must be among them.
    source = ROOT.joinpath("web/src/lib/connection.js").read_text()
    used = set(re.findall(r"\bcodes\.([A-Z_]+)", source))
    assert used and used <= set(js["closeCodes"]), used - set(js["closeCodes"])


def test_due_soon_days(js: dict[str, Any]) -> None:
    soon_days = summary.SOON_DAYS
    assert js["soonDays"] == soon_days
    soon = [n for n, state in js["dueStates"] if state == "soon"]
    assert soon == list(range(soon_days + 1)), "the editor's amber chips: today ... SOON_DAYS"
    # The words that tell people so.
    assert f"Due soon means within {soon_days} days" in ROOT.joinpath("README.md").read_text()
    dashboard = ROOT.joinpath("server/templates/dashboard.html").read_text()
    assert f"Due in {soon_days} days" in dashboard
