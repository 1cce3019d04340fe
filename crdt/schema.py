"""Which roots of a plan document hold what."""

from __future__ import annotations

from collections.abc import Iterable

from pycrdt import Doc, XmlFragment

#: The rich text of a plan: the ProseMirror document that Tiptap's collaboration
#: extension (y-prosemirror) writes into a ``Y.XmlFragment`` of this name.
FRAGMENT = "default"


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


def fragment(doc: Doc) -> XmlFragment:
    """The plan's rich-text fragment (read with ``type=`` so it works after apply_update)."""
    return doc.get(FRAGMENT, type=XmlFragment)
