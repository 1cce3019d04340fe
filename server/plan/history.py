"""Version history, read back from the update log: the plan at any moment, editing sessions,
what changed in commitments between two moments, and restoring old content. No Starlette.

The plan at a moment is a replay: the newest room checkpoint at or before that point of the
log, the history segments after it (the log cut every SEGMENT_UPDATES updates, each stretch
kept as one update: what it added to the document) and at most SEGMENT_UPDATES updates of
the log. The worker keeps the segments as logs grow; a read makes any it needs that are not
there yet. A segment is never larger than its updates merged, so they add less than the log.

Editing sessions are found from the log's times read backwards from the page asked for, so a
page costs the same on a plan of any length; the closed ones are cached as they are read.
"""

from __future__ import annotations

import asyncio
import difflib
import logging
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pycrdt import Doc, merge_updates
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import crdt
import persistence
from crdt import diff as structure_diff
from server.store import Store

from .errors import ApiError

log = logging.getLogger(__name__)

#: Edits with no gap longer than this belong to one editing session.
SESSION_GAP = timedelta(minutes=5)
#: A run of edits is also cut where the document's log passes a multiple of this many updates
#: (counted from its start), so no session is longer and the cut is the same whichever way the
#: log is read.
SESSION_MAX_UPDATES = 3000
#: The log is kept for history as segments of this many updates, each merged into one update
#: (``history_snapshots``): the plan at any moment is a room checkpoint, the whole segments
#: after it and at most this many updates of the log.
SEGMENT_UPDATES = 1000
#: On PostgreSQL a log id is handed out before its transaction commits, so an id can become
#: visible after a higher one: a segment ends only at updates at least this old there.
SEGMENT_SETTLE = timedelta(seconds=10)
#: Log rows read per round while looking for session boundaries.
SCAN_CHUNK = 5000


# --- the plan at a moment --------------------------------------------------------------------


def _new_segments(
    s: Session, plan_id: str, doc: str, upto_id: int | None, settled: datetime | None
) -> list[tuple[int, int, bytes]]:
    """The whole segments the log holds beyond the last one kept (up to ``upto_id``).

    A segment is what its updates added to the document, as Yrs encodes it against the state
    before them (consecutive keystrokes squashed into one item), or the updates merged as
    they are when that is smaller (the former carries the document's whole delete set)."""
    end = persistence.segments_end(session=s, plan_id=plan_id, doc=doc)
    out: list[tuple[int, int, bytes]] = []
    ydoc: Doc | None = None
    while True:
        # Nearly always there is no whole segment yet: asked of the index first, not by
        # reading up to SEGMENT_UPDATES updates to count them (the worker asks it of every
        # plan a few seconds after each burst of editing; at 1,000 plans edited now and then,
        # that read was a fifth of the worker's time).
        if not persistence.holds_updates_after(
            session=s, plan_id=plan_id, after_id=end, count=SEGMENT_UPDATES, doc=doc
        ):
            break
        rows = persistence.updates_after(
            session=s, plan_id=plan_id, after_id=end, doc=doc, limit=SEGMENT_UPDATES
        )
        last_id, last_at = rows[-1][0], rows[-1][1]
        if (upto_id is not None and last_id > upto_id) or (
            settled is not None and last_at > settled
        ):
            break
        if ydoc is None:
            ydoc = _replay(s, plan_id, end, doc)
        before = ydoc.get_state()
        with ydoc.transaction():
            for _, _, data in rows:
                ydoc.apply_update(data)
        added = ydoc.get_update(before)
        merged = merge_updates(*(data for _, _, data in rows))
        out.append((end, last_id, min(added, merged, key=len)))
        end = last_id
    return out


async def keep_segments(store: Store, plan_id: str, doc: str, upto_id: int | None = None) -> int:
    """Merge the log's whole segments not kept yet (up to ``upto_id``); how many were added.
    The worker calls it as logs grow; a read of an old moment calls it for what it needs."""
    settled = None if store.sqlite else datetime.now(UTC) - SEGMENT_SETTLE
    found = await store.read(lambda s: _new_segments(s, plan_id, doc, upto_id, settled))
    if not found:
        return 0

    def save(s: Session) -> int:
        return persistence.save_segments(session=s, plan_id=plan_id, segments=found, doc=doc)

    try:
        return await store.run_derived(save)
    except IntegrityError:
        return 0  # another reader kept the same segments meanwhile


