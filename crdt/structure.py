"""Structure read out of the plan's rich text, and small writes back into it.

Follows docs/plan-document.md: tasks are ``taskItem`` nodes anywhere; key results, risks and
contacts are table rows in sections recognised by heading text. Everything here is a pure
function over a pycrdt ``Doc``.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pycrdt import Doc, XmlElement, XmlFragment, XmlText

from .schema import MAX_DEPTH, attributes, fragment

# The editor holds copies of these (web/src/lib/); tests/test_contracts.py compares them.
STATUSES = ("todo", "in_progress", "blocked", "done")
SIDES = ("vendor", "customer")
SEVERITIES = ("high", "medium", "low")

SECTION_HEADINGS: dict[str, tuple[str, ...]] = {
    "contacts": ("key contacts", "contacts", "stakeholders", "customer highlights"),
    "key_results": ("key results", "measures of success", "kpis", "success metrics"),
    "risks": ("risks", "major concerns", "key challenges and risks"),
    "milestones": ("milestones",),
}
_SECTION_OF = {h: kind for kind, heads in SECTION_HEADINGS.items() for h in heads}


def section_kind(heading: str) -> str | None:
    """The section a heading's text names ("Key contacts:" names "contacts"), or None."""
    # As the editor's sectionKind (web/src/lib/sections.js) reads it; tests/test_contracts.py.
    return _SECTION_OF.get(" ".join(heading.split()).lower().rstrip(" :."))


# Column header text (lower case) -> field name, per table kind.
COLUMNS: dict[str, dict[str, str]] = {
    "contacts": {"name": "name", "role": "role", "email": "email", "side": "side"},
    "key_results": {
        "metric": "metric",
        "key result": "metric",
        "baseline": "baseline",
        "target": "target",
        "current": "current",
        "unit": "unit",
        "date": "date",
        "due": "date",
    },
    "risks": {"risk": "risk", "severity": "severity", "owner": "owner", "mitigation": "mitigation"},
}


@dataclass(frozen=True)
class Owner:
    id: str
    label: str
    side: str | None


@dataclass(frozen=True)
class Task:
    id: str
    text: str
    owner: Owner | None
    due: str | None  # YYYY-MM-DD
    status: str
    checked: bool
    milestone: bool
    section: tuple[str, ...]
    position: int


@dataclass(frozen=True)
class Row:
    """One table row of a recognised section: ``fields`` by field name, cell text as typed."""

    id: str
    kind: str  # "key_results" | "risks" | "contacts"
    fields: tuple[tuple[str, str], ...]
    section: tuple[str, ...]
    position: int

    def get(self, name: str) -> str:
        return dict(self.fields).get(name, "")


@dataclass(frozen=True)
class Mention:
    """An @mention of a person that is not a task's owner chip: whom (``ref``, ``label``),
    where (``anchor``: the id of the task or table row it is written in, "" outside them;
    ``section``), and the text of its paragraph. A mention has no id of its own: it is told
    apart by its anchor, its person and how many mentions of them the anchor holds."""

    ref: str
    label: str
    anchor: str
    section: tuple[str, ...]
    text: str


@dataclass(frozen=True)
class Structure:
    tasks: dict[str, Task] = field(default_factory=dict)
    rows: dict[str, Row] = field(default_factory=dict)
    mentions: tuple[Mention, ...] = ()

    def of(self, kind: str) -> list[Row]:
        return [r for r in self.rows.values() if r.kind == kind]


# --- ids -------------------------------------------------------------------------------------

_ID_OWNERS = {"taskItem": "t_", "tableRow": "r_"}


