"""Every reader is safe at any depth: a plan nested deeper than the server now accepts (written
before it checked) is read down to MAX_DEPTH and no further, never with a RecursionError."""

from __future__ import annotations

from pycrdt import Doc, XmlElement, XmlText

import crdt
from crdt import structure

MAX_DEPTH = 64  # the limit the server states (crdt.MAX_DEPTH), written out as the contract


def nested(depth: int) -> Doc:
    doc = crdt.new_doc()
    with doc.transaction():
        el = crdt.fragment(doc).children.append(XmlElement("blockquote", {}))
        for _ in range(depth - 1):
            el = el.children.append(XmlElement("blockquote", {}))
        lst = el.children.append(XmlElement("taskList", {}))
        item = lst.children.append(XmlElement("taskItem", {"checked": False, "id": "t_buried"}))
        item.children.append(XmlElement("paragraph", {}, [XmlText("buried")]))
        top = crdt.fragment(doc).children.append(XmlElement("paragraph", {}))
        top.children.append(XmlText("on top"))
    return doc


def test_every_reader_survives_a_plan_nested_1200_deep() -> None:
    doc = nested(1200)
    assert "on top" in crdt.to_markdown(doc)
    assert crdt.to_prosemirror(doc)["content"][-1]["content"][0]["text"] == "on top"
    assert not crdt.read_structure(doc).tasks  # the buried task is past the limit
    reader = crdt.StructureReader(doc)
    reader.read()
    crdt.missing_ids(doc)
    crdt.assign_ids(doc)
    assert list(structure._walk(crdt.fragment(doc)))


def test_within_the_limit_everything_is_read() -> None:
    doc = nested(MAX_DEPTH - 4)
    assert len(crdt.read_structure(doc).tasks) == 1
    assert "buried" in crdt.to_markdown(doc)


def test_writing_prosemirror_deeper_than_the_limit_is_refused() -> None:
    node: dict = {"type": "paragraph"}
    for _ in range(MAX_DEPTH + 5):
        node = {"type": "blockquote", "content": [node]}
    try:
        crdt.write_prosemirror(crdt.new_doc(), {"type": "doc", "content": [node]})
    except ValueError as exc:
        assert "nested deeper" in str(exc)
    else:
        raise AssertionError("accepted")
