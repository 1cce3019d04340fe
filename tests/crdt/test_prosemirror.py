from __future__ import annotations

import copy
from typing import Any

import pytest
from pycrdt import Doc, XmlElement, XmlFragment, XmlText

from crdt import fragment, new_doc, to_prosemirror, write_prosemirror
from crdt.prosemirror import MARK_ATTRS, NODE_ATTRS
from tests.crdt.tiptap import HARD_BREAK, SAMPLE, cell, item, link, para, row, text, tiptap


def y_tree(parent: XmlFragment | XmlElement) -> list[Any]:
    """The Yjs shape of a fragment: tags, attributes and text deltas."""
    out: list[Any] = []
    for child in parent.children:
        if isinstance(child, XmlText):
            out.append(("text", child.diff()))
        else:
            assert isinstance(child, XmlElement)
            out.append((child.tag, dict(child.attributes), y_tree(child)))
    return out


def written(pm_json: dict[str, Any]) -> Doc:
    doc = new_doc()
    write_prosemirror(doc, pm_json)
    return doc


def test_schema_defaults_match_the_real_tiptap_schema() -> None:
    schema = tiptap().schema()
    assert schema["nodes"] == NODE_ATTRS
    # Same marks, defaults and rank order (ProseMirror sorts a text node's marks by rank).
    assert schema["marks"] == [[name, attrs] for name, attrs in MARK_ATTRS.items()]


def test_sample_is_what_tiptap_get_json_gives() -> None:
    _, as_tiptap = tiptap().encode(SAMPLE)
    assert as_tiptap == SAMPLE


def test_reads_a_document_written_by_y_tiptap() -> None:
    update, _ = tiptap().encode(SAMPLE)
    doc = new_doc()
    doc.apply_update(update)
    assert to_prosemirror(doc) == SAMPLE


def test_written_document_reads_back_in_y_tiptap() -> None:
    doc = written(SAMPLE)
    assert tiptap().decode(doc.get_update()) == SAMPLE


def test_writes_the_same_yjs_shape_as_y_tiptap() -> None:
    update, _ = tiptap().encode(SAMPLE)
    theirs = new_doc()
    theirs.apply_update(update)
    assert y_tree(fragment(written(SAMPLE))) == y_tree(fragment(theirs))


def test_attr_types_survive_the_trip_through_yjs() -> None:
    update, _ = tiptap().encode(SAMPLE)
    doc = new_doc()
    doc.apply_update(update)
    got = to_prosemirror(doc)
    # yrs hands JS numbers back as floats; Tiptap's JSON has integers.
    assert type(got["content"][0]["attrs"]["level"]) is int
    ordered = got["content"][4]["content"][0]["content"][1]
    assert type(ordered["attrs"]["start"]) is int
    header = got["content"][6]["content"][0]["content"][0]
    assert header["attrs"]["colwidth"] == [150] and type(header["attrs"]["colwidth"][0]) is int
    assert got["content"][5]["content"][1]["attrs"]["checked"] is True


@pytest.mark.parametrize(
    "content",
    [
        [],
        [para()],
        [para(text("é😀 x", "bold"), text("y"), HARD_BREAK, text("z", "italic", "strike"))],
        [para(text("a", link("https://a.example", target=None), "bold", "code"))],
        [para(text("a", {"type": "highlight", "attrs": {"color": "red"}}))],
        [item("orderedList", item("listItem", para(text("x"))), start=0, type="a")],
        [item("table", row(cell("tableCell", para(), colwidth=[10, 20])))],
        [{"type": "callout", "attrs": {"tone": "info"}, "content": [para(text("hi"))]}],
    ],
)
def test_round_trip(content: list[dict[str, Any]]) -> None:
    pm = {"type": "doc", "content": content}
    assert to_prosemirror(written(pm)) == pm


def test_write_replaces_the_content_in_one_transaction() -> None:
    doc = written(SAMPLE)
    peer = new_doc()
    peer.apply_update(doc.get_update())
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    replacement = {"type": "doc", "content": [para(text("only this"))]}
    write_prosemirror(doc, replacement)
    assert len(updates) == 1
    assert to_prosemirror(doc) == replacement
    # A peer that had the old content gets exactly the new one from that single update.
    peer.apply_update(updates[0])
    assert to_prosemirror(peer) == replacement


def test_write_fills_defaults_and_skips_nulls_like_y_tiptap() -> None:
    doc = written(
        {
            "type": "doc",
            "content": [
                {
                    "type": "heading",
                    "content": [
                        text("h", {"type": "link", "attrs": {"href": "https://x.example"}})
                    ],
                },
                {"type": "codeBlock", "attrs": {"language": None, "bogus": 1}},
            ],
        }
    )
    heading, code = fragment(doc).children
    assert dict(heading.attributes) == {"level": 1}
    assert heading.children[0].diff() == [
        ("h", {"link": MARK_ATTRS["link"] | {"href": "https://x.example"}})
    ]
    assert dict(code.attributes) == {}


def test_reads_like_tiptap_where_yjs_is_untidy() -> None:
    doc = new_doc()
    frag = fragment(doc)
    with doc.transaction():
        heading = frag.children.append(XmlElement("heading"))  # no level: schema default
        t = heading.children.append(XmlText())
        t.insert(0, "a", {"italic": {}, "bold": True, "comment--AbC+/12=": {"id": "c1"}})
        heading.children.append(XmlText("b"))  # a second text next to the first: merged
        heading.children.append(XmlText("c"))
        cell_el = frag.children.append(XmlElement("tableCell", {"colspan": 2.0, "ychange": "x"}))
        cell_el.children.append(XmlElement("paragraph"))
        frag.children.append(XmlElement("emoji", {"id": 7.5, "label": "Casey"}))
    assert to_prosemirror(doc) == {
        "type": "doc",
        "content": [
            {
                "type": "heading",
                "attrs": {"level": 1},
                "content": [
                    # Known marks by rank, then unknown ones; the overlap hash is stripped.
                    text("a", "bold", "italic", {"type": "comment", "attrs": {"id": "c1"}}),
                    text("bc"),
                ],
            },
            cell("tableCell", para(), colspan=2),
            {"type": "emoji", "attrs": {"id": 7.5, "label": "Casey"}},
        ],
    }


def test_two_marks_of_one_overlapping_type_both_survive() -> None:
    comments = [{"type": "comment", "attrs": {"id": i}} for i in ("c1", "c2")]
    pm = {"type": "doc", "content": [para(text("a", *comments))]}
    got = to_prosemirror(written(pm))
    marks = got["content"][0]["content"][0]["marks"]
    assert sorted(m["attrs"]["id"] for m in marks) == ["c1", "c2"]


def test_write_does_not_mutate_its_input() -> None:
    before = copy.deepcopy(SAMPLE)
    written(SAMPLE)
    assert before == SAMPLE


def test_write_rejects_what_is_not_a_doc() -> None:
    with pytest.raises(ValueError, match="doc"):
        write_prosemirror(new_doc(), para(text("x")))