class SegmentKeeper:
    """Keeps the history segments of the logs that grow, a while after they grew (the
    worker's log follower tells it), so reading an old moment finds them there."""

    def __init__(self, store: Store, *, after: float = 5.0) -> None:
        self.store = store
        self.after = after
        self._waiting: dict[str, asyncio.Task[None]] = {}

    def grew(self, plan_id: str) -> None:
        if plan_id not in self._waiting:
            self._waiting[plan_id] = asyncio.create_task(self._later(plan_id))

    async def _later(self, plan_id: str) -> None:
        try:
            await asyncio.sleep(self.after)
            for doc in ("plan", "internal"):
                await keep_segments(self.store, plan_id, doc)
            if not self.store.sqlite:
                # The newest updates were too fresh to end a segment there: once more later.
                await asyncio.sleep(SEGMENT_SETTLE.total_seconds())
                for doc in ("plan", "internal"):
                    await keep_segments(self.store, plan_id, doc)
        except Exception:
            log.exception("keeping the history segments of plan %s failed", plan_id)
        finally:
            self._waiting.pop(plan_id, None)

    async def close(self) -> None:
        for task in list(self._waiting.values()):
            task.cancel()
        await asyncio.gather(*self._waiting.values(), return_exceptions=True)


def _replay(s: Session, plan_id: str, upto_id: int, doc: str) -> Doc:
    """The room checkpoint at or before ``upto_id``, the segments after it and the log's
    updates after the last of them (the gaps between segments, if any, from the log)."""
    base_id, base = persistence.replay_base(session=s, plan_id=plan_id, upto_id=upto_id, doc=doc)
    parts: list[bytes] = []
    covered = base_id

    def log_to(point: int) -> None:
        parts.extend(
            data
            for _, data in persistence.updates_between(
                session=s, plan_id=plan_id, after_id=covered, upto_id=point, doc=doc
            )
        )

    for after, end, data in persistence.segments_between(
        session=s, plan_id=plan_id, after_id=base_id, upto_id=upto_id, doc=doc
    ):
        if after > covered:
            log_to(after)
        parts.append(data)  # overlapping the checkpoint is harmless: updates are idempotent
        covered = end
    if covered < upto_id:
        log_to(upto_id)
    ydoc = crdt.doc_from_updates([], base=base)
    # One transaction: pycrdt's wrapper costs more per update than Yrs' own apply.
    with ydoc.transaction():
        for data in parts:
            ydoc.apply_update(data)
    return ydoc


async def doc_at(store: Store, plan_id: str, upto_id: int, doc: str = "plan") -> Doc:
    """The document as it was after log entry ``upto_id`` and none later."""
    # Segments missing (the worker is behind, or they were deleted): all of them at once, so
    # only this read pays for it, not every later one that reaches further.
    await keep_segments(store, plan_id, doc)
    return await store.read(lambda s: _replay(s, plan_id, upto_id, doc))


async def state_at(store: Store, plan_id: str, upto_id: int, doc: str = "plan") -> bytes:
    """The document's state as one update, after log entry ``upto_id`` and none later."""
    return (await doc_at(store, plan_id, upto_id, doc)).get_update()


def parse_time(value: str, name: str) -> datetime:
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise ApiError(
            400, f"{name} must be an ISO 8601 time, e.g. 2026-03-01T09:30:00Z", field=name
        ) from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


