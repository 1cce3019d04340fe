"""What a session changed in the text: words gained and lost, section by section."""

from __future__ import annotations

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
