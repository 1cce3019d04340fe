"""What the worker process asks of the serving process: a change through a plan's live room.

Loopback only, and with the worker's credential (``server.worker``: signed with the server's
secret key, scoped to this action on this plan, a minute old at most). The change is made here
on the live document, under the room's lock, so it passes the schema guard, is logged and
reaches every open client like any edit.
"""

from __future__ import annotations

import ipaddress
import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

import crdt
import persistence
from server import worker
from server.identity import Rule
from server.plan import ApiError

from .guard import rule
from .responses import read_json, services

log = logging.getLogger(__name__)


def _loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# On an archived plan too: its last edits' tasks still need their ids for its tables to be
# whole (the worker would otherwise ask again forever).
@rule(Rule.PUBLIC, on_archived=True)
async def assign_ids(request: Request) -> Response:
    svc = services(request)
    plan_id = request.path_params["plan_id"]
    token = worker.bearer(request.headers.get("authorization"))
    if not _loopback(request.client.host if request.client else None) or not worker.valid(
        svc.settings.secret_key, token, plan_id, worker.ASSIGN_IDS
    ):
        raise ApiError(403, "only the worker process, with its credential for this plan")
    data = await read_json(request)
    author_id = data.get("author_id")
    if author_id is not None and (type(author_id) is not int or author_id <= 0):
        raise ApiError(400, "author_id must be a user id or null", field="author_id")
    plan = await svc.store.read(lambda s: persistence.get_plan(session=s, plan_id=plan_id))
    if plan is None:
        raise ApiError(404, f"no plan with id {plan_id!r}")
    room = await svc.rooms.open(plan_id)
    if room.failed:
        raise ApiError(503, "the plan's room is resetting; try again")
    log_id = await room.apply_server_change(crdt.assign_ids, author_id)
    if log_id is not None:
        svc.materialiser.assigned(plan_id, log_id)
        log.info("plan %s: ids given to its new tasks and rows (update %d)", plan_id, log_id)
    return JSONResponse({"log_id": log_id})
