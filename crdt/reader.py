"""Reading structure out of the plan document, in full or incrementally.

``StructureReader`` keeps what it read per top-level block (and per top-level task item of a
task list) and observes the fragment, so after an edit it reads again only the block or task
item that changed: a tick or a date moved costs one task's reading, not the whole plan's. A
top-level block added or removed (a paragraph started with Enter) is spliced in, read alone;
a heading added, removed or changed means a full read (sections move).

It also notes which blocks hold a task or table row without an id, and every id it passed,
so ``needs_ids()`` answers what ``structure.missing_ids`` answers without walking the plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from pycrdt import Doc, XmlElement, XmlText

from .schema import MAX_DEPTH, fragment
from .structure import (
    _ID_OWNERS,
    COLUMNS,
    SIDES,
    Mention,
    Owner,
    Row,
    Structure,
    Task,
    _first,
    parse_date,
    section_kind,
    task_status,
)
from .structure import (
    _walk as _elements,
)


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


@dataclass(frozen=True)
class _Context:
    path: tuple[str, ...]
    kind: str | None


@dataclass
class _Block:
    heading: tuple[int, str, str | None] | None = None
    items: list[_Block] | None = None  # a task list: a block per top-level item
    tasks: list[Task] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)  # every task and table row id passed
    missing: bool = False  # a task or table row without an id
    mentions: list[Mention] = field(default_factory=list)

    @property
    def structural(self) -> bool:
        """Whether this block holds anything the structure is made of (or could be)."""
        has_parts = self.heading or self.tasks or self.rows or self.ids or self.missing
        return bool(has_parts or self.mentions) or self.items is not None

    def note_id(self, el: XmlElement) -> None:
        value = el.attributes.get("id")
        if isinstance(value, str) and value:
            self.ids.append(value)
        else:
            self.missing = True


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


def _anchor(el: XmlElement, anchor: str | None) -> str | None:
    """The anchor of the mentions under ``el``: the id of the task or table row it is, or
    None while that has no id yet (its mentions are read once it has one)."""
    if el.tag not in _ID_OWNERS or anchor is None:
        return anchor
    value = el.attributes.get("id")
    return value if isinstance(value, str) and value else None


def _mention(el: XmlElement, parent: XmlElement, ctx: _Context, anchor: str) -> Mention | None:
    ref = el.attributes.get("id")
    if not isinstance(ref, str) or not ref:
        return None
    label = str(el.attributes.get("label") or "")
    return Mention(ref, label, anchor, ctx.path, inline_text(parent))


def _walk(
    el: XmlElement,
    ctx: _Context,
    block: _Block,
    depth: int = 1,
    anchor: str | None = "",
    owner_para: bool = False,
) -> None:
    """Read ``el`` into ``block``. ``anchor``: see ``_anchor``; ``owner_para``: ``el`` is a
    task's first paragraph, whose first mention is the task's owner, not a mention."""
    if depth > MAX_DEPTH:
        return  # deeper than the server accepts: written before it checked, not read
    tag = el.tag
    if tag in _ID_OWNERS:
        block.note_id(el)
    anchor = _anchor(el, anchor)
    if tag == "taskItem":
        task = _task(el, ctx)
        if task is not None:
            block.tasks.append(task)
    elif tag == "table" and ctx.kind in COLUMNS:
        _table(el, ctx, block.rows)
        for inner in _elements(el):  # ids only: what is inside is not read as tasks
            if inner.tag in _ID_OWNERS:
                block.note_id(inner)
        _mentions_only(el, ctx, block, depth, anchor)
        return
    first_para = tag == "taskItem"
    for child in el.children:
        if not isinstance(child, XmlElement):
            continue
        if child.tag == "mention":
            if owner_para:
                owner_para = False  # the owner chip
            elif anchor is not None and (m := _mention(child, el, ctx, anchor)) is not None:
                block.mentions.append(m)
            continue
        owner = first_para and child.tag == "paragraph"
        first_para = first_para and not owner
        _walk(child, ctx, block, depth + 1, anchor, owner)


def _mentions_only(
    el: XmlElement, ctx: _Context, block: _Block, depth: int, anchor: str | None
) -> None:
    """The mentions under a table whose rows are read as rows: each row's, anchored to it."""
    if depth > MAX_DEPTH:
        return
    anchor = _anchor(el, anchor)
    for child in el.children:
        if isinstance(child, XmlElement):
            if child.tag == "mention":
                if anchor is not None and (m := _mention(child, el, ctx, anchor)) is not None:
                    block.mentions.append(m)
            else:
                _mentions_only(child, ctx, block, depth + 1, anchor)


def _item_block(el: object, ctx: _Context) -> _Block:
    block = _Block()
    if isinstance(el, XmlElement):
        _walk(el, ctx, block)
    return block


