"""A plan's version history, both ways: the history page (sessions on a scrubber, the plan at a
moment with what changed since an earlier one, named versions, the commitment changes between
two points, restore) and its JSON API, and the "since your last visit" banner of the editor.

Members read the shared plan's history; link and embed visitors only through a link created
with ``"history": true`` (``Rule.PLAN_HISTORY``); naming and restoring are for owners and
editors (``Rule.PLAN_EDIT``). The domain work is ``server.plan`` (history.py).
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

import crdt
import persistence
from server import plan as domain
from server.identity import Rule, allowed, plan_nav
from server.live import split_key
from server.plan import CHANGE_VERBS, ENTITY_NAMES, ApiError, int_param, text_field

from .guard import identity_of, plan_of, rule
from .responses import PALETTE, read_json, render, services


def describe(value: Any) -> str:
    """A commitment-history value as a person reads it."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        if "label" in value and "id" in value:
            side = f" ({value['side']})" if value.get("side") else ""
            return f"@{value['label']}{side}"
        if "text" in value:
            return str(value["text"])
        return ", ".join(f"{k}: {describe(v)}" for k, v in value.items() if k != "id" and v)
    return str(value).replace("_", " ")


def author_slot(user_id: int | None, name: str) -> int:
    """Which colour of the palette an account wears in the editor (as colour_for picks it):
    the page names it by class (``author-<n>``), the stylesheet holds the palette."""
    key = f"session:{user_id}:{name}".encode()
    return hashlib.sha256(key).digest()[0] % len(PALETTE)


def _doc_param(request: Request) -> str:
    """Which document's history: the shared plan, or (vendor side only) the internal one."""
    doc = request.query_params.get("doc", "plan")
    if doc not in ("plan", "internal"):
        raise ApiError(400, "doc must be 'plan' or 'internal'", field="doc")
    if doc == "internal" and not allowed(Rule.PLAN_VENDOR, identity_of(request)):
        raise ApiError(404, "The internal account plan is for the vendor team only.")
    return doc


def version_json(v: persistence.VersionRecord) -> dict[str, Any]:
    return {
        "id": v.id,
        "name": v.name,
        "upto": v.upto_id,
        "created_at": v.created_at.isoformat(),
        "by": None if v.created_by is None else {"id": v.created_by, "name": v.author_name},
    }


# --- the JSON API ------------------------------------------------------------------------------


@rule(Rule.PLAN_HISTORY)
async def history_api(request: Request) -> Response:
    """Editing sessions, newest first, paged by ``before`` (a session's ``id``, a log id); the
    commitment events of those sessions come flat beside them in ``events``."""
    plan = plan_of(request)
    q = request.query_params
    for name in q:
        if name not in ("before", "limit", "doc"):
            raise ApiError(400, f"unknown parameter {name!r}; use before, limit, doc", field=name)
    before = None
    if "before" in q:
        before = int_param(q["before"], "before", message="before must be a session id")
    limit = int_param(q.get("limit", "20"), "limit", high=200)
    doc = _doc_param(request)
    store = services(request).store
    sessions = await domain.sessions_page(store, plan.id, before=before, limit=limit, doc=doc)
    events: list[dict[str, Any]] = []
    if sessions and doc == "plan":
        low, high = sessions[-1]["from"], sessions[0]["to"]

        def read(s: Session) -> tuple[list[dict[str, Any]], dict[int, str]]:
            found = persistence.audit_between(
                session=s, plan_id=plan.id, after_id=low - 1, upto_id=high
            )
            return found, persistence.action_actors(
                session=s, plan_id=plan.id, update_ids=[e["update_id"] for e in found]
            )

        found, actors = await store.read(read)
        events = _by_link([_event_json(e) for e in reversed(found)], actors)
    more = len(sessions) == limit
    return JSONResponse(
        {
            "sessions": sessions,
            "events": events,
            "next": {"before": sessions[-1]["id"]} if more else None,
        }
    )


def _event_json(e: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": e["id"],
        "entity": e["entity"],
        "entity_id": e["entity_id"],
        "kind": e["kind"],
        "old": e["old"],
        "new": e["new"],
        "author": None
        if e["author_id"] is None
        else {"id": e["author_id"], "name": e["author_name"]},
        "at": e["at"].isoformat(),
        "update_id": e["update_id"],
    }


