"""Which roots of a plan document hold what, and the guard that keeps updates to it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pycrdt import Array, Doc, Map, TextEvent, XmlElement, XmlEvent, XmlFragment, XmlText

#: The rich text of a plan: the ProseMirror document that Tiptap's collaboration
#: extension (y-prosemirror) writes into a ``Y.XmlFragment`` of this name.
FRAGMENT = "default"

#: The roots a plan document has; an update writing any other is refused.
ROOTS = frozenset({FRAGMENT})

#: The deepest nesting of elements (and of JSON inside attribute values) the server accepts.
#: Every reader stays within it, so none can hit Python's recursion limit: ProseMirror's
#: deepest real structures (lists in lists, tables in lists) stay far below it.
MAX_DEPTH = 64


def new_doc() -> Doc:
    """An empty plan document with its roots declared."""
    doc: Doc = Doc()
    doc.get(FRAGMENT, type=XmlFragment)
    return doc


def doc_from_updates(updates: Iterable[bytes], *, base: bytes | None = None) -> Doc:
    """Replay a checkpoint (``base``) and the updates after it into a fresh document."""
    doc = new_doc()
    if base:
        doc.apply_update(base)
    for update in updates:
        doc.apply_update(update)
    return doc


def attributes(el: XmlElement) -> list[tuple[str, Any]]:
    """An element's attributes as (name, value) pairs."""
    # Not ``for k, v in el.attributes``: pycrdt annotates that ``__iter__`` as returning an
    # Iterable (it returns an iterator), which a type checker rightly refuses to iterate.
    return list(el.attributes.__iter__())


def fragment(doc: Doc) -> XmlFragment:
    """The plan's rich-text fragment (read with ``type=`` so it works after apply_update)."""
    root: XmlFragment = doc.get(FRAGMENT, type=XmlFragment)
    return root


# --- the guard ---------------------------------------------------------------------------------


def value_too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether JSON-like ``value`` nests deeper than ``limit`` (iteratively: any depth is safe)."""
    stack = [(value, 0)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, dict):
            v = list(v.values())
        elif not isinstance(v, list | tuple):
            continue
        if depth >= limit:
            return True
        stack.extend((item, depth + 1) for item in v)
    return False


def _subtree_problem(top: XmlElement, depth: int) -> str | None:
    """What is wrong in an element just inserted at ``depth`` (1 = a top-level block)."""
    stack = [(top, depth)]
    while stack:
        el, d = stack.pop()
        if d > MAX_DEPTH:
            return f"elements nested deeper than {MAX_DEPTH}"
        if any(value_too_deep(v) for _, v in attributes(el)):
            return "an attribute value nested too deep"
        n = 0
        # pycrdt stops iterating at the first child that is not an element or a text (and
        # panics when one is indexed): a count that falls short of the length reveals it.
        for child in el.children:
            n += 1
            if isinstance(child, XmlElement):
                stack.append((child, d + 1))
            elif not isinstance(child, XmlText):
                return "a child that is not an element or a text"
        if n != len(el.children):
            return "a child that is not an element or a text"
    return None


def _event_problem(event: object) -> str | None:
    if isinstance(event, TextEvent) or isinstance(getattr(event, "target", None), XmlText):
        # Typing: pycrdt reports an XmlText's changes as an XmlEvent, with strings inserted.
        for op in getattr(event, "delta", ()):
            if value_too_deep(op.get("attributes")) or value_too_deep(op.get("insert")):
                return "a text format or embed nested too deep"
    elif isinstance(event, XmlEvent):
        return _xml_event_problem(event)
    return None


def _xml_event_problem(event: Any) -> str | None:
    # Any: pycrdt's XmlEvent declares its fields in __slots__ only, without types.
    written = [c for c in event.keys.values() if c.get("action") != "delete"]
    if written and isinstance(event.target, XmlFragment):
        return f"keys written on the {FRAGMENT!r} root"
    if any(value_too_deep(change.get("newValue")) for change in written):
        return "an attribute value nested too deep"
    depth = None
    for op in event.delta:
        for item in op.get("insert", ()):
            if isinstance(item, XmlText):
                continue
            if not isinstance(item, XmlElement):
                return f"{type(item).__name__} content in an XML element or fragment"
            if depth is None:
                depth = len(event.path) + 1
            problem = _subtree_problem(item, depth)
            if problem:
                return problem
    return None


class SchemaGuard:
    """Notices changes to a plan document that break its schema: roots it does not have,
    content in the fragment that is not elements and texts (a root written as a Text, an
    Array or a Map), elements nested deeper than ``MAX_DEPTH``.

    Yjs updates do not carry root types; whoever reads a root decides its type. So what a
    hostile update can do is put the wrong *content* under a root, and that is what is
    checked, from the events of the changes only: a keystroke costs one small event.
    """

    def __init__(self, doc: Doc) -> None:
        self.doc = doc
        self._problem: str | None = None
        self._roots = len(set(doc.keys()))
        self._fragment = fragment(doc)  # pycrdt unsubscribes through the object subscribed
        self._subscription = self._fragment.observe_deep(self._changed)

    def _changed(self, events: list[Any]) -> None:
        if self._problem is None:
            for event in events:
                self._problem = _event_problem(event)
                if self._problem:
                    return

    def check(self) -> str | None:
        """What broke the schema since the last check, or None."""
        problem, self._problem = self._problem, None
        if problem is None and len(set(self.doc.keys())) != self._roots:
            foreign = sorted(set(self.doc.keys()) - ROOTS)
            problem = f"a root the plan does not have ({', '.join(map(repr, foreign))[:60]})"
        return problem

    def close(self) -> None:
        self._fragment.unobserve(self._subscription)


def schema_repair(doc: Doc) -> bytes | None:
    """An update that deletes what breaks ``doc``'s schema (content under foreign roots,
    content of the fragment that is not elements and texts), or None if nothing does.

    Deleting is an ordinary Yjs change: applied on top of the history clients hold, it
    converges everywhere, unlike a document rebuilt without the offending updates. It is
    computed on a copy that reads the roots as plain lists and maps, since pycrdt cannot
    read a foreign item inside an XmlFragment.
    """
    copy: Doc[Any] = Doc()
    names = list(doc.keys())
    lists = {name: copy.get(name, type=Array) for name in names}
    copy.apply_update(doc.get_update())
    before = copy.get_state()
    deleted = 0
    with copy.transaction():
        for name, items in lists.items():
            if name == FRAGMENT:
                for i in reversed(range(len(items))):
                    if not isinstance(items[i], XmlElement | XmlText):
                        del items[i]
                        deleted += 1
            elif len(items):
                deleted += len(items)
                del items[0 : len(items)]
    with copy.transaction():
        for name in names:
            keys = copy.get(name, type=Map)
            for key in list(keys.keys()):
                del keys[key]
                deleted += 1
    # (Without deletions the update is not empty either: it carries the whole delete set.)
    return copy.get_update(before) if deleted else None
