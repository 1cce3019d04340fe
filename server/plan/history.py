"""Version history, read back from the update log: the plan at any moment, editing sessions,
what changed in commitments between two moments, and restoring old content. No Starlette.

The plan at a moment is a replay: the newest stored state at or before that point of the log
(a history snapshot or a room checkpoint) and the updates after it. Replays leave snapshots
behind for the next reader, each one only when the log bytes since the previous one are at
least its own size, so history never stores more than the log itself.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pycrdt import Doc
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import crdt
import persistence
from crdt import diff as structure_diff
from server.store import Store

from .errors import ApiError

#: Edits with no gap longer than this belong to one editing session.
SESSION_GAP = timedelta(minutes=5)
#: A session that runs on longer than this many updates is closed and a new one begins, so the
#: open one (replayed again on every look at the timeline) stays cheap.
SESSION_MAX_UPDATES = 3000
#: A snapshot is left behind only where the log bytes since the previous one are at least this
#: many times its size: snapshots stay well within the log's size (and never exceed it: see
#: persistence.save_snapshots), with room for the readers that leave them in any order.
SNAPSHOT_SPACING = 2
#: A replay considers leaving a snapshot behind every this many updates.
SNAPSHOT_EVERY = 500
#: Log rows read per round while building sessions.
SCAN_CHUNK = 5000


# --- the plan at a moment --------------------------------------------------------------------


@dataclass
class _Replay:
    state: bytes
    snapshots: list[tuple[int, bytes]] = field(default_factory=list)


def _replay(s: Session, plan_id: str, upto_id: int, doc: str) -> _Replay:
    base_id, base = persistence.replay_base(session=s, plan_id=plan_id, upto_id=upto_id, doc=doc)
    ydoc = crdt.doc_from_updates([], base=base)
    if base_id >= upto_id:
        return _Replay(ydoc.get_update())
    rows = persistence.updates_between(
        session=s, plan_id=plan_id, after_id=base_id, upto_id=upto_id, doc=doc
    )
    snaps: list[tuple[int, bytes]] = []
    last_snap = persistence.snapshot_before(session=s, plan_id=plan_id, upto_id=upto_id, doc=doc)
    size = len(base or b"")
    spent = 0  # log bytes replayed since the last snapshot: what the next one may cost
    for start in range(0, len(rows), SNAPSHOT_EVERY):
        chunk = rows[start : start + SNAPSHOT_EVERY]
        # One transaction per chunk: pycrdt's wrapper costs more per update than Yrs' own
        # apply (2.5x the time for a long run of keystroke updates applied one by one).
        with ydoc.transaction():
            for _, data in chunk:
                ydoc.apply_update(data)
                spent += len(data)
        log_id = chunk[-1][0]
        if (
            len(chunk) == SNAPSHOT_EVERY
            and log_id - last_snap >= SNAPSHOT_EVERY
            and spent > SNAPSHOT_SPACING * size
        ):
            state = ydoc.get_update()
            size = len(state)
            if SNAPSHOT_SPACING * size <= spent:
                snaps.append((log_id, state))
                spent, last_snap = 0, log_id
    return _Replay(ydoc.get_update(), snaps)


async def _keep_snapshots(
    store: Store, plan_id: str, doc: str, snaps: list[tuple[int, bytes]]
) -> None:
    if not snaps:
        return

    def save(s: Session) -> None:
        persistence.save_snapshots(session=s, plan_id=plan_id, snapshots=snaps, doc=doc)

    try:
        await store.run_derived(save)
    except IntegrityError:
        pass  # another reader left the same snapshot meanwhile


async def state_at(store: Store, plan_id: str, upto_id: int, doc: str = "plan") -> bytes:
    """The document's state as one update, after log entry ``upto_id`` and none later."""
    found = await store.read(lambda s: _replay(s, plan_id, upto_id, doc))
    await _keep_snapshots(store, plan_id, doc, found.snapshots)
    return found.state


async def doc_at(store: Store, plan_id: str, upto_id: int, doc: str = "plan") -> Doc:
    return crdt.doc_from_updates([await state_at(store, plan_id, upto_id, doc)])


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


def _markdown(ydoc: Doc) -> dict[str, str]:
    return sections(crdt.to_markdown(ydoc))


@dataclass
class _Open:
    first_id: int
    last_id: int
    started_at: datetime
    ended_at: datetime
    updates: int
    authors: list[int | None]
    before: dict[str, str]


