"""Turning a document's content back into an older one with the smallest change we can find.

The older content comes as ProseMirror JSON; blocks that are equal are kept as they are (so
cursors and comments elsewhere stay put), elements with the same type and attributes are
reconciled child by child, and anything else is deleted and written anew, all in one
transaction: peers see a single update, and afterwards the document reads back as that JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from difflib import SequenceMatcher
from typing import Any

from pycrdt import Doc, XmlElement, XmlFragment

from .prosemirror import _read_children, _read_element, _write_attrs, _write_children
from .schema import MAX_DEPTH, fragment


def restore_content(doc: Doc, old: Mapping[str, Any]) -> None:
    """Change ``doc`` so that ``to_prosemirror(doc)`` equals ``old`` (as to_prosemirror gives)."""
    if old.get("type") != "doc":
        raise ValueError(f"expected a ProseMirror doc, got type {old.get('type')!r}")
    with doc.transaction():
        _reconcile(fragment(doc), list(old.get("content") or []), 0)


def _key(node: Mapping[str, Any]) -> str:
    return json.dumps(node, sort_keys=True)


def _shell(node: Mapping[str, Any]) -> str:
    return json.dumps([node.get("type"), node.get("attrs") or {}], sort_keys=True)


def _reconcile(
    parent: XmlFragment | XmlElement, want: Sequence[Mapping[str, Any]], depth: int
) -> None:
    children = list(parent.children)
    mixed = any(not isinstance(c, XmlElement) for c in children) or any(
        n.get("type") == "text" for n in want
    )
    if mixed or depth >= MAX_DEPTH:
        # Text runs map to XmlText pieces, not one JSON node each: rewrite this level whole.
        if [_key(n) for n in _read_children(parent, depth)] != [_key(n) for n in want]:
            del parent.children[0 : len(children)]
            _write_children(parent, want, depth)
        return
    have = [_read_element(c, depth + 1) for c in children if isinstance(c, XmlElement)]
    ops = SequenceMatcher(a=[_key(n) for n in have], b=[_key(n) for n in want], autojunk=False)
    # Right to left, so that the indices of the earlier opcodes stay valid.
    for op, i1, i2, j1, j2 in reversed(ops.get_opcodes()):
        if op == "equal":
            continue
        pairs = range(i2 - i1)
        if (
            op == "replace"
            and i2 - i1 == j2 - j1
            and all(_shell(have[i1 + k]) == _shell(want[j1 + k]) for k in pairs)
        ):
            for k in pairs:
                el = parent.children[i1 + k]
                if isinstance(el, XmlElement):
                    _reconcile(el, list(want[j1 + k].get("content") or []), depth + 1)
            continue
        if i2 > i1:
            del parent.children[i1:i2]
        for k, node in enumerate(want[j1:j2]):
            tag = node.get("type")
            if not isinstance(tag, str) or not tag or tag == "text":
                raise ValueError(f"a block without an element type: {node!r}")
            el = parent.children.insert(
                i1 + k, XmlElement(tag, _write_attrs(tag, node.get("attrs") or {}))
            )
            _write_children(el, list(node.get("content") or []), depth + 1)
