"""A person's calendar feed: managed from the API (``/api/me/calendar``) and the plan list,
read by calendar applications at its secret URL (``/calendar/<token>.ics``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from server import notify
from server.identity import Rule

from .guard import identity_of, rule
from .responses import base_url, services

ICS_TYPE = "text/calendar; charset=utf-8"


@rule(Rule.SIGNED_IN)
async def calendar_api(request: Request) -> Response:
    """GET: whether the caller has a feed (its URL is shown once, when made); POST: make a
    new one, replacing the old (201, with its URL); DELETE: turn it off (204)."""
    svc, user_id = services(request), identity_of(request).account_id
    if request.method == "POST":
        token, at = await notify.create_feed(svc.store, svc.signer, user_id)
        body = {"active": True, "created_at": at.isoformat()}
        body["url"] = notify.feed_url(base_url(request), token)
        return JSONResponse(body, status_code=201)
    if request.method == "DELETE":
        await notify.revoke_feed(svc.store, user_id)
        return Response(status_code=204)
    since = await notify.feed_created(svc.store, user_id)
    return JSONResponse(
        {"active": since is not None, "created_at": since.isoformat() if since else None}
    )


@rule(Rule.PUBLIC)  # the signed feed token, whose hash the person's feed row holds
async def calendar_feed(request: Request) -> Response:
    svc = services(request)
    found = await notify.read_feed(svc.store, svc.signer, request.path_params["token"])
    if found is None:
        return PlainTextResponse("no such calendar feed (revoked or replaced?)", status_code=404)
    name, entries = found
    body = notify.calendar(entries, name=name, base_url=base_url(request))
    return Response(
        body,
        media_type=ICS_TYPE,
        headers={
            "cache-control": "private, max-age=300",
            "content-disposition": 'inline; filename="tandem.ics"',
            # The URL is the credential: keep it out of other sites' Referer headers.
            "referrer-policy": "no-referrer",
        },
    )
