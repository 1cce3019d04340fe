"""The plan's rich text as ProseMirror JSON, read from and written to the Yjs fragment.

The fragment holds what Tiptap's collaboration extension (``@tiptap/y-tiptap``, a fork of
y-prosemirror) writes: one ``XmlElement`` per node, tagged with the node type name, with the
node's non-null attrs as element attributes (numbers stay numbers, ``checked`` a boolean); runs
of text as one ``XmlText`` whose formatting attributes are the marks, keyed by mark name with the
mark's full attrs (nulls included) as value. Reading mirrors what the editor shows: y-tiptap
builds nodes through the Tiptap schema, which fills in default attrs, drops unknown ones and
sorts marks by rank, so this module carries the schema's defaults (checked against the real
schema by the tests).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from pycrdt import Doc, XmlElement, XmlFragment, XmlText

from .schema import MAX_DEPTH, attributes, fragment

#: Attr defaults of the editor's node types (Tiptap StarterKit, TaskList/TaskItem, TableKit, and
#: Tandem's own: task id/status/milestone, row id, owner ``mention``, ``dueDate``; see
#: docs/plan-document.md).
NODE_ATTRS: dict[str, dict[str, Any]] = {
    "doc": {},
    "paragraph": {},
    "text": {},
    "heading": {"level": 1},
    "blockquote": {},
    "bulletList": {},
    "orderedList": {"start": 1, "type": None},
    "listItem": {},
    "taskList": {},
    "taskItem": {"checked": False, "id": None, "status": None, "milestone": False},
    "codeBlock": {"language": None},
    "horizontalRule": {},
    "hardBreak": {},
    "table": {},
    "tableRow": {"id": None},
    "tableCell": {"colspan": 1, "rowspan": 1, "colwidth": None, "align": None},
    "tableHeader": {"colspan": 1, "rowspan": 1, "colwidth": None, "align": None},
    "mention": {"id": None, "label": None, "side": None},
    "dueDate": {"date": None},
}

#: Attr defaults of the editor's marks, in schema rank order (Link has a high priority, so it
#: ranks first); ProseMirror keeps a text node's marks sorted by this rank.
MARK_ATTRS: dict[str, dict[str, Any]] = {
    "link": {
        "href": None,
        "target": "_blank",
        "rel": "noopener noreferrer nofollow",
        "class": None,
        "title": None,
    },
    "bold": {},
    "code": {},
    "italic": {},
    "strike": {},
    "underline": {},
}

_MARK_RANK = {name: rank for rank, name in enumerate(MARK_ATTRS)}

# y-prosemirror keys marks that may overlap themselves (e.g. comments) as "name--<8 char hash>".
_HASHED_MARK = re.compile(r"(.*)(--[a-zA-Z0-9+/=]{8})$")

# Link targets kept anywhere the document leaves the editor (JSON, Markdown, templates): absolute
# http(s) with a host, and mailto, as web/src/lib/links.js allows. Relative targets are dropped
# too: the editor never makes them, "//evil.example" is one, and outside the app they mean nothing.
_SAFE_HREF = re.compile(r"(?:https?://[^/?#\\\s]|mailto:\S)", re.IGNORECASE)


def safe_href(href: Any) -> bool:
    """Whether ``href`` may be a link's target; a link with any other target keeps its text only.

    No control characters either: browsers drop them, so "java\tscript:" is a script URL."""
    return (
        isinstance(href, str)
        and len(href) <= 4096
        and not any(ord(c) < 32 or ord(c) == 127 for c in href)
        and _SAFE_HREF.match(href) is not None
    )


# y-prosemirror's own bookkeeping attribute for change tracking, never a real attr or mark.
_YCHANGE = "ychange"


def to_prosemirror(doc: Doc) -> dict[str, Any]:
    """The plan's rich text as ProseMirror JSON, as Tiptap's ``editor.getJSON()`` gives it.

    Known node types and marks get the schema's default attrs filled in and unknown attrs
    dropped, like Tiptap does; numbers that Yjs hands back as floats become ints when
    integral (JSON has one number type). Node types and marks the schema doesn't know are kept
    as stored rather than dropped. The root always has a ``content`` list, even when empty.
    """
    with doc.transaction():
        return {"type": "doc", "content": _read_children(fragment(doc))}


def write_prosemirror(doc: Doc, pm_json: Mapping[str, Any]) -> None:
    """Replace the plan's rich text with ``pm_json`` (a ``{"type": "doc", ...}`` ProseMirror JSON).

    The old content is deleted and the new one written in one transaction, so peers see a
    single update. The Yjs shape is the one y-tiptap writes (default attrs stored, null attrs
    omitted, full mark attrs), so an editor opening the document shows it and does not rewrite
    it. Marks on non-text nodes are not stored, as in y-tiptap.
    """
    if pm_json.get("type") != "doc":
        raise ValueError(f"expected a ProseMirror doc, got type {pm_json.get('type')!r}")
    frag = fragment(doc)
    with doc.transaction():
        del frag.children[0 : len(frag.children)]
        _write_children(frag, pm_json.get("content") or [])


# --- reading ---------------------------------------------------------------------------------


def _read_children(parent: XmlFragment | XmlElement, depth: int = 0) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if depth >= MAX_DEPTH:
        # Deeper than the server accepts (written before it checked): left out, so that no
        # reader ever meets Python's recursion limit.
        return out
    for child in parent.children:
        if isinstance(child, XmlText):
            for insert, attrs in child.diff():
                # Embeds are not something y-prosemirror writes; empty text isn't a valid node.
                if isinstance(insert, str) and insert:
                    _push_text(out, insert, _read_marks(attrs or {}))
        elif isinstance(child, XmlElement):
            out.append(_read_element(child, depth + 1))
    return out


def _push_text(out: list[dict[str, Any]], text: str, marks: list[dict[str, Any]]) -> None:
    # ProseMirror joins adjacent text nodes with equal marks (Fragment.fromArray).
    last = out[-1] if out else None
    if last is not None and last["type"] == "text" and last.get("marks", []) == marks:
        last["text"] += text
        return
    node: dict[str, Any] = {"type": "text", "text": text}
    if marks:
        node["marks"] = marks
    out.append(node)


def _read_element(el: XmlElement, depth: int) -> dict[str, Any]:
    tag = el.tag or ""
    stored = {k: _plain(v) for k, v in attributes(el) if k != _YCHANGE}
    node: dict[str, Any] = {"type": tag}
    attrs = _with_defaults(NODE_ATTRS[tag], stored) if tag in NODE_ATTRS else stored
    if attrs:
        node["attrs"] = attrs
    content = _read_children(el, depth)
    if content:
        node["content"] = content
    return node


def _read_marks(attrs: Mapping[str, Any]) -> list[dict[str, Any]]:
    marks = []
    for key, value in attrs.items():
        if key == _YCHANGE:
            continue
        hashed = _HASHED_MARK.match(key)
        name = hashed.group(1) if hashed else key
        # Old clients stored e.g. ``bold: true``; the schema then uses the defaults.
        given = _plain(value) if isinstance(value, Mapping) else {}
        mark_attrs = _with_defaults(MARK_ATTRS[name], given) if name in MARK_ATTRS else given
        if name == "link" and not safe_href(mark_attrs.get("href")):
            continue  # any client can store any target; none but http(s) and mailto leaves
        mark: dict[str, Any] = {"type": name}
        if mark_attrs:
            mark["attrs"] = mark_attrs
        marks.append(mark)
    # Known marks by schema rank (as ProseMirror orders them), unknown ones after, by name.
    marks.sort(key=lambda m: (_MARK_RANK.get(m["type"], len(_MARK_RANK)), m["type"]))
    return marks


def _with_defaults(defaults: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """Attrs the way ProseMirror computes them: the schema's keys only, given value or default."""
    return {key: given.get(key, default) for key, default in defaults.items()}