async def point_of(
    store: Store,
    plan_id: str,
    *,
    at: str | None = None,
    upto: str | None = None,
    version: str | None = None,
    name: str = "at",
    doc: str = "plan",
) -> int:
    """A point of the log from an ISO time, a log id or a version id; clear 400s otherwise."""
    given = [v for v in (at, upto, version) if v is not None]
    if len(given) != 1:
        raise ApiError(400, f"give one of {name}, upto or version", field=name)
    span = await store.read(lambda s: persistence.log_span(session=s, plan_id=plan_id, doc=doc))
    if span is None:
        raise ApiError(400, "this plan has no history yet", field=name)
    first_at, last_at, first_id, last_id = span
    if at is not None:
        when = parse_time(at, name)
        if when > datetime.now(UTC) + timedelta(seconds=1):
            raise ApiError(400, f"{name} is in the future", field=name)
        if when < first_at:
            raise ApiError(
                400, f"{name} is before the plan was created ({first_at.isoformat()})", field=name
            )
        return await store.read(
            lambda s: persistence.log_id_at(session=s, plan_id=plan_id, at=when, doc=doc)
        )
    if upto is not None:
        if not upto.isdigit() or len(upto) > 18:
            raise ApiError(400, "upto must be a log id (a whole number)", field="upto")
        point = int(upto)
        if point < first_id or point > last_id:
            raise ApiError(
                400, f"upto must be between {first_id} and {last_id} for this plan", field="upto"
            )
        return point
    assert version is not None
    if not version.isdigit() or len(version) > 18:
        raise ApiError(400, "version must be a version id (a whole number)", field="version")
    record = await store.read(
        lambda s: persistence.get_version(session=s, plan_id=plan_id, version_id=int(version))
    )
    if record is None:
        raise ApiError(404, f"no version {version} in this plan", field="version")
    return record.upto_id


async def point_from(store: Store, plan_id: str, value: str, name: str) -> int:
    """``from``/``to`` of a comparison: ``v<id>`` or a version id, ``u<log id>``, or a time."""
    if value.startswith("v") and value[1:].isdigit():
        return await point_of(store, plan_id, version=value[1:], name=name)
    if value.isdigit():
        return await point_of(store, plan_id, version=value, name=name)
    if value.startswith("u") and value[1:].isdigit():
        return await point_of(store, plan_id, upto=value[1:], name=name)
    return await point_of(store, plan_id, at=value, name=name)


# --- text: sections and how much of each changed ----------------------------------------------

_HEADING = re.compile(r"^#{1,6} +(.*)$")


def sections(markdown: str) -> dict[str, str]:
    """Markdown by section heading ('' for what comes before the first heading)."""
    out: dict[str, list[str]] = defaultdict(list)
    current = ""
    for line in markdown.splitlines():
        m = _HEADING.match(line)
        if m:
            current = m.group(1).strip() or current
            continue
        out[current].append(line)
    return {k: "\n".join(v) for k, v in out.items()}


def text_changes(before: dict[str, str], after: dict[str, str]) -> list[dict[str, Any]]:
    """Per section, words added and removed (in document order of ``after``, then removed ones)."""
    out = []
    for name in [*after, *(k for k in before if k not in after)]:
        a, b = before.get(name, "").split(), after.get(name, "").split()
        if a == b:
            continue
        # The words both share at the start and the end are no change: most sessions edit a
        # small stretch of a long section.
        head = 0
        while head < min(len(a), len(b)) and a[head] == b[head]:
            head += 1
        tail = 0
        while tail < min(len(a), len(b)) - head and a[-1 - tail] == b[-1 - tail]:
            tail += 1
        a, b = a[head : len(a) - tail], b[head : len(b) - tail]
        if len(a) + len(b) > 20000:
            added, removed = max(0, len(b) - len(a)), max(0, len(a) - len(b))
        else:
            added = removed = 0
            for op, i1, i2, j1, j2 in difflib.SequenceMatcher(
                a=a, b=b, autojunk=False
            ).get_opcodes():
                if op != "equal":
                    removed += i2 - i1
                    added += j2 - j1
        if added or removed:
            out.append({"section": name or "(top)", "added": added, "removed": removed})
    return out


def text_line(changes: Sequence[dict[str, Any]]) -> str:
    parts = []
    for c in changes:
        counts = " ".join(
            x
            for x in (
                f"+{c['added']}" if c["added"] else "",
                f"−{c['removed']}" if c["removed"] else "",
            )
            if x
        )
        parts.append(f"{c['section']} ({counts} words)")
    return "Text: " + ", ".join(parts) if parts else ""


# --- commitment changes as a sentence -----------------------------------------------------------


def _day(value: Any) -> str:
    try:
        d = date.fromisoformat(str(value))
    except ValueError:
        return "no date" if not value else str(value)
    return f"{d.day} {d.strftime('%B')}"


def _name_of(e: dict[str, Any], names: dict[str, str]) -> str:
    for v in (e.get("new"), e.get("old")):
        if isinstance(v, dict):
            for k in ("text", "metric", "risk", "name"):
                if v.get(k):
                    return str(v[k])
    return names.get(e["entity_id"]) or "an item"


