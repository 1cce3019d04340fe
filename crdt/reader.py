"""Reading structure out of the plan document, in full or incrementally.

``StructureReader`` keeps what it read per top-level block (and per top-level task item of a
task list, and per row of a section's top-level table) and observes the fragment, so after an
edit it reads again only the block, task item or row that changed: a tick, a date moved or a
key typed in a cell costs one task's or row's reading, not the plan's. Task items and rows
added or removed are spliced in, read alone, as are top-level blocks (a paragraph started with
Enter); a heading added, removed or changed means a full read (sections move), a table's
header row changed a read of that table (its columns). Text typed in a block that holds no
task, row or mention is not read at all.

After a read it says what it touched (``touched``: tasks, rows and mention anchors, see
``crdt.changes.Touched``), so comparing two structures costs what changed, not the plan. It
also notes which blocks hold a task or table row without an id, and every id it passed, so
``needs_ids()`` answers what ``structure.missing_ids`` answers without walking the plan.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from itertools import islice
from typing import Any

from pycrdt import Doc, XmlElement, XmlText

from .changes import Touched
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
    # A task list, or a table of a recognised section: a block per child (task item, row).
    items: list[_Block] | None = None
    table: bool = False  # ``items`` are the rows of a section's table
    columns: list[str | None] | None = None  # that table's fields, from its header row
    header: int = -1  # the index of its header row among ``items`` (-1: no row yet)
    tasks: list[Task] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)  # every task and table row id passed
    missing: bool = False  # a task or table row without an id
    mentions: list[Mention] = field(default_factory=list)
    # Where its tasks, rows and mentions start in the structure last assembled.
    tstart: int = 0
    rstart: int = 0
    moffset: int = 0

    @property
    def structural(self) -> bool:
        """Whether this block holds anything the structure is made of (or could be)."""
        has_parts = self.heading or self.tasks or self.rows or self.ids or self.missing
        return bool(has_parts or self.mentions) or self.items is not None

    @property
    def shown(self) -> bool:
        """Whether the assembled structure shows something of it (an item, a leaf block)."""
        return bool(self.tasks or self.rows or self.mentions)

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


def _columns(row: XmlElement, kind: str) -> list[str | None] | None:
    """The fields of a table's columns as its header row names them; None when it names
    none of this section's (not a table of this section's kind)."""
    names = COLUMNS[kind]
    columns = [names.get(t.strip().rstrip(":").lower()) for t in _texts(row)]
    return columns if any(columns) else None


def _texts(row: XmlElement) -> list[str]:
    return [block_text(c) for c in row.children if isinstance(c, XmlElement)]


def _row(row: XmlElement, columns: list[str | None], ctx: _Context) -> Row | None:
    assert ctx.kind is not None
    texts = _texts(row)
    row_id = row.attributes.get("id")
    if not isinstance(row_id, str) or not row_id:
        return None
    fields = {c: t for c, t in zip(columns, texts, strict=False) if c}
    if not any(fields.values()):  # a blank row is one someone is about to fill in
        return None
    return Row(row_id, ctx.kind, tuple(sorted(fields.items())), ctx.path, -1)


def _is_row(el: object) -> bool:
    return isinstance(el, XmlElement) and el.tag == "tableRow"


def _table(el: XmlElement, ctx: _Context, out: list[Row]) -> None:
    assert ctx.kind is not None
    columns: list[str | None] | None = None
    for row in el.children:
        if not isinstance(row, XmlElement) or row.tag != "tableRow":
            continue
        if columns is None:
            columns = _columns(row, ctx.kind)
            if columns is None:
                return  # not a table of this section's kind
            continue
        if (found := _row(row, columns, ctx)) is not None:
            out.append(found)


def _anchor(el: XmlElement, anchor: str | None) -> str | None:
    """The anchor of the mentions under ``el``: the id of the task or table row it is, or
    None while that has no id yet (its mentions are read once it has one)."""
    if el.tag not in _ID_OWNERS or anchor is None:
        return anchor
    value = el.attributes.get("id")
    return value if isinstance(value, str) and value else None


def _mention(
    el: XmlElement, parent: XmlElement, ctx: _Context, anchor: str, text: list[str]
) -> Mention | None:
    """``text``: the parent's text once read (read once for all its mentions, not once each:
    a paragraph of many mentions would cost their number times its length)."""
    ref = el.attributes.get("id")
    if not isinstance(ref, str) or not ref:
        return None
    label = str(el.attributes.get("label") or "")
    if not text:
        text.append(inline_text(parent))
    return Mention(ref, label, anchor, ctx.path, text[0])


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
    text: list[str] = []
    for child in el.children:
        if not isinstance(child, XmlElement):
            continue
        if child.tag == "mention":
            if owner_para:
                owner_para = False  # the owner chip
            elif anchor is not None and (m := _mention(child, el, ctx, anchor, text)) is not None:
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
    text: list[str] = []
    for child in el.children:
        if isinstance(child, XmlElement):
            if child.tag == "mention":
                if anchor is not None and (m := _mention(child, el, ctx, anchor, text)) is not None:
                    block.mentions.append(m)
            else:
                _mentions_only(child, ctx, block, depth + 1, anchor)


def _item_block(el: object, ctx: _Context) -> _Block:
    """One top-level item of a task list. A table in it is not read as rows (as ever)."""
    block = _Block()
    if isinstance(el, XmlElement):
        _walk(el, ctx, block)
        block.rows.clear()
    return block


def _note_ids(el: XmlElement, depth: int, block: _Block) -> None:
    """The ids of the tasks and rows under ``el``, its children being at ``depth``."""
    for child in el.children:
        if isinstance(child, XmlElement):
            if child.tag in _ID_OWNERS:
                block.note_id(child)
            if depth < MAX_DEPTH:
                _note_ids(child, depth + 1, block)


def _row_item(el: object, ctx: _Context, columns: list[str | None] | None) -> _Block:
    """One child of a section's top-level table, read alone as ``_walk`` reads it in the
    table: its ids, its mentions and (``columns``: not the header row) its row."""
    block = _Block()
    if not isinstance(el, XmlElement):
        return block
    if el.tag in _ID_OWNERS:
        block.note_id(el)
    _note_ids(el, 2, block)
    _mentions_only(el, ctx, block, 2, "")
    if columns is not None and el.tag == "tableRow" and (row := _row(el, columns, ctx)):
        block.rows.append(row)
    return block


def _read_table(el: XmlElement, ctx: _Context) -> _Block | None:
    """A section's top-level table as a block per row; None if it cannot be read so (a
    mention right in the table, which no editor writes: its text is the whole table's)."""
    assert ctx.kind is not None
    children = list(el.children)
    if any(isinstance(c, XmlElement) and c.tag == "mention" for c in children):
        return None
    header = next((k for k, c in enumerate(children) if _is_row(c)), -1)
    first = children[header] if header >= 0 else None
    columns = _columns(first, ctx.kind) if isinstance(first, XmlElement) else None
    items = [_row_item(c, ctx, columns if k != header else None) for k, c in enumerate(children)]
    return _Block(items=items, table=True, columns=columns, header=header)


