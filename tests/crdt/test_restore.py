"""Restoring old content: the document reads back exactly as the old one, with a change that
leaves untouched blocks alone, and peers that hold the current document converge on it."""

from __future__ import annotations

import random
from datetime import date

from pycrdt import XmlElement, XmlText

import crdt
from crdt.templates import executive_business_review, joint_success_plan


def copy(doc):  # type: ignore[no-untyped-def]
    return crdt.doc_from_updates([doc.get_update()])


def test_restoring_a_whole_other_document() -> None:
    old = crdt.new_doc()
    crdt.write_prosemirror(old, joint_success_plan(date(2026, 1, 1)))
    doc = copy(old)
    crdt.write_prosemirror(doc, executive_business_review(date(2026, 1, 1)))
    peer = copy(doc)
    before = doc.get_state()
    crdt.restore_content(doc, crdt.to_prosemirror(old))
    assert crdt.to_prosemirror(doc) == crdt.to_prosemirror(old)
    peer.apply_update(doc.get_update(before))
    assert crdt.to_prosemirror(peer) == crdt.to_prosemirror(old)


def test_a_small_change_is_undone_with_a_small_update() -> None:
    old = crdt.new_doc()
    crdt.write_prosemirror(old, joint_success_plan(date(2026, 1, 1)))
    doc = copy(old)
    frag = crdt.fragment(doc)
    with doc.transaction():
        del frag.children[4]
        frag.children.append(XmlElement("paragraph", {}, [XmlText("added later")]))
    before = doc.get_state()
    crdt.restore_content(doc, crdt.to_prosemirror(old))
    assert crdt.to_prosemirror(doc) == crdt.to_prosemirror(old)
    assert len(doc.get_update(before)) < len(old.get_update()) / 4


def test_random_edits_are_restored() -> None:
    rng = random.Random(7)
    doc = crdt.new_doc()
    crdt.write_prosemirror(doc, joint_success_plan(date(2026, 1, 1)))
    points = []
    for _ in range(30):
        frag = crdt.fragment(doc)
        n = len(frag.children)
        with doc.transaction():
            op = rng.random()
            if op < 0.4 and n > 1:
                del frag.children[rng.randrange(n)]
            elif op < 0.8:
                text = XmlText(f"p{rng.random():.3f}")
                frag.children.insert(rng.randrange(n + 1), XmlElement("paragraph", {}, [text]))
            else:
                el = frag.children[rng.randrange(n)]
                if isinstance(el, XmlElement):
                    el.attributes["level"] = rng.randint(1, 3)
        points.append(crdt.to_prosemirror(doc))
    for old in rng.sample(points, 10):
        crdt.restore_content(doc, old)
        assert crdt.to_prosemirror(doc) == old