_NOUNS = {"task": "task", "key_result": "key result", "risk": "risk", "contact": "contact"}


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def commitment_line(events: Sequence[dict[str, Any]], names: dict[str, str]) -> str:
    """ "Dana added 3 tasks; Go-live moved from 3 March to 17 March; Onboarding call done"."""
    by_author: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        by_author[e.get("author_name") or "Tandem"].append(e)
    clauses = []
    for who, evs in by_author.items():
        added = Counter(e["entity"] for e in evs if e["kind"] == "created")
        removed = Counter(e["entity"] for e in evs if e["kind"] == "removed")
        phrases = [f"added {_plural(n, _NOUNS.get(k, k))}" for k, n in added.items()]
        phrases += [f"removed {_plural(n, _NOUNS.get(k, k))}" for k, n in removed.items()]
        for e in evs:
            name, kind = _name_of(e, names), e["kind"]
            if kind == "due_moved":
                phrases.append(f"{name} moved from {_day(e['old'])} to {_day(e['new'])}")
            elif kind == "completed":
                phrases.append(f"{name} done")
            elif kind == "reopened":
                phrases.append(f"{name} reopened")
            elif kind == "reassigned":
                new = e.get("new")
                label = new.get("label") if isinstance(new, dict) else new
                phrases.append(f"{name} given to {label}" if label else f"{name} unassigned")
            elif kind == "kr_value_changed":
                phrases.append(f"{name} {e['old'] or '—'} → {e['new'] or '—'}")
            elif kind == "risk_severity_changed":
                phrases.append(f"risk {name} {e['old'] or 'unrated'} → {e['new'] or 'unrated'}")
            elif kind == "status_changed":
                phrases.append(f"{name} {e['new']}")
        if phrases:
            clauses.append(f"{who} " + "; ".join(phrases))
    return "; ".join(clauses)


# --- sessions ---------------------------------------------------------------------------------


def _words(ydoc: Doc) -> dict[str, str]:
    return crdt.text_sections(ydoc)


@dataclass
class _Span:
    """One session's place in the log, found from the log's times and authors alone."""

    first_id: int
    last_id: int
    started_at: datetime
    ended_at: datetime
    updates: int
    authors: list[int | None]


def _spans(
    s: Session, plan_id: str, doc: str, before: int | None, limit: int, *, use_cache: bool = True
) -> tuple[list[_Span], bool, int | None]:
    """Up to ``limit`` sessions starting before ``before``, newest first, read backwards from
    there: a run of edits ends at a gap over SESSION_GAP or where the log passes a multiple
    of SESSION_MAX_UPDATES. Also whether the newest one was cut there (not by a gap), and the
    log id where the walk met the end of a cached session (the cache has the rest), if it did."""
    rows = persistence.log_marks_before(
        session=s, plan_id=plan_id, before_id=before, doc=doc, limit=SCAN_CHUNK
    )
    if not rows:
        return [], False, None
    pos = persistence.log_position(session=s, plan_id=plan_id, upto_id=rows[0][0], doc=doc)
    cut_newest = pos % SESSION_MAX_UPDATES == 0
    spans: list[_Span] = []
    cur: _Span | None = None
    while rows:
        ends = (
            persistence.cached_session_ends(
                session=s, plan_id=plan_id, low=rows[-1][0], high=rows[0][0], doc=doc
            )
            if use_cache
            else set()
        )
        for log_id, at, author in rows:
            if cur is not None and (
                cur.started_at - at > SESSION_GAP or pos % SESSION_MAX_UPDATES == 0
            ):
                if len(spans) == limit:
                    return spans, cut_newest, None
                cur = None
            if cur is None:
                if log_id in ends:
                    return spans, cut_newest, log_id
                cur = _Span(log_id, log_id, at, at, 0, [])
                spans.append(cur)
            cur.first_id, cur.started_at = log_id, at
            cur.updates += 1
            if author not in cur.authors:
                cur.authors.insert(0, author)
            pos -= 1
        rows = persistence.log_marks_before(
            session=s, plan_id=plan_id, before_id=rows[-1][0], doc=doc, limit=SCAN_CHUNK
        )
    return spans, cut_newest, None