def _parts(blocks: list[_Block]) -> Iterator[_Block]:
    for block in blocks:
        yield from block.items if block.items is not None else (block,)


class StructureReader:
    """Reads a document's structure; with ``observe``, again after edits, incrementally.

    After each ``read``, ``touched`` says what may differ from ``previous`` (the structure the
    read before returned): the ids of the tasks and rows whose values changed, in document
    order, and the anchors of mentions that changed; None when anything may have (a full
    read, or tasks and rows added, removed or moved). ``crdt.changes`` compares only those."""

    def __init__(self, doc: Doc, *, observe: bool = True) -> None:
        self.doc = doc
        self._blocks: list[_Block] = []
        self._contexts: list[_Context] = []
        self._full = True
        self._dirty: set[tuple[int, ...]] = set()
        self._texts: set[tuple[int, ...]] = set()  # under a top-level block, text only
        self._deltas: dict[int, list[dict[str, Any]]] = {}  # children of a top-level block
        # Top-level inserts and deletes of one transaction, not yet applied to ``_blocks``.
        self._splice: list[dict[str, Any]] | None = None
        self._fresh: set[int] = set()  # top-level blocks the splice read as they are now
        # The elements at dirty paths, valid as long as the paths are (see ``_changed``).
        self._nodes: dict[tuple[int, ...], Any] = {}
        # What a read changed: (where, old, new) leaf blocks or items re-read; the first
        # place (block, item) where tasks, rows or mentions were added or removed, from
        # where the structure is assembled again; whether it is assembled whole.
        self._changes: list[tuple[tuple[int, int], _Block, _Block]] = []
        self._from: tuple[int, int] | None = None
        self._shape = True
        self._kind_counts: dict[str, int] = {}  # rows per kind, as last assembled
        # Every id read, how often, how many repeats and how many tasks or rows lack one.
        self._ids: dict[str, int] = {}
        self._repeats = 0
        self._missing = 0
        self._clean = False  # no repeated id when the structure was last assembled
        self._last: Structure | None = None
        self.previous: Structure | None = None
        self.touched: Touched | None = None
        self._subscription = fragment(doc).observe_deep(self._changed) if observe else None

    def _changed(self, events: list[Any]) -> None:
        # Paths are in the coordinates after this transaction: a splice can only be applied
        # with the dirty paths of its own transaction, not with earlier ones.
        before = {d[0] for d in self._dirty} | {d[0] for d in self._texts} | set(self._deltas)
        earlier = bool(before) or self._splice is not None
        for event in events:
            path = tuple(event.path)
            if not path:
                if earlier or self._splice is not None:
                    self._full = True
                else:
                    self._splice = list(event.delta)
            elif len(path) == 1:
                index = path[0]
                self._nodes[path] = event.target
                if index in before or event.keys or isinstance(event.target, XmlText):
                    self._dirty.add((index,))
                else:
                    self._deltas[index] = list(event.delta)
            else:
                key = (path[0], path[1])
                if key not in self._nodes:
                    # The block and item changed, found from the event's target up, not by
                    # index from the top: a row far down a long table is not walked to.
                    node = event.target
                    for _ in range(len(path) - 2):
                        node = node.parent
                    self._nodes[key] = node
                    self._nodes.setdefault(key[:1], node.parent)
                (self._texts if isinstance(event.target, XmlText) else self._dirty).add(key)

    def read(self) -> Structure:
        """The structure now. The very object of the last read when only text outside tasks
        and tables changed (most keystrokes), so callers can skip comparing."""
        with self.doc.transaction():
            self._changes, self._shape, self._from = [], False, None
            if not self._full and not (self._apply_splice() and self._refresh()):
                self._full = True
            if self._full:
                self._read_all()
            self._full = False
            self._dirty.clear()
            self._texts.clear()
            self._deltas.clear()
            self._fresh.clear()
            self._nodes.clear()
            self._splice = None
        previous, touched = self._last, None
        if previous is None or self._shape:
            structure = self._assemble()
        elif not self._changes and self._from is None:
            structure, touched = previous, Touched()
        elif (patched := self._patch(previous)) is not None or (
            patched := self._reassemble(previous)
        ) is not None:
            structure, touched = patched
        else:
            structure = self._assemble()
        self._clean = self._repeats == 0
        self.previous, self.touched, self._last = previous, touched, structure
        self._changes = []
        return structure

    def _read_all(self) -> None:
        self._blocks, self._contexts = [], []
        self._ids, self._repeats, self._missing = {}, 0, 0
        self._shape = True
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
            block = self._read_block(el, ctx)
            self._count(block, 1)
            self._blocks.append(block)
            self._contexts.append(ctx)

    def _read_block(self, el: object, ctx: _Context) -> _Block:
        if not isinstance(el, XmlElement):
            return _Block()
        if el.tag == "heading":
            return _Block(heading=(0, "", None))
        if el.tag == "taskList":
            return _Block(items=[_item_block(c, ctx) for c in el.children])
        if el.tag == "table" and ctx.kind in COLUMNS and (table := _read_table(el, ctx)):
            return table
        block = _Block()
        _walk(el, ctx, block)
        return block

    def _count(self, block: _Block, sign: int) -> None:
        """Count ``block``'s ids and ids wanting (sign 1), or stop counting them (-1)."""
        for part in block.items if block.items is not None else (block,):
            self._missing += sign * part.missing
            for value in part.ids:
                n = self._ids.get(value, 0) + sign
                self._repeats += sign if n + (sign < 0) > 1 else 0
                if n:
                    self._ids[value] = n
                else:
                    del self._ids[value]

    def _replace(self, where: tuple[int, int], old: _Block, new: _Block) -> None:
        self._count(old, -1)
        self._count(new, 1)
        if old.items is not None or new.items is not None:
            self._moved(where)  # a task list or table read whole
        elif old.shown or new.shown:
            self._changes.append((where, old, new))

    def _moved(self, where: tuple[int, int]) -> None:
        """Tasks, rows or mentions added or removed at ``where``: what follows moves."""
        if self._from is None or where < self._from:
            self._from = where

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
                for block in self._blocks[i : i + n]:
                    self._count(block, -1)
                    if block.items is not None or block.shown:
                        self._moved((i, 0))
                del self._blocks[i : i + n], self._contexts[i : i + n]
                self._fresh = {f if f < i else f - n for f in self._fresh if not i <= f < i + n}
            elif "insert" in op:
                for el in op["insert"]:
                    if isinstance(el, XmlElement) and el.tag == "heading":
                        return False
                    # Not a heading: it is in the section of the block before it.
                    ctx = self._contexts[i - 1] if i > 0 else _Context((), None)
                    block = self._read_block(el, ctx)
                    self._count(block, 1)
                    if block.items is not None or block.shown:
                        self._moved((i, 0))
                    self._fresh = {f if f < i else f + 1 for f in self._fresh} | {i}
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
        items: dict[int, set[int]] = {}
        for key in self._dirty:
            if len(key) == 2:
                items.setdefault(key[0], set()).add(key[1])
        for index, item in self._texts:
            # Text typed in a block that holds nothing structural cannot make it hold some:
            # an @mention or a task is an element, whose insertion is an event of its own.
            block = self._blocks[index] if index < len(self._blocks) else None
            if block is None or block.items is not None or block.structural:
                items.setdefault(index, set()).add(item)
        for index in sorted(whole | set(items) | set(self._deltas)):
            if index >= len(self._blocks):
                return False
            el = self._nodes.get((index,)) or children[index]
            block = self._blocks[index]
            if not isinstance(el, XmlElement) or el.tag == "heading" or block.heading:
                return False
            if index in self._fresh:
                continue  # read as it is now
            ctx = self._contexts[index]
            keys, delta = items.get(index, set()), self._deltas.get(index)
            if (
                index in whole
                or block.items is None
                or not self._refresh_items(index, el, block, ctx, keys, delta)
            ):
                new = self._blocks[index] = self._read_block(el, ctx)
                self._replace((index, 0), block, new)
        return True

    def _refresh_items(
        self,
        index: int,
        el: XmlElement,
        block: _Block,
        ctx: _Context,
        keys: set[int],
        delta: list[dict[str, Any]] | None,
    ) -> bool:
        """Re-read the items of a task list or section table that changed, splice in those
        inserted and out those deleted; False (nothing done) when the block must be read
        whole: its header row changed, or what was seen does not add up."""
        assert block.items is not None
        if el.tag != ("table" if block.table else "taskList"):
            return False
        header = block.header if block.table else None
        if header is not None and header < 0 and delta:
            return False  # maybe its first row: the header
        n, i = len(block.items), 0
        for op in delta or ():
            if header is not None and ("delete" in op or "insert" in op) and i <= header:
                return False  # the header row decides the columns: read it all again
            if "retain" in op:
                i += op["retain"]
            elif "delete" in op:
                if i + op["delete"] > n:
                    return False
                n -= op["delete"]
            elif "insert" in op:
                inserted = op["insert"]
                if block.table and any(
                    isinstance(c, XmlElement) and c.tag == "mention" for c in inserted
                ):
                    return False
                i += len(inserted)
                n += len(inserted)
        if n != len(el.children) or any(k >= n or k == header for k in keys):
            return False
        read = (
            (lambda c: _row_item(c, ctx, block.columns))
            if block.table
            else (lambda c: _item_block(c, ctx))
        )
        i = 0
        for op in delta or ():
            if "retain" in op:
                i += op["retain"]
            elif "delete" in op:
                gone = block.items[i : i + op["delete"]]
                for item in gone:
                    self._count(item, -1)
                    if item.shown:
                        self._moved((index, i))
                del block.items[i : i + op["delete"]]
            elif "insert" in op:
                for child in op["insert"]:
                    item = read(child)
                    self._count(item, 1)
                    if item.shown:
                        self._moved((index, i))
                    block.items.insert(i, item)
                    i += 1
        for k in sorted(keys):
            old, new = block.items[k], read(self._nodes.get((index, k)) or el.children[k])
            block.items[k] = new
            self._replace((index, k), old, new)
        return True

    def needs_ids(self) -> bool:
        """Whether, as of the last ``read``, a task or table row lacks an id or repeats one
        (what ``structure.missing_ids`` says, from what was read instead of a walk)."""
        return self._missing > 0 or self._repeats > 0

    def _patch(self, last: Structure) -> tuple[Structure, Touched] | None:
        """The last structure with the leaf blocks and items re-read put in, when the same
        tasks and rows are in the same places (and no id is repeated); else None."""
        if self._repeats or not self._clean or self._from is not None:
            return None
        tasks: dict[str, Task] | None = None
        rows: dict[str, Row] | None = None
        mentions: list[Mention] | None = None
        touched_tasks: dict[str, None] = {}
        touched_rows: dict[str, None] = {}
        anchors: set[str] = set()
        for _, old, new in self._changes:
            if len(old.tasks) != len(new.tasks) or len(old.rows) != len(new.rows):
                return None
            if len(old.mentions) != len(new.mentions):
                return None
            for i, (a, b) in enumerate(zip(old.tasks, new.tasks, strict=True)):
                if a.id != b.id:
                    return None
                b = new.tasks[i] = replace(b, position=a.position)
                if a != b:
                    if tasks is None:
                        tasks = dict(last.tasks)
                    tasks[b.id] = b
                    touched_tasks[b.id] = None
            for i, (ra, rb) in enumerate(zip(old.rows, new.rows, strict=True)):
                if ra.id != rb.id or ra.kind != rb.kind:
                    return None
                rb = new.rows[i] = replace(rb, position=ra.position)
                if ra != rb:
                    if rows is None:
                        rows = dict(last.rows)
                    rows[rb.id] = rb
                    touched_rows[rb.id] = None
            new.tstart, new.rstart, new.moffset = old.tstart, old.rstart, old.moffset
            if old.mentions != new.mentions:
                if mentions is None:
                    mentions = list(last.mentions)
                mentions[old.moffset : old.moffset + len(old.mentions)] = new.mentions
                anchors.update(m.anchor for m in old.mentions)
                anchors.update(m.anchor for m in new.mentions)
        if tasks is None and rows is None and mentions is None:
            return last, Touched()
        structure = Structure(
            tasks=last.tasks if tasks is None else tasks,
            rows=last.rows if rows is None else rows,
            mentions=last.mentions if mentions is None else tuple(mentions),
        )
        touched = Touched(tuple(touched_tasks), tuple(touched_rows), frozenset(anchors))
        return structure, touched

    def _assemble(self) -> Structure:
        tasks: dict[str, Task] = {}
        rows: dict[str, Row] = {}
        counts: dict[str, int] = {}
        mentions: list[Mention] = []
        _place(_parts(self._blocks), tasks, rows, counts, mentions)
        self._kind_counts = counts
        return Structure(tasks=tasks, rows=rows, mentions=tuple(mentions))

    def _reassemble(self, last: Structure) -> tuple[Structure, Touched] | None:
        """The last structure as it was up to the first place that changed, and from there
        assembled again: proportional to what follows, whose positions may have moved."""
        if self._repeats or not self._clean:
            return None
        froms = [] if self._from is None else [self._from]
        start = min([w for w, _, _ in self._changes] + froms)
        b, k = start
        prev = self._shown_before(b, k)
        ntasks = prev.tstart + len(prev.tasks) if prev else 0
        nrows = prev.rstart + len(prev.rows) if prev else 0
        nmentions = prev.moffset + len(prev.mentions) if prev else 0
        old_tasks = tuple(islice(last.tasks, ntasks, None))
        old_rows = list(islice(last.rows.values(), nrows, None))
        counts = dict(self._kind_counts)
        for row in old_rows:
            counts[row.kind] -= 1
        tasks = dict(islice(last.tasks.items(), ntasks))
        rows = dict(islice(last.rows.items(), nrows))
        mentions = list(last.mentions[:nmentions])
        if not _place(self._parts_from(b, k), tasks, rows, counts, mentions):
            return None
        self._kind_counts = counts
        anchors = {m.anchor for m in last.mentions[nmentions:]}
        anchors.update(m.anchor for m in mentions[nmentions:])
        touched = Touched(
            tuple(islice(tasks, ntasks, None)),
            tuple(islice(rows, nrows, None)),
            frozenset(anchors),
            old_tasks=old_tasks,
            old_rows=tuple(r.id for r in old_rows),
        )
        return Structure(tasks=tasks, rows=rows, mentions=tuple(mentions)), touched

    def _shown_before(self, b: int, k: int) -> _Block | None:
        """The last block or item before (b, k) the structure shows something of."""
        if b < len(self._blocks) and (items := self._blocks[b].items) is not None:
            for i in range(min(k, len(items)) - 1, -1, -1):
                if items[i].shown:
                    return items[i]
        for i in range(min(b, len(self._blocks)) - 1, -1, -1):
            block = self._blocks[i]
            parts = block.items if block.items is not None else [block]
            for j in range(len(parts) - 1, -1, -1):
                if parts[j].shown:
                    return parts[j]
        return None

    def _parts_from(self, b: int, k: int) -> Iterator[_Block]:
        if b < len(self._blocks):
            block = self._blocks[b]
            yield from islice(block.items, k, None) if block.items is not None else (block,)
        for block in islice(self._blocks, b + 1, None):
            yield from block.items if block.items is not None else (block,)


def _place(
    parts: Iterable[_Block],
    tasks: dict[str, Task],
    rows: dict[str, Row],
    counts: dict[str, int],
    mentions: list[Mention],
) -> bool:
    """Put the tasks, rows and mentions of ``parts`` after those given, noting where each
    part's start (for ``_reassemble``). False when an id was seen before."""
    unique = True
    for part in parts:
        part.tstart, part.rstart, part.moffset = len(tasks), len(rows), len(mentions)
        for i, task in enumerate(part.tasks):
            if task.id in tasks:
                unique = False
                continue  # a duplicate id: waits for assign_ids
            if task.position != len(tasks):
                task = part.tasks[i] = replace(task, position=len(tasks))  # cached as placed
            tasks[task.id] = task
        mentions.extend(part.mentions)
        for i, row in enumerate(part.rows):
            if row.id in rows:
                unique = False
                continue
            n = counts.get(row.kind, 0)
            counts[row.kind] = n + 1
            if row.position != n:
                row = part.rows[i] = replace(row, position=n)
            rows[row.id] = row
    return unique


def read_structure(doc: Doc) -> Structure:
    """Tasks (with milestones), key results, risks and contacts, as the document holds them."""
    return StructureReader(doc, observe=False).read()
