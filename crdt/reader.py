"""Reading structure out of the plan document, in full or incrementally.

``StructureReader`` keeps what it read per top-level block (and per top-level task item of a
task list) and observes the fragment, so after an edit it reads again only the block or task
item that changed: a tick or a date moved costs one task's reading, not the whole plan's. A
heading changed or a top-level block added or removed means a full read (sections move).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from pycrdt import Doc, XmlElement, XmlText

from .schema import fragment
from .structure import (
    COLUMNS,
    SECTION_HEADINGS,
    SIDES,
    Owner,
    Row,
    Structure,
    Task,
    _first,
    parse_date,
    task_status,
)

_SECTION_OF = {h: kind for kind, heads in SECTION_HEADINGS.items() for h in heads}


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


def _due(para: XmlElement | None) -> str | None:
    chip = _first(para, "dueDate") if para is not None else None
    return parse_date(chip.attributes.get("date")) if chip is not None else None


def _heading_kind(text: str) -> str | None:
    return _SECTION_OF.get(text.strip().rstrip(":").strip().lower())


@dataclass(frozen=True)
class _Context:
    path: tuple[str, ...]
    kind: str | None


@dataclass
class _Block:
    heading: tuple[int, str, str | None] | None = None
    items: list[list[Task]] | None = None  # a task list: the tasks of each top-level item
    tasks: list[Task] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)


def _task(el: XmlElement, ctx: _Context) -> Task | None:
    task_id = el.attributes.get("id")
    if not isinstance(task_id, str) or not task_id:
        return None  # waits for assign_ids
    para = _first(el, "paragraph")
    checked = el.attributes.get("checked") is True
    return Task(
        id=task_id,
        text=inline_text(para) if para is not None else "",
        owner=_owner(para),
        due=_due(para),
        status=task_status(checked, el.attributes.get("status")),
        checked=checked,
        milestone=el.attributes.get("milestone") is True or ctx.kind == "milestones",
        section=ctx.path,
        position=-1,
    )


def _table(el: XmlElement, ctx: _Context, out: list[Row]) -> None:
    kind = ctx.kind
    assert kind is not None
    columns: list[str | None] | None = None
    for row in el.children:
        if not isinstance(row, XmlElement) or row.tag != "tableRow":
            continue
        texts = [block_text(c) for c in row.children if isinstance(c, XmlElement)]
        if columns is None:
            names = COLUMNS[kind]
            columns = [names.get(t.strip().rstrip(":").lower()) for t in texts]
            if not any(columns):
                return  # not a table of this section's kind
            continue
        row_id = row.attributes.get("id")
        if not isinstance(row_id, str) or not row_id:
            continue
        fields = {c: t for c, t in zip(columns, texts, strict=False) if c}
        if any(fields.values()):  # a blank row is one someone is about to fill in
            out.append(Row(row_id, kind, tuple(sorted(fields.items())), ctx.path, -1))


def _walk(el: XmlElement, ctx: _Context, block: _Block) -> None:
    if el.tag == "taskItem":
        task = _task(el, ctx)
        if task is not None:
            block.tasks.append(task)
    elif el.tag == "table" and ctx.kind in COLUMNS:
        _table(el, ctx, block.rows)
        return
    for child in el.children:
        if isinstance(child, XmlElement):
            _walk(child, ctx, block)


def _item_tasks(el: XmlElement, ctx: _Context) -> list[Task]:
    block = _Block()
    _walk(el, ctx, block)
    return block.tasks


class StructureReader:
    """Reads a document's structure; with ``observe``, again after edits, incrementally."""

    def __init__(self, doc: Doc, *, observe: bool = True) -> None:
        self.doc = doc
        self._blocks: list[_Block] = []
        self._contexts: list[_Context] = []
        self._full = True
        self._dirty: set[tuple[int, ...]] = set()
        self._subscription = fragment(doc).observe_deep(self._changed) if observe else None

    def _changed(self, events: list) -> None:  # type: ignore[type-arg]
        for event in events:
            path = event.path
            if not path:
                self._full = True
            elif len(path) == 1:
                self._dirty.add((path[0],))
            else:
                self._dirty.add((path[0], path[1]))

    def read(self) -> Structure:
        with self.doc.transaction():
            if not self._full and not self._refresh():
                self._full = True
            if self._full:
                self._read_all()
            self._full = False
            self._dirty.clear()
        return self._assemble()

    def _read_all(self) -> None:
        self._blocks, self._contexts = [], []
        stack: list[tuple[int, str, str | None]] = []
        for el in fragment(self.doc).children:
            if not isinstance(el, XmlElement):
                self._blocks.append(_Block())
                self._contexts.append(_Context((), None))
                continue
            if el.tag == "heading":
                level = int(el.attributes.get("level") or 1)
                text = inline_text(el)
                while stack and stack[-1][0] >= level:
                    stack.pop()
                stack.append((level, text, _heading_kind(text)))
            kind = next((k for _, _, k in reversed(stack) if k is not None), None)
            ctx = _Context(tuple(t for _, t, _ in stack), kind)
            self._blocks.append(self._read_block(el, ctx))
            self._contexts.append(ctx)

    def _read_block(self, el: XmlElement, ctx: _Context) -> _Block:
        if el.tag == "heading":
            return _Block(heading=(0, "", None))
        if el.tag == "taskList":
            items = [_item_tasks(c, ctx) if isinstance(c, XmlElement) else [] for c in el.children]
            return _Block(items=items)
        block = _Block()
        _walk(el, ctx, block)
        return block

    def _refresh(self) -> bool:
        """Re-read only what changed; False when a full read is needed."""
        children = fragment(self.doc).children
        if len(children) != len(self._blocks):
            return False
        whole = {d[0] for d in self._dirty if len(d) == 1}
        for key in sorted(self._dirty):
            index = key[0]
            el = children[index]
            block = self._blocks[index]
            if not isinstance(el, XmlElement) or el.tag == "heading" or block.heading:
                return False
            ctx = self._contexts[index]
            if len(key) == 2 and index not in whole and block.items is not None:
                if el.tag != "taskList" or len(el.children) != len(block.items):
                    return False
                item = el.children[key[1]]
                block.items[key[1]] = _item_tasks(item, ctx) if isinstance(item, XmlElement) else []
            elif index in whole or len(key) == 2:
                self._blocks[index] = self._read_block(el, ctx)
        return True

    def _assemble(self) -> Structure:
        tasks: dict[str, Task] = {}
        rows: dict[str, Row] = {}
        counts: dict[str, int] = {}

        def take(found: list[Task]) -> None:
            for i, task in enumerate(found):
                if task.id in tasks:
                    continue  # a duplicate id: waits for assign_ids
                if task.position != len(tasks):
                    task = found[i] = replace(task, position=len(tasks))  # cached as placed
                tasks[task.id] = task

        for block in self._blocks:
            if block.items is None:
                take(block.tasks)
            else:
                for item in block.items:
                    take(item)
            for i, row in enumerate(block.rows):
                if row.id in rows:
                    continue
                n = counts.get(row.kind, 0)
                counts[row.kind] = n + 1
                if row.position != n:
                    row = block.rows[i] = replace(row, position=n)
                rows[row.id] = row
        return Structure(tasks=tasks, rows=rows)


def read_structure(doc: Doc) -> Structure:
    """Tasks (with milestones), key results, risks and contacts, as the document holds them."""
    return StructureReader(doc, observe=False).read()