def _texts(
    s: Session, plan_id: str, doc: str, spans: Sequence[_Span]
) -> dict[int, list[dict[str, Any]]]:
    """What each session (oldest first) changed in the text, by replaying the log from the
    plan as it was before the first of them (afresh where one does not follow the last)."""
    out: dict[int, list[dict[str, Any]]] = {}
    ydoc: Doc | None = None
    before: dict[str, str] = {}
    at = -1
    for span in spans:
        rows = persistence.updates_between(
            session=s, plan_id=plan_id, after_id=span.first_id - 1, upto_id=span.last_id, doc=doc
        )
        if ydoc is None or at != span.first_id - 1:
            older = persistence.log_marks_before(
                session=s, plan_id=plan_id, before_id=span.first_id, doc=doc, limit=1
            )
            if ydoc is None or not older or older[0][0] != at:
                ydoc = _replay(s, plan_id, span.first_id - 1, doc)
                before = _words(ydoc)
        with ydoc.transaction():
            for _, data in rows:
                ydoc.apply_update(data)
        after = _words(ydoc)
        out[span.first_id] = text_changes(before, after)
        before, at = after, span.last_id
    return out


def _record(span: _Span, text: list[dict[str, Any]]) -> persistence.SessionRecord:
    return persistence.SessionRecord(
        first_id=span.first_id,
        last_id=span.last_id,
        started_at=span.started_at,
        ended_at=span.ended_at,
        updates=span.updates,
        authors=span.authors,
        text=text,
    )


def _page(
    s: Session, plan_id: str, doc: str, before: int | None, limit: int, now: datetime
) -> tuple[list[persistence.SessionRecord], persistence.SessionRecord | None, list[int]]:
    """The page of sessions, newest first: the log's times read backwards until they meet a
    cached session, then the cache while its sessions follow one another, and so on. Also
    the open one, if the page holds it, and which ones were worked out now."""
    items: list[_Span | persistence.SessionRecord] = []
    cursor, newest_cut, use_cache = before, False, True
    while len(items) < limit:
        spans, cut, stop = _spans(s, plan_id, doc, cursor, limit - len(items), use_cache=use_cache)
        if not items:
            newest_cut = cut
        items += spans
        if stop is None or len(items) >= limit:
            break
        expected: int | None = stop
        taken = 0
        for c in persistence.cached_sessions(
            session=s, plan_id=plan_id, before_id=stop + 1, limit=limit - len(items), doc=doc
        ):
            if c.last_id != expected:
                break
            items.append(c)
            taken += 1
            older = persistence.log_marks_before(
                session=s, plan_id=plan_id, before_id=c.first_id, doc=doc, limit=1
            )
            expected = older[0][0] if older else None
            if expected is None:
                break
        if taken == 0:
            use_cache = False  # the cache does not hold what it seemed to: read the log
        else:
            use_cache = True
            cursor = items[-1].first_id
        if expected is None:
            break  # the log's start
    fresh = [x for x in items if isinstance(x, _Span)]
    texts = _texts(s, plan_id, doc, list(reversed(fresh)))
    page = [_record(x, texts[x.first_id]) if isinstance(x, _Span) else x for x in items]
    newest = items[0] if items else None
    is_open = (
        isinstance(newest, _Span)
        and before is None
        and not newest_cut
        and now - newest.ended_at <= SESSION_GAP
    )
    return page, page[0] if is_open else None, [x.first_id for x in fresh]


