"""What a session changed in the text: words gained and lost, section by section."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import crdt
import persistence
from server.plan.history import text_changes


def test_text_changes_count_the_words_each_section_gained_and_lost() -> None:
    before = {"Goals": "one two three four", "Risks": "x y"}
    after = {"Goals": "one two five three", "New": "a b c"}
    assert text_changes(before, after) == [
        {"section": "Goals", "added": 1, "removed": 1},
        {"section": "New", "added": 3, "removed": 0},
        {"section": "Risks", "added": 0, "removed": 2},
    ]
    long = " ".join(f"w{i}" for i in range(30000))
    assert text_changes({"A": long}, {"A": long + " more words"}) == [
        {"section": "A", "added": 2, "removed": 0}
    ]
    # A long section with a change in its middle is compared word by word, not estimated.
    edited = long.replace("w15000 ", "x y ")
    assert text_changes({"A": long}, {"A": edited}) == [{"section": "A", "added": 2, "removed": 1}]


def test_the_segment_keeper_reads_no_update_until_a_whole_segment_is_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker asks every plan a few seconds after each burst whether a whole segment
    (SEGMENT_UPDATES updates) is logged: the answer comes from the index, and the updates
    are read only once one is (they were read to be counted, a fifth of the worker's time
    at 1,000 plans edited now and then, bench/run.py --scenario rooms)."""
    from server.plan import history

    url = f"sqlite:///{tmp_path / 'tandem.db'}"
    persistence.upgrade(url)
    factory = persistence.make_sessionmaker(persistence.make_engine(url))
    monkeypatch.setattr(history, "SEGMENT_UPDATES", 4)
    reads: list[int] = []
    updates_after = persistence.updates_after

    def counted(**kw: Any) -> Any:
        rows = updates_after(**kw)
        reads.append(len(rows))
        return rows

    monkeypatch.setattr(persistence, "updates_after", counted)
    with persistence.transaction(factory) as s:
        plan = persistence.create_plan(session=s, title="T", customer="C", created_by=None)
        doc = crdt.new_doc()
        updates = []
        for word in ["one", "two", "three"]:
            before = doc.get_state()
            crdt.write_prosemirror(
                doc,
                {
                    "type": "doc",
                    "content": [{"type": "paragraph", "content": [{"type": "text", "text": word}]}],
                },
            )
            updates.append(doc.get_update(before))
        persistence.append_updates(session=s, plan_id=plan.id, entries=[(None, u) for u in updates])
        assert history._new_segments(s, plan.id, "plan", None, None) == []
        assert reads == []  # three logged, a segment is four: nothing read
        before = doc.get_state()
        crdt.write_prosemirror(
            doc,
            {
                "type": "doc",
                "content": [{"type": "paragraph", "content": [{"type": "text", "text": "four"}]}],
            },
        )
        persistence.append_updates(
            session=s, plan_id=plan.id, entries=[(None, doc.get_update(before))]
        )
        (segment,) = history._new_segments(s, plan.id, "plan", None, None)
    assert reads == [4]
    assert segment[0] == 0