def _plain(value: Any, depth: int = 0) -> Any:
    """A Yjs value as JSON-like Python; yrs decodes every JS number as a float. Values
    nested deeper than MAX_DEPTH (written before the server checked) are cut off there."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {k: _plain(v, depth + 1) for k, v in value.items()} if depth < MAX_DEPTH else {}
    if isinstance(value, list | tuple):
        return [_plain(v, depth + 1) for v in value] if depth < MAX_DEPTH else []
    return value


# --- writing ---------------------------------------------------------------------------------


def _write_children(
    parent: XmlFragment | XmlElement, content: Sequence[Mapping[str, Any]], depth: int = 0
) -> None:
    if content and depth >= MAX_DEPTH:
        raise ValueError(f"ProseMirror nodes nested deeper than {MAX_DEPTH}")
    i = 0
    while i < len(content):
        node = content[i]
        if node.get("type") == "text":
            # Consecutive text nodes share one XmlText, as in y-prosemirror.
            text = parent.children.append(XmlText())
            while i < len(content) and content[i].get("type") == "text":
                run = content[i].get("text") or ""
                if run:
                    # Offsets are yrs' own units (not str indices), so always append at len().
                    text.insert(len(text), run, _write_marks(content[i].get("marks") or []))
                i += 1
            continue
        tag = node.get("type")
        if not isinstance(tag, str) or not tag:
            raise ValueError(f"ProseMirror node without a type: {node!r}")
        el = parent.children.append(XmlElement(tag, _write_attrs(tag, node.get("attrs") or {})))
        _write_children(el, node.get("content") or [], depth + 1)
        i += 1


def _write_attrs(tag: str, given: Mapping[str, Any]) -> dict[str, Any]:
    # y-prosemirror stores the node's computed attrs (defaults included) and skips nulls.
    attrs = _with_defaults(NODE_ATTRS[tag], given) if tag in NODE_ATTRS else dict(given)
    return {k: v for k, v in attrs.items() if v is not None and k != _YCHANGE}


def _write_marks(marks: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mark in marks:
        name = mark["type"]
        given = mark.get("attrs") or {}
        if name == "link" and not safe_href(given.get("href")):
            continue
        # The full attrs, nulls included, exactly like y-prosemirror's marksToAttributes.
        value = _with_defaults(MARK_ATTRS[name], given) if name in MARK_ATTRS else dict(given)
        key = name
        if key in out:
            # A second mark of the same type can only be one that overlaps itself: y-prosemirror
            # then suffixes a hash of the mark. Any 8-char suffix reads back the same.
            digest = hashlib.sha256(json.dumps(mark, sort_keys=True).encode()).digest()
            key = f"{name}--{base64.b64encode(digest).decode()[:8]}"
        out[key] = value
    return out