@rule(Rule.PLAN_HISTORY)
async def audit_api(request: Request) -> Response:
    """The flat commitment history, newest first, paged by event id (its first address)."""
    plan = plan_of(request)
    q = request.query_params
    before = None
    if "before" in q:
        before = int_param(q["before"], "before", message="before must be an event id")
    limit = int_param(q.get("limit", "200"), "limit", high=1000)

    def read(s: Session) -> tuple[list[persistence.HistoryRecord], dict[int, str]]:
        events = persistence.list_history(session=s, plan_id=plan.id, before_id=before, limit=limit)
        return events, persistence.action_actors(
            session=s, plan_id=plan.id, update_ids=[e.update_id for e in events]
        )

    events, actors = await services(request).store.run(read)
    return JSONResponse({"events": _by_link([history_json(e) for e in events], actors)})


def _by_link(events: list[dict[str, Any]], actors: dict[int, str]) -> list[dict[str, Any]]:
    """Changes made from a notification's link name who made them ("Jordan Lee, by email
    link"), not the account the link's change ran under."""
    for row in events:
        if row["update_id"] in actors:
            author = row["author"]
            row["author"] = {"id": author and author["id"], "name": actors[row["update_id"]]}
    return events


def history_json(e: persistence.HistoryRecord) -> dict[str, Any]:
    """A commitment-history record as JSON: the same shape as the events beside the sessions."""
    return _event_json(dataclasses.asdict(e))


async def document_at(request: Request, key: str, fmt: str) -> Response | None:
    """The document as it was at ``?at=``, ``?upto=`` or ``?version=``, or None when none is
    given (then the caller answers with today's). Shared by the plan's and the internal
    plan's document routes."""
    q = request.query_params
    if not any(k in q for k in ("at", "upto", "version")):
        return None
    if not allowed(Rule.PLAN_HISTORY, identity_of(request)):
        raise ApiError(403, "this link does not show the plan's history")
    store = services(request).store
    plan_id, doc = split_key(key)
    if "version" in q and doc != "plan":
        raise ApiError(400, "versions name the shared plan; use at or upto", field="version")
    point = await domain.point_of(
        store, plan_id, at=q.get("at"), upto=q.get("upto"), version=q.get("version"), doc=doc
    )
    ydoc = await domain.doc_at(store, plan_id, point, doc)
    headers = {"X-Tandem-Upto": str(point)}
    if fmt == "markdown":
        return PlainTextResponse(
            crdt.to_markdown(ydoc), media_type="text/markdown; charset=utf-8", headers=headers
        )
    return JSONResponse(crdt.to_prosemirror(ydoc), headers=headers)


@rule(Rule.PLAN_HISTORY)
async def list_versions_api(request: Request) -> Response:
    plan = plan_of(request)
    versions = await services(request).store.read(
        lambda s: persistence.list_versions(session=s, plan_id=plan.id)
    )
    return JSONResponse({"versions": [version_json(v) for v in versions]})


async def _name_version(request: Request, name: str) -> persistence.VersionRecord:
    identity, plan = identity_of(request), plan_of(request)
    svc = services(request)
    # Whatever a room has logged is what its clients hold: name the log as it stands.
    return await svc.store.run(
        lambda s: persistence.create_version(
            session=s,
            plan_id=plan.id,
            name=name,
            upto_id=persistence.last_log_id(session=s, plan_id=plan.id),
            created_by=identity.user_id,
        )
    )


@rule(Rule.PLAN_EDIT)
async def create_version_api(request: Request) -> Response:
    data = await read_json(request)
    for key in data:
        if key != "name":
            raise ApiError(400, f'unknown field {key!r}; send {{"name"}}', field=key)
    version = await _name_version(request, text_field(data, "name"))
    return JSONResponse(version_json(version), status_code=201)


async def _restore(request: Request, point: int) -> dict[str, Any]:
    identity, plan = identity_of(request), plan_of(request)
    svc = services(request)
    room = await svc.rooms.open(plan.id)
    old = await domain.state_at(svc.store, plan.id, point)
    # Through the live room, like any edit: logged as the restorer's, sent to every editor.
    log_id = await room.apply_server_change(domain.restorer(old), identity.user_id)
    await svc.materialiser.flush(plan.id)
    return {
        "restored": {"upto": point},
        "update_id": log_id,
        "changed": log_id is not None,
        # The moment just before the restore (every update logged before it, whatever the
        # plan): restoring it undoes the restore, as a new change on top.
        "undo": {"upto": log_id - 1} if log_id is not None else None,
    }