def _close(o: _Open, after: dict[str, str]) -> persistence.SessionRecord:
    return persistence.SessionRecord(
        first_id=o.first_id,
        last_id=o.last_id,
        started_at=o.started_at,
        ended_at=o.ended_at,
        updates=o.updates,
        authors=o.authors,
        text=text_changes(o.before, after),
    )


def _scan(
    s: Session, plan_id: str, doc: str, now: datetime
) -> tuple[
    list[persistence.SessionRecord], list[persistence.SessionRecord], list[tuple[int, bytes]]
]:
    """Sessions after the last cached one: (closed ones to cache, the open one, snapshots)."""
    cached = persistence.last_cached_session(session=s, plan_id=plan_id, doc=doc)
    after = cached.last_id if cached else 0
    rows = persistence.log_rows(
        session=s, plan_id=plan_id, after_id=after, doc=doc, limit=SCAN_CHUNK
    )
    if not rows:
        return [], [], []
    start = _replay(s, plan_id, after, doc)
    ydoc = crdt.doc_from_updates([start.state])
    closed: list[persistence.SessionRecord] = []
    snaps: list[tuple[int, bytes]] = []
    cur: _Open | None = None
    prev_sections = _markdown(ydoc)
    last_snap = persistence.snapshot_before(session=s, plan_id=plan_id, upto_id=after, doc=doc)
    size, spent = len(start.state), 0
    while rows:
        for log_id, at, author, data in rows:
            if cur is not None and (
                at - cur.ended_at > SESSION_GAP or cur.updates >= SESSION_MAX_UPDATES
            ):
                prev_sections = _markdown(ydoc)
                closed.append(_close(cur, prev_sections))
                cur = None
                if spent > SNAPSHOT_SPACING * size and log_id - last_snap > SNAPSHOT_EVERY:
                    state = ydoc.get_update()
                    size = len(state)
                    if SNAPSHOT_SPACING * size <= spent:
                        snaps.append((closed[-1].last_id, state))
                        spent, last_snap = 0, closed[-1].last_id
            if cur is None:
                cur = _Open(log_id, log_id, at, at, 0, [], prev_sections)
            ydoc.apply_update(data)
            spent += len(data)
            cur.last_id, cur.ended_at = log_id, at
            cur.updates += 1
            if author not in cur.authors:
                cur.authors.append(author)
        rows = persistence.log_rows(
            session=s, plan_id=plan_id, after_id=rows[-1][0], doc=doc, limit=SCAN_CHUNK
        )
    assert cur is not None
    tail = _close(cur, _markdown(ydoc))
    if now - cur.ended_at > SESSION_GAP or cur.updates >= SESSION_MAX_UPDATES:
        return [*closed, tail], [], snaps
    return closed, [tail], snaps


async def sessions_page(
    store: Store,
    plan_id: str,
    *,
    before: int | None = None,
    limit: int = 20,
    doc: str = "plan",
) -> list[dict[str, Any]]:
    """Editing sessions, newest first, each starting before log id ``before``."""
    now = datetime.now(UTC)
    closed, open_, snaps = await store.read(lambda s: _scan(s, plan_id, doc, now))
    if closed or snaps:

        def keep(s: Session) -> None:
            persistence.save_sessions(session=s, plan_id=plan_id, sessions=closed, doc=doc)
            persistence.save_snapshots(session=s, plan_id=plan_id, snapshots=snaps, doc=doc)

        try:
            await store.run_derived(keep)
        except IntegrityError:
            pass  # another request cached them meanwhile

    def read(
        s: Session,
    ) -> tuple[
        list[persistence.SessionRecord], list[dict[str, Any]], dict[int, str], dict[str, str]
    ]:
        live = [o for o in open_ if before is None or o.first_id < before]
        older = persistence.cached_sessions(
            session=s, plan_id=plan_id, before_id=before, limit=limit - len(live), doc=doc
        )
        page = [*reversed(live), *older][:limit]
        events: list[dict[str, Any]] = []
        if page and doc == "plan":
            events = persistence.audit_between(
                session=s, plan_id=plan_id, after_id=page[-1].first_id - 1, upto_id=page[0].last_id
            )
        ids = sorted({a for p in page for a in p.authors if a is not None})
        return page, events, persistence.user_names(session=s, ids=ids), _names(s, plan_id)

    page, events, people, names = await store.read(read)
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
                "open": any(p is o for o in open_),
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
