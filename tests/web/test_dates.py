"""The editor's due-date parsing (web/src/lib/duedate.js), run in Node with a fixed "now"."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Tuesday 24 November 2026, noon local time.
SCRIPT = """
import { parseDue, quickChoices, dueState, dueLabel } from './web/src/lib/duedate.js'
const now = new Date(2026, 10, 24, 12)
const inputs = JSON.parse(process.argv[1])
process.stdout.write(JSON.stringify({
  parsed: Object.fromEntries(inputs.map((s) => [s, parseDue(s, now)])),
  quick: quickChoices(now).map((c) => [c.key, c.date]),
  states: ['2026-11-23', '2026-11-24', '2026-12-01', '2026-12-02', 'nope']
    .map((d) => dueState(d, now)),
  labels: [dueLabel('2026-12-12', now), dueLabel('2027-01-05', now)],
}))
"""

CASES = {
    "2026-12-12": "2026-12-12",
    "2026-02-30": None,  # not a real day
    "today": "2026-11-24",
    "tomorrow": "2026-11-25",
    "tmr": "2026-11-25",
    "fri": "2026-11-27",
    "friday": "2026-11-27",
    "tue": "2026-12-01",  # the next Tuesday, not today
    "mon": "2026-11-30",
    "+3d": "2026-11-27",
    "3d": "2026-11-27",
    "+2w": "2026-12-08",
    "+1m": "2026-12-24",
    "eom": "2026-11-30",
    "eow": "2026-11-27",
    "12dec": "2026-12-12",
    "dec12": "2026-12-12",
    "5jan": "2027-01-05",  # the next one
    "12/31": "2026-12-31",
    "fri.": "2026-11-27",  # trailing punctuation from a sentence
    "": None,
    "soon": None,
    "m": None,  # too short to be a weekday
}


@pytest.fixture(scope="module")
def results() -> dict:
    node = shutil.which("node")
    if node is None:
        pytest.fail("`node` is not on PATH")
    done = subprocess.run(
        [node, "--input-type=module", "-e", SCRIPT, json.dumps(list(CASES))],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_typed_due_dates(results: dict) -> None:
    assert results["parsed"] == CASES


def test_quick_choices(results: dict) -> None:
    assert results["quick"] == [
        ["today", "2026-11-24"],
        ["tomorrow", "2026-11-25"],
        ["next-monday", "2026-11-30"],
        ["next-week", "2026-12-01"],
        ["end-of-month", "2026-11-30"],
    ]


def test_chip_state_and_label(results: dict) -> None:
    assert results["states"] == ["overdue", "soon", "soon", "later", "invalid"]
    assert results["labels"] == ["Due 12 Dec", "Due 5 Jan 2027"]