@rule(Rule.PLAN_EDIT)
async def restore_api(request: Request) -> Response:
    data = await read_json(request)
    for key in data:
        if key not in ("version", "at", "upto"):
            raise ApiError(
                400, f'unknown field {key!r}; send {{"version": id}} or {{"at": ISO}}', field=key
            )
    given = {k: data[k] for k in ("version", "at", "upto") if k in data}
    if len(given) != 1:
        raise ApiError(400, 'send one of {"version": id}, {"at": ISO time} or {"upto": log id}')
    ((name, value),) = given.items()
    if name in ("version", "upto") and (isinstance(value, bool) or not isinstance(value, int)):
        raise ApiError(400, f"{name} must be a whole number", field=name)
    if name == "at" and not isinstance(value, str):
        raise ApiError(400, "at must be an ISO 8601 time", field="at")
    point = await domain.point_of(
        services(request).store, plan_of(request).id, name=name, **{name: str(value)}
    )
    return JSONResponse(await _restore(request, point))


@rule(Rule.PLAN_HISTORY)
async def changes_api(request: Request) -> Response:
    """Commitment changes between ``from`` and ``to``: each a version id (``v12`` or ``12``),
    a log point (``u345``) or an ISO time; ``to`` defaults to now."""
    plan = plan_of(request)
    q = request.query_params
    if "from" not in q:
        raise ApiError(
            400, "from is required: a version id, u<log id> or an ISO time", field="from"
        )
    store = services(request).store
    start = await domain.point_from(store, plan.id, q["from"], "from")
    end = (
        await domain.point_from(store, plan.id, q["to"], "to")
        if "to" in q
        else await store.read(lambda s: persistence.last_log_id(session=s, plan_id=plan.id))
    )
    return JSONResponse(await domain.changes_between(store, plan.id, start, end))


# --- since your last visit ---------------------------------------------------------------------


async def since_last_visit(request: Request) -> dict[str, Any] | None:
    """What others changed in commitments since this person last opened the plan (None on a
    first visit or when nothing changed), and remember this visit. Accounts only."""
    identity, plan = identity_of(request), plan_of(request)
    if not identity.is_account or identity.user_id is None:
        return None
    uid = identity.user_id

    def visit(s: Session) -> tuple[int | None, int, list[dict[str, Any]], dict[str, str]]:
        seen = persistence.last_seen(session=s, plan_id=plan.id, user_id=uid)
        # The commitment history reaches as far as the materialiser has: remember that point,
        # so changes it has not taken in yet show on the next visit.
        mark = persistence.projection_watermark(session=s, plan_id=plan.id)
        events: list[dict[str, Any]] = []
        if seen is not None and mark > seen:
            events = persistence.audit_between(
                session=s, plan_id=plan.id, after_id=seen, upto_id=mark
            )
        if mark:
            persistence.mark_seen(session=s, plan_id=plan.id, user_id=uid, seen_id=mark)
        names = {t["id"]: t["text"] for t in persistence.list_tasks(session=s, plan_id=plan.id)}
        return seen, mark, events, names

    seen, mark, events, names = await services(request).store.run(visit)
    others = [e for e in events if e["author_id"] != uid]
    if seen is None or not others:
        return None
    people = sorted({e.get("author_name") or "Tandem" for e in others})
    return {
        "from": seen,
        "to": mark,
        "count": len(others),
        "people": people,
        "line": domain.commitment_line(others, names),
        "url": f"/plans/{plan.id}/history?from=u{seen}&upto={mark}#changes",
    }


# --- the page ----------------------------------------------------------------------------------


def _blocks(markdown: str) -> list[str]:
    """The units the page compares: Markdown lines (a task, a table row, a paragraph)."""
    return [line for line in markdown.split("\n") if line.strip()]


def _attribute(
    states: list[tuple[int | None, set[str]]], inserted: set[str]
) -> dict[str, int | None]:
    """Which author last brought each inserted block into being, from per-update block sets."""
    out: dict[str, int | None] = {}
    prev: set[str] = set()
    for author, blocks in states:
        for b in (blocks - prev) & inserted:
            out[b] = author
        prev = blocks
    return out


#: Per-author colours are worked out by replaying at most this many updates for the page.
ATTRIBUTE_UPTO = 400


