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

from .schema import fragment

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
class Structure:
    tasks: dict[str, Task] = field(default_factory=dict)
    rows: dict[str, Row] = field(default_factory=dict)

    def of(self, kind: str) -> list[Row]:
        return [r for r in self.rows.values() if r.kind == kind]


# --- ids -------------------------------------------------------------------------------------

_ID_OWNERS = {"taskItem": "t_", "tableRow": "r_"}


def new_id(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(8)[:10]


def _walk(parent: XmlFragment | XmlElement) -> Iterator[XmlElement]:
    for child in parent.children:
        if isinstance(child, XmlElement):
            yield child
            yield from _walk(child)


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


# --- reading ---------------------------------------------------------------------------------


def inline_text(el: XmlElement) -> str:
    """A paragraph's text: mentions as ``@Label``, due dates and other inline nodes left out."""
    out: list[str] = []
    for child in el.children:
        if isinstance(child, XmlText):
            out.extend(i for i, _ in child.diff() if isinstance(i, str))
        elif isinstance(child, XmlElement):
            if child.tag == "mention":
                out.append("@" + str(child.attributes.get("label") or ""))
            elif child.tag == "hardBreak":
                out.append(" ")
            elif child.tag != "dueDate":
                out.append(inline_text(child))
    return " ".join("".join(out).split())


def block_text(el: XmlElement) -> str:
    parts = []
    for child in el.children:
        if isinstance(child, XmlElement):
            parts.append(block_text(child) if child.tag != "paragraph" else inline_text(child))
        elif isinstance(child, XmlText):
            parts.append("".join(i for i, _ in child.diff() if isinstance(i, str)))
    return " ".join(" ".join(parts).split())


def _first(el: XmlElement, tag: str) -> XmlElement | None:
    for child in el.children:
        if isinstance(child, XmlElement) and child.tag == tag:
            return child
    return None


def _owner(para: XmlElement | None) -> Owner | None:
    mention = _first(para, "mention") if para is not None else None
    if mention is None:
        return None
    side = mention.attributes.get("side")
    return Owner(
        id=str(mention.attributes.get("id") or ""),
        label=str(mention.attributes.get("label") or ""),
        side=side if side in SIDES else None,
    )


def parse_date(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        return None


def _due(para: XmlElement | None) -> str | None:
    chip = _first(para, "dueDate") if para is not None else None
    return parse_date(chip.attributes.get("date")) if chip is not None else None


def task_status(checked: bool, status: Any) -> str:
    # A plain client only sets ``checked``, so it wins over a stale status.
    if checked:
        return "done"
    return status if status in STATUSES and status != "done" else "todo"


def _heading_kind(text: str) -> str | None:
    return _SECTION_OF.get(text.strip().rstrip(":").strip().lower())


class _Reader:
    def __init__(self) -> None:
        self.tasks: dict[str, Task] = {}
        self.rows: dict[str, Row] = {}
        self.stack: list[tuple[int, str, str | None]] = []  # (level, text, kind)

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(t for _, t, _ in self.stack)

    @property
    def kind(self) -> str | None:
        for _, _, kind in reversed(self.stack):
            if kind is not None:
                return kind
        return None

    def top(self, el: XmlElement) -> None:
        if el.tag == "heading":
            level = el.attributes.get("level") or 1
            text = inline_text(el)
            while self.stack and self.stack[-1][0] >= level:
                self.stack.pop()
            self.stack.append((int(level), text, _heading_kind(text)))
            return
        self.block(el)

    def block(self, el: XmlElement) -> None:
        if el.tag == "taskItem":
            self.task(el)
        elif el.tag == "table" and self.kind in COLUMNS:
            self.table(el, self.kind)
            return
        for child in el.children:
            if isinstance(child, XmlElement):
                self.block(child)

    def task(self, el: XmlElement) -> None:
        task_id = el.attributes.get("id")
        if not isinstance(task_id, str) or not task_id or task_id in self.tasks:
            return  # waits for assign_ids
        para = _first(el, "paragraph")
        checked = el.attributes.get("checked") is True
        self.tasks[task_id] = Task(
            id=task_id,
            text=inline_text(para) if para is not None else "",
            owner=_owner(para),
            due=_due(para),
            status=task_status(checked, el.attributes.get("status")),
            checked=checked,
            milestone=el.attributes.get("milestone") is True or self.kind == "milestones",
            section=self.path,
            position=len(self.tasks),
        )

    def table(self, el: XmlElement, kind: str) -> None:
        columns: list[str | None] | None = None
        for row in el.children:
            if not isinstance(row, XmlElement) or row.tag != "tableRow":
                continue
            cells = [c for c in row.children if isinstance(c, XmlElement)]
            texts = [block_text(c) for c in cells]
            if columns is None:
                names = COLUMNS[kind]
                columns = [names.get(t.strip().rstrip(":").lower()) for t in texts]
                if not any(columns):
                    return  # not a table of this section's kind
                continue
            row_id = row.attributes.get("id")
            if not isinstance(row_id, str) or not row_id or row_id in self.rows:
                continue
            fields = {c: t for c, t in zip(columns, texts, strict=False) if c and c not in ()}
            if not any(fields.values()):
                continue  # a blank row someone is about to fill in
            self.rows[row_id] = Row(
                id=row_id,
                kind=kind,
                fields=tuple(sorted(fields.items())),
                section=self.path,
                position=sum(1 for r in self.rows.values() if r.kind == kind),
            )


def read_structure(doc: Doc) -> Structure:
    """Tasks (with milestones), key results, risks and contacts, as the document holds them."""
    reader = _Reader()
    with doc.transaction():
        for el in fragment(doc).children:
            if isinstance(el, XmlElement):
                reader.top(el)
    return Structure(tasks=reader.tasks, rows=reader.rows)


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
    for i, child in enumerate(para.children):
        if isinstance(child, XmlElement) and child.tag == tag:
            if attrs is None:
                del para.children[i]
            else:
                for key in list(dict(child.attributes)):
                    if key not in attrs:
                        del child.attributes[key]
                for key, value in attrs.items():
                    if child.attributes.get(key) != value:
                        child.attributes[key] = value
            return
    if attrs is not None:
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