class StructureReader:
    """Reads a document's structure; with ``observe``, again after edits, incrementally."""

    def __init__(self, doc: Doc, *, observe: bool = True) -> None:
        self.doc = doc
        self._blocks: list[_Block] = []
        self._contexts: list[_Context] = []
        self._full = True
        self._dirty: set[tuple[int, ...]] = set()
        # Top-level inserts and deletes of one transaction, not yet applied to ``_blocks``.
        self._splice: list[dict[str, Any]] | None = None
        # The last structure read, and whether what changed since can have changed it.
        self._last: Structure | None = None
        self._moved = True
        self._subscription = fragment(doc).observe_deep(self._changed) if observe else None

    def _changed(self, events: list[Any]) -> None:
        # Paths are in the coordinates after this transaction: a splice can only be applied
        # with the dirty paths of its own transaction, not with earlier ones.
        earlier = bool(self._dirty) or self._splice is not None
        for event in events:
            path = event.path
            if not path:
                if earlier or self._splice is not None:
                    self._full = True
                else:
                    self._splice = list(event.delta)
            elif len(path) == 1:
                self._dirty.add((path[0],))
            else:
                self._dirty.add((path[0], path[1]))

    def read(self) -> Structure:
        """The structure now. The very object of the last read when only text outside tasks
        and tables changed (most keystrokes), so callers can skip comparing."""
        with self.doc.transaction():
            if not self._full and not (self._apply_splice() and self._refresh()):
                self._full = True
            if self._full:
                self._read_all()
                self._moved = True
            self._full = False
            self._dirty.clear()
            self._splice = None
        if self._moved or self._last is None:
            self._last = self._assemble()
            self._moved = False
        return self._last

    def _read_all(self) -> None:
        self._blocks, self._contexts = [], []
        stack: list[tuple[int, str, str | None]] = []
        for el in fragment(self.doc).children:
            if isinstance(el, XmlElement) and el.tag == "heading":
                level = int(el.attributes.get("level") or 1)
                text = inline_text(el)
                while stack and stack[-1][0] >= level:
                    stack.pop()
                stack.append((level, text, section_kind(text)))
            kind = next((k for _, _, k in reversed(stack) if k is not None), None)
            ctx = _Context(tuple(t for _, t, _ in stack), kind)
            self._blocks.append(self._read_block(el, ctx))
            self._contexts.append(ctx)

    def _read_block(self, el: object, ctx: _Context) -> _Block:
        if not isinstance(el, XmlElement):
            return _Block()
        if el.tag == "heading":
            return _Block(heading=(0, "", None))
        if el.tag == "taskList":
            return _Block(items=[_item_block(c, ctx) for c in el.children])
        block = _Block()
        _walk(el, ctx, block)
        return block

    def _apply_splice(self) -> bool:
        """Blocks inserted and removed at the top level; False when a full read is needed."""
        if self._splice is None:
            return True
        i = 0
        for op in self._splice:
            if "retain" in op:
                i += op["retain"]
            elif "delete" in op:
                n = op["delete"]
                if i + n > len(self._blocks) or any(b.heading for b in self._blocks[i : i + n]):
                    return False  # a section ended or moved
                self._moved |= any(b.structural for b in self._blocks[i : i + n])
                del self._blocks[i : i + n], self._contexts[i : i + n]
            elif "insert" in op:
                for el in op["insert"]:
                    if isinstance(el, XmlElement) and el.tag == "heading":
                        return False
                    # Not a heading: it is in the section of the block before it.
                    ctx = self._contexts[i - 1] if i > 0 else _Context((), None)
                    block = self._read_block(el, ctx)
                    self._moved |= block.structural
                    self._blocks.insert(i, block)
                    self._contexts.insert(i, ctx)
                    i += 1
        return len(self._blocks) == len(fragment(self.doc).children)

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
                block.items[key[1]] = _item_block(el.children[key[1]], ctx)
                self._moved = True
            elif index in whole or len(key) == 2:
                new = self._blocks[index] = self._read_block(el, ctx)
                self._moved |= block.structural or new.structural
        return True

    def needs_ids(self) -> bool:
        """Whether, as of the last ``read``, a task or table row lacks an id or repeats one
        (what ``structure.missing_ids`` says, from what was read instead of a walk)."""
        seen: set[str] = set()
        for block in self._blocks:
            for part in block.items if block.items is not None else (block,):
                if part.missing:
                    return True
                for value in part.ids:
                    if value in seen:
                        return True
                    seen.add(value)
        return False

    def _assemble(self) -> Structure:
        tasks: dict[str, Task] = {}
        rows: dict[str, Row] = {}
        counts: dict[str, int] = {}
        mentions: list[Mention] = []

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
                mentions.extend(block.mentions)
            else:
                for item in block.items:
                    take(item.tasks)
                    mentions.extend(item.mentions)
            for i, row in enumerate(block.rows):
                if row.id in rows:
                    continue
                n = counts.get(row.kind, 0)
                counts[row.kind] = n + 1
                if row.position != n:
                    row = block.rows[i] = replace(row, position=n)
                rows[row.id] = row
        return Structure(tasks=tasks, rows=rows, mentions=tuple(mentions))


def read_structure(doc: Doc) -> Structure:
    """Tasks (with milestones), key results, risks and contacts, as the document holds them."""
    return StructureReader(doc, observe=False).read()