def diff_blocks(
    old_md: str, new_md: str, owners: dict[str, int | None], deleted_by: int | None
) -> list[dict[str, Any]]:
    """The blocks of ``new_md`` with the ones inserted since ``old_md`` and those deleted."""
    a, b = _blocks(old_md), _blocks(new_md)
    out: list[dict[str, Any]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            out += [{"kind": "same", "text": t} for t in b[j1:j2]]
            continue
        out += [{"kind": "del", "text": t, "author": deleted_by} for t in a[i1:i2]]
        out += [{"kind": "ins", "text": t, "author": owners.get(t)} for t in b[j1:j2]]
    return out


def _label(point: int, versions: list[persistence.VersionRecord]) -> str:
    for v in versions:
        if v.upto_id == point:
            return v.name
    return f"log {point}"


@rule(Rule.PLAN_HISTORY)
async def history_page(request: Request) -> Response:
    """The shared plan's history; with ``?doc=internal`` (vendor side only: a 404 for anyone
    else, as on the API) the internal account plan's, read-only: its sessions and the plan at
    a moment. Versions, restore and commitments are the shared plan's and stay on its view."""
    identity, plan = identity_of(request), plan_of(request)
    svc = services(request)
    store = svc.store
    q = request.query_params
    doc = _doc_param(request)
    shared = doc == "plan"
    error = None
    span = await store.read(lambda s: persistence.log_span(session=s, plan_id=plan.id, doc=doc))
    sessions = await domain.sessions_page(store, plan.id, limit=50, doc=doc) if span else []
    versions = (
        await store.read(lambda s: persistence.list_versions(session=s, plan_id=plan.id))
        if shared
        else []
    )
    context: dict[str, Any] = {
        "user": identity,
        "plan": plan,
        "now": datetime.now(UTC),
        "active": "history",
        "doc": doc,
        # The switch between the two plans' histories: the vendor side's only.
        "internal_switch": allowed(Rule.PLAN_VENDOR, identity),
        "doc_query": "" if shared else "&doc=internal",
        "sessions": sessions,
        "versions": versions,
        "span": span,
        "can_edit": shared and allowed(Rule.PLAN_EDIT, identity) and not plan.archived,
        **plan_nav(identity),
    }
    if span is not None:
        try:
            if q.get("version"):
                if not shared:
                    raise ApiError(400, "versions name the shared plan", field="version")
                point = await domain.point_of(store, plan.id, version=q["version"], name="version")
            elif q.get("at"):
                point = await domain.point_of(store, plan.id, at=q["at"], doc=doc)
            else:
                point = await domain.point_of(
                    store, plan.id, upto=q.get("upto") or str(span[3]), doc=doc
                )
            if q.get("from"):
                since = await _point_from(store, plan.id, q["from"], doc)
            else:
                # By default: what the session of that moment changed.
                inside = [x for x in sessions if x["from"] <= point]
                since = (inside[0]["from"] - 1) if inside else 0
            since = min(since, point)
        except ApiError as exc:
            error, point, since = exc.detail, span[3], span[3]
        context.update(await _moment(request, plan.id, point, since, versions, doc))
    context["error"] = error
    context["rows"] = await _commitment_rows(request) if shared else []
    return render(request, "history.html", context, 400 if error else 200)


async def _point_from(store: Any, plan_id: str, value: str, doc: str) -> int:
    if doc == "plan":
        return await domain.point_from(store, plan_id, value, "from")
    # The internal plan has no versions: a log point or a time.
    if value.startswith("u") and value[1:].isdigit():
        return await domain.point_of(store, plan_id, upto=value[1:], name="from", doc=doc)
    return await domain.point_of(store, plan_id, at=value, name="from", doc=doc)


async def _moment(
    request: Request,
    plan_id: str,
    point: int,
    since: int,
    versions: list[persistence.VersionRecord],
    doc: str = "plan",
) -> dict[str, Any]:
    store = services(request).store
    now_doc = await domain.doc_at(store, plan_id, point, doc)
    then_state = await domain.state_at(store, plan_id, since, doc) if since else None
    now_md = crdt.to_markdown(now_doc)
    then_md = crdt.to_markdown(crdt.doc_from_updates([then_state] if then_state else []))

    def read(s: Session) -> tuple[list[tuple[int, datetime, int | None, bytes]], datetime | None]:
        rows = persistence.log_rows(
            session=s, plan_id=plan_id, after_id=since, doc=doc, limit=ATTRIBUTE_UPTO + 1
        )
        return rows, persistence.log_time(session=s, plan_id=plan_id, log_id=point, doc=doc)

    rows, when = await store.read(read)
    rows = [r for r in rows if r[0] <= point]
    authors = sorted({r[2] for r in rows if r[2] is not None})
    owners: dict[str, int | None] = {}
    new_blocks = set(_blocks(now_md)) - set(_blocks(then_md))
    if len(rows) <= ATTRIBUTE_UPTO and new_blocks:
        ydoc = crdt.doc_from_updates([then_state] if then_state else [])
        states = []
        for _id, _at, author, data in rows:
            ydoc.apply_update(data)
            states.append((author, set(_blocks(crdt.to_markdown(ydoc)))))
        owners = _attribute(states, new_blocks)
    elif len(authors) == 1:
        owners = dict.fromkeys(new_blocks, authors[0])
    names = await store.read(lambda s: persistence.user_names(session=s, ids=authors))
    last_author = rows[-1][2] if rows else None
    blocks = diff_blocks(then_md, now_md, owners, last_author if len(authors) == 1 else None)
    for b in blocks:
        uid = b.get("author")
        b["slot"] = author_slot(uid, names.get(uid, "")) if uid is not None else None
        b["who"] = names.get(uid, "") if uid is not None else ""
    changes = (
        await domain.changes_between(store, plan_id, since, point)
        if since and doc == "plan"
        else None
    )
    return {
        "point": point,
        "since": since,
        "point_label": _label(point, versions),
        "since_label": _label(since, versions) if since else "the beginning",
        "point_at": when,
        "blocks": blocks,
        "legend": [
            {"name": names.get(a, "Someone"), "slot": author_slot(a, names.get(a, ""))}
            for a in authors
        ],
        "changes": changes,
    }


async def _commitment_rows(request: Request) -> list[dict[str, Any]]:
    plan = plan_of(request)

    def read(
        s: Session,
    ) -> tuple[dict[str, str], list[persistence.HistoryRecord], dict[int, str]]:
        names: dict[str, str] = {}
        for t in persistence.list_tasks(session=s, plan_id=plan.id):
            names[t["id"]] = t["text"]
        for table, field in (("key_results", "metric"), ("risks", "risk"), ("contacts", "name")):
            for r in persistence.list_rows(session=s, plan_id=plan.id, table=table):
                names[r["id"]] = r[field] or r.get("role") or ""
        events = persistence.list_history(session=s, plan_id=plan.id, limit=500)
        # Changes made from a notification's link: "Jordan Lee, by email link".
        actors = persistence.action_actors(
            session=s, plan_id=plan.id, update_ids=[e.update_id for e in events]
        )
        return names, events, actors

    names, events, actors = await services(request).store.run(read)
    rows = []
    for e in events:
        snapshot = e.new if isinstance(e.new, dict) else e.old if isinstance(e.old, dict) else {}
        name = names.get(e.entity_id) or describe(
            {k: v for k, v in snapshot.items() if k in ("text", "metric", "risk", "name")}
        )
        rows.append(
            {
                "at": e.at,
                "who": actors.get(e.update_id) or e.author_name or "Tandem",
                "verb": CHANGE_VERBS.get(e.kind, e.kind),
                "entity": ENTITY_NAMES.get(e.entity, e.entity),
                "name": name,
                "kind": e.kind,
                "old": None if e.kind == "created" else describe(e.old),
                "new": None if e.kind == "removed" else describe(e.new),
            }
        )
    return rows


@rule(Rule.PLAN_EDIT)
async def history_action(request: Request) -> Response:
    """The page's forms: name the current state, or restore a point."""
    plan = plan_of(request)
    form = await request.form()
    action = form.get("action")
    back = f"/plans/{plan.id}/history"
    try:
        if action == "version":
            await _name_version(request, text_field({"name": form.get("name")}, "name"))
        elif action == "restore":
            point = await domain.point_of(
                services(request).store, plan.id, upto=str(form.get("upto", "")), name="upto"
            )
            done = await _restore(request, point)
            undo = done["undo"]["upto"] if done["undo"] else point
            back += f"?restored={point}&undo={undo}"
        else:
            raise ApiError(400, "unknown action; name a version or restore a point")
    except ApiError as exc:
        return render(request, "error.html", {"message": exc.detail}, exc.status_code)
    return RedirectResponse(back, status_code=303)