async def sessions_page(
    store: Store,
    plan_id: str,
    *,
    before: int | None = None,
    limit: int = 20,
    doc: str = "plan",
) -> list[dict[str, Any]]:
    """Editing sessions, newest first, each starting before log id ``before``. Only the page
    asked for is read; the closed sessions it had to work out are cached."""
    now = datetime.now(UTC)
    page, open_, fresh = await store.read(lambda s: _page(s, plan_id, doc, before, limit, now))
    new = [p for p in page if p is not open_ and p.first_id in fresh]
    if new:

        def keep(s: Session) -> None:
            persistence.save_sessions(session=s, plan_id=plan_id, sessions=new, doc=doc)

        try:
            await store.run_derived(keep)
        except IntegrityError:
            pass  # another request cached them meanwhile

    def read(
        s: Session,
    ) -> tuple[list[dict[str, Any]], dict[int, str], dict[str, str]]:
        events: list[dict[str, Any]] = []
        if page and doc == "plan":
            events = persistence.audit_between(
                session=s, plan_id=plan_id, after_id=page[-1].first_id - 1, upto_id=page[0].last_id
            )
        ids = sorted({a for p in page for a in p.authors if a is not None})
        return events, persistence.user_names(session=s, ids=ids), _names(s, plan_id)

    events, people, names = await store.read(read)
    out = []
    for p in page:
        mine = [e for e in events if p.first_id <= e["update_id"] <= p.last_id]
        out.append(
            {
                "id": p.first_id,
                "from": p.first_id,
                "to": p.last_id,
                "started_at": p.started_at.isoformat(),
                "ended_at": p.ended_at.isoformat(),
                "updates": p.updates,
                "open": p is open_,
                "people": [
                    {"id": a, "name": people.get(a, "Someone") if a is not None else "Tandem"}
                    for a in p.authors
                ],
                "commitments": commitment_line(mine, names),
                "text": p.text,
                "summary": "; ".join(
                    x for x in (commitment_line(mine, names), text_line(p.text)) if x
                )
                or "No visible change",
                "events": len(mine),
            }
        )
    return out


def _names(s: Session, plan_id: str) -> dict[str, str]:
    names: dict[str, str] = {}
    for t in persistence.list_tasks(session=s, plan_id=plan_id):
        names[t["id"]] = t["text"]
    for table, col in (("key_results", "metric"), ("risks", "risk"), ("contacts", "name")):
        for r in persistence.list_rows(session=s, plan_id=plan_id, table=table):
            names[r["id"]] = r[col]
    return names


# --- what changed in commitments between two points -------------------------------------------

_SEVERITY = {"low": 1, "medium": 2, "high": 3, "critical": 4}
_CLOSED = ("closed", "resolved", "done", "mitigated")


def _days(old: Any, new: Any) -> int | None:
    try:
        return (date.fromisoformat(str(new)) - date.fromisoformat(str(old))).days
    except ValueError:
        return None


def _who(e: dict[str, Any] | None) -> dict[str, Any] | None:
    if e is None:
        return None
    return {"id": e["author_id"], "name": e.get("author_name") or "Tandem"}


