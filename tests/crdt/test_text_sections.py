"""The words of the plan by section, as the timeline counts what a session changed."""

from __future__ import annotations

from pycrdt import Doc

import crdt


def doc_of(*blocks: dict) -> Doc:
    doc = crdt.new_doc()
    crdt.write_prosemirror(doc, {"type": "doc", "content": list(blocks)})
    return doc


def heading(text: str) -> dict:
    return {"type": "heading", "attrs": {"level": 2}, "content": [{"type": "text", "text": text}]}


def para(*texts: str, bold: str | None = None) -> dict:
    content = [{"type": "text", "text": t} for t in texts]
    if bold:
        content.append({"type": "text", "text": bold, "marks": [{"type": "bold"}]})
    return {"type": "paragraph", "content": content}


def test_words_by_section() -> None:
    doc = doc_of(
        para("Before any heading"),
        heading("Goals"),
        para("Grow adoption ", bold="fast"),
        para("a < b & c"),
        heading("Risks"),
        para("Champion leaving"),
    )
    words = {k: v.split() for k, v in crdt.text_sections(doc).items()}
    assert words == {
        "": ["Before", "any", "heading"],
        "Goals": ["Grow", "adoption", "fast", "a", "<", "b", "&", "c"],
        "Risks": ["Champion", "leaving"],
    }