def new_id(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(8)[:10]


def _walk(parent: XmlFragment | XmlElement) -> Iterator[XmlElement]:
    """Every element under ``parent``, in document order, to MAX_DEPTH (deeper ones were
    written before the server checked depth; a stack, not recursion, walks to the limit)."""
    stack = [(iter(parent.children), 1)]
    while stack:
        children, depth = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
        elif isinstance(child, XmlElement):
            yield child
            if depth < MAX_DEPTH:
                stack.append((iter(child.children), depth + 1))


def missing_ids(doc: Doc) -> bool:
    """Whether some task or table row lacks an id or repeats an earlier one."""
    seen: set[str] = set()
    with doc.transaction():
        for el in _walk(fragment(doc)):
            if el.tag in _ID_OWNERS:
                value = el.attributes.get("id")
                if not isinstance(value, str) or not value or value in seen:
                    return True
                seen.add(value)
    return False


def assign_ids(doc: Doc) -> bool:
    """Give every task and table row lacking an id, or repeating an earlier one, a new id.

    One transaction, so peers see one update. Document order decides: the first keeps its id.
    Returns whether anything changed.
    """
    seen: set[str] = set()
    changed = False
    with doc.transaction():
        for el in _walk(fragment(doc)):
            prefix = _ID_OWNERS.get(el.tag or "")
            if prefix is None:
                continue
            value = el.attributes.get("id")
            if not isinstance(value, str) or not value or value in seen:
                value = new_id(prefix)
                while value in seen:
                    value = new_id(prefix)
                el.attributes["id"] = value
                changed = True
            seen.add(value)
    return changed


def _first(el: XmlElement, tag: str) -> XmlElement | None:
    for child in el.children:
        if isinstance(child, XmlElement) and child.tag == tag:
            return child
    return None


def parse_date(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        return None


def task_status(checked: bool, status: Any) -> str:
    # A plain client only sets ``checked``, so it wins over a stale status.
    if checked:
        return "done"
    return status if status in STATUSES and status != "done" else "todo"


_NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?|[-+]?\.\d+")
_SCALE = {"k": 1e3, "m": 1e6, "b": 1e9, "bn": 1e9}


def parse_number(text: str) -> float | None:
    """The number in a cell as people type it: ``$10M``, ``1,200``, ``45%``, ``3.5 days``."""
    match = _NUMBER.search(text or "")
    if match is None:
        return None
    value = float(match.group(0).replace(",", ""))
    suffix = re.match(r"\s*([a-zA-Z]+)", text[match.end() :])
    if suffix and suffix.group(1).lower() in _SCALE:
        value *= _SCALE[suffix.group(1).lower()]
    return value


# --- writing back ----------------------------------------------------------------------------


class TaskNotFound(KeyError):
    pass


def _task_element(doc: Doc, task_id: str) -> XmlElement:
    for el in _walk(fragment(doc)):
        if el.tag == "taskItem" and el.attributes.get("id") == task_id:
            return el
    raise TaskNotFound(task_id)


def _paragraph(el: XmlElement) -> XmlElement:
    para = _first(el, "paragraph")
    if para is None:
        para = el.children.insert(0, XmlElement("paragraph", {}))
    return para


def _edit(doc: Doc, task_id: str, fn: Callable[[XmlElement], None]) -> None:
    with doc.transaction():
        fn(_task_element(doc, task_id))


def set_task_checked(doc: Doc, task_id: str, checked: bool) -> None:
    def apply(el: XmlElement) -> None:
        el.attributes["checked"] = checked
        status = el.attributes.get("status")
        if checked and status not in (None, "done"):
            el.attributes["status"] = "done"
        elif not checked and status == "done":
            el.attributes["status"] = "todo"

    _edit(doc, task_id, apply)


def set_task_status(doc: Doc, task_id: str, status: str) -> None:
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}")

    def apply(el: XmlElement) -> None:
        el.attributes["status"] = status
        el.attributes["checked"] = status == "done"

    _edit(doc, task_id, apply)


def _replace_inline(para: XmlElement, tag: str, attrs: dict[str, Any] | None) -> None:
    """Make ``attrs`` the paragraph's one ``tag`` chip (or with ``None`` remove them all).

    Readers take the first chip as the task's owner or date; a second one (two people assigning
    at once, or an older client) would otherwise become the owner when the first is removed.
    """
    found = [
        (i, child)
        for i, child in enumerate(para.children)
        if isinstance(child, XmlElement) and child.tag == tag
    ]
    keep = found[0][1] if found and attrs is not None else None
    for i, child in reversed(found):
        if child is not keep:
            del para.children[i]
    if keep is not None and attrs is not None:
        for key, _ in attributes(keep):
            if key not in attrs:
                del keep.attributes[key]
        for key, value in attrs.items():
            if keep.attributes.get(key) != value:
                keep.attributes[key] = value
    elif attrs is not None:
        para.children.append(XmlText(" "))
        para.children.append(XmlElement(tag, attrs))


def set_task_owner(doc: Doc, task_id: str, owner: Owner | None) -> None:
    """Set (or with ``None`` remove) the task's owner mention."""
    attrs = None
    if owner is not None:
        attrs = {"id": owner.id, "label": owner.label}
        if owner.side is not None:
            attrs["side"] = owner.side
    _edit(doc, task_id, lambda el: _replace_inline(_paragraph(el), "mention", attrs))


def set_task_due(doc: Doc, task_id: str, due: str | None) -> None:
    """Set (or with ``None`` remove) the task's due-date chip."""
    attrs = {"date": due} if due is not None else None
    _edit(doc, task_id, lambda el: _replace_inline(_paragraph(el), "dueDate", attrs))