def compare(
    old: crdt.Structure,
    new: crdt.Structure,
    events: Sequence[dict[str, Any]],
    *,
    upto_day: date,
    from_day: date | None = None,
) -> dict[str, Any]:
    """The commitment changes that turn ``old`` into ``new``; ``events`` (the commitment history
    between the two points) say who made each one and how often a date moved."""
    last: dict[tuple[str, str], dict[str, Any]] = {}
    moves: Counter[str] = Counter()
    for e in events:
        last[(e["entity_id"], e["kind"])] = e
        if e["kind"] == "due_moved":
            moves[e["entity_id"]] += 1

    def by(entity_id: str, *kinds: str) -> dict[str, Any] | None:
        found = [last[(entity_id, k)] for k in kinds if (entity_id, k) in last]
        return max(found, key=lambda e: e["update_id"]) if found else None

    out: dict[str, list[dict[str, Any]]] = {
        k: []
        for k in (
            "tasks_added",
            "tasks_removed",
            "tasks_completed",
            "tasks_reopened",
            "due_dates_moved",
            "owners_changed",
            "milestones_met",
            "milestones_missed",
            "milestones_moved",
            "key_results",
            "risks_added",
            "risks_escalated",
            "risks_closed",
        )
    }
    for ev in structure_diff(old, new):
        eid, kind = ev.entity_id, str(ev.kind)
        if ev.entity == "task":
            task = new.tasks.get(eid) or old.tasks.get(eid)
            assert task is not None
            item = {"id": eid, "text": task.text, "milestone": task.milestone}
            if kind == "created":
                out["tasks_added"].append({**item, "by": _who(by(eid, "created"))})
            elif kind == "removed":
                out["tasks_removed"].append({**item, "by": _who(by(eid, "removed"))})
            elif kind == "completed":
                out["tasks_completed"].append({**item, "by": _who(by(eid, "completed"))})
                if task.milestone:
                    out["milestones_met"].append(
                        {**item, "due": task.due, "by": _who(by(eid, "completed"))}
                    )
            elif kind == "reopened":
                out["tasks_reopened"].append({**item, "by": _who(by(eid, "reopened"))})
            elif kind == "due_moved":
                moved = {
                    **item,
                    "old": ev.old,
                    "new": ev.new,
                    "days": _days(ev.old, ev.new),
                    "times": max(1, moves[eid]),
                    "by": _who(by(eid, "due_moved")),
                }
                out["due_dates_moved"].append(moved)
                if task.milestone:
                    out["milestones_moved"].append(moved)
            elif kind == "reassigned":
                out["owners_changed"].append(
                    {**item, "old": ev.old, "new": ev.new, "by": _who(by(eid, "reassigned"))}
                )
        elif ev.entity == "key_result":
            row = new.rows.get(eid) or old.rows.get(eid)
            assert row is not None
            was, now_ = old.rows.get(eid), new.rows.get(eid)
            entry: dict[str, Any] = {"id": eid, "metric": row.get("metric"), "change": kind}
            for col in ("baseline", "target", "current"):
                a = was.get(col) if was else None
                b = now_.get(col) if now_ else None
                if a != b:
                    entry[col] = {"old": a, "new": b}
            entry["by"] = _who(
                by(eid, kind, "kr_value_changed", "field_changed", "created", "removed")
            )
            out["key_results"].append(entry)
        elif ev.entity == "risk":
            row = new.rows.get(eid) or old.rows.get(eid)
            assert row is not None
            item = {"id": eid, "risk": row.get("risk"), "severity": row.get("severity")}
            if kind == "created":
                out["risks_added"].append({**item, "by": _who(by(eid, "created"))})
            elif kind == "removed":
                out["risks_closed"].append({**item, "by": _who(by(eid, "removed"))})
            elif kind == "risk_severity_changed":
                rank_old = _SEVERITY.get(str(ev.old).strip().lower(), 0)
                rank_new = _SEVERITY.get(str(ev.new).strip().lower(), 0)
                change = {**item, "old": ev.old, "new": ev.new, "by": _who(by(eid, kind))}
                if str(ev.new).strip().lower() in _CLOSED:
                    out["risks_closed"].append(change)
                elif rank_new > rank_old:
                    out["risks_escalated"].append(change)
    # Milestones that fell due by the later point without being done, and were not missed
    # already at the earlier one.
    for tid, task in new.tasks.items():
        if not task.milestone or task.status == "done" or not task.due:
            continue
        try:
            due = date.fromisoformat(task.due)
        except ValueError:
            continue
        before = old.tasks.get(tid)
        missed_before = (
            before is not None
            and before.status != "done"
            and before.due == task.due
            and from_day is not None
            and due < from_day
        )
        if due < upto_day and not missed_before:
            out["milestones_missed"].append({"id": tid, "text": task.text, "due": task.due})
    out_total = sum(len(v) for v in out.values())
    return {**out, "count": out_total}


async def changes_between(store: Store, plan_id: str, from_id: int, to_id: int) -> dict[str, Any]:
    if from_id > to_id:
        raise ApiError(400, "from must be before to", field="from")
    old_doc = await doc_at(store, plan_id, from_id)
    new_doc = await doc_at(store, plan_id, to_id)

    def read(s: Session) -> tuple[list[dict[str, Any]], datetime | None, datetime | None]:
        events = persistence.audit_between(
            session=s, plan_id=plan_id, after_id=from_id, upto_id=to_id
        )
        return (
            events,
            persistence.log_time(session=s, plan_id=plan_id, log_id=from_id),
            persistence.log_time(session=s, plan_id=plan_id, log_id=to_id),
        )

    events, from_at, to_at = await store.read(read)
    result = compare(
        crdt.read_structure(old_doc),
        crdt.read_structure(new_doc),
        events,
        upto_day=(to_at or datetime.now(UTC)).date(),
        from_day=from_at.date() if from_at else None,
    )
    return {
        "from": {"upto": from_id, "at": from_at.isoformat() if from_at else None},
        "to": {"upto": to_id, "at": to_at.isoformat() if to_at else None},
        **result,
    }


# --- restoring --------------------------------------------------------------------------------


def restorer(old_state: bytes) -> Any:
    """The change a room applies to turn today's document into the content of ``old_state``."""
    old_json = crdt.to_prosemirror(crdt.doc_from_updates([old_state]))

    def apply(doc: Doc) -> None:
        crdt.restore_content(doc, old_json)

    return apply
