"""A plan's life cycle over HTTP: the JSON API (PATCH and DELETE a plan) and the settings page,
thin adapters over ``server/plan/lifecycle.py`` (rename, archive and restore, save as a
template, delete, the Slack channel)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from server import plan as domain
from server.identity import Rule, plan_nav
from server.plan import ApiError

from . import slack
from .guard import ARCHIVED_MESSAGE, acting, identity_of, plan_of, rule
from .presenters import plan_json
from .responses import read_json, render, services


@rule(Rule.PLAN_OWNER, on_archived=True)
async def patch_plan(request: Request) -> Response:
    changes = domain.plan_changes(await read_json(request))
    svc = services(request)
    plan = await domain.change_plan(
        svc.store, svc.rooms, acting(request), plan_of(request), changes
    )
    return JSONResponse(plan_json(request, plan, identity_of(request).role))


@rule(Rule.PLAN_OWNER, on_archived=True)
async def delete_plan_api(request: Request) -> Response:
    empty = request.headers.get("content-length", "0") == "0"
    data = {} if empty and "transfer-encoding" not in request.headers else await read_json(request)
    confirm = data.get("confirm", request.query_params.get("confirm"))
    svc = services(request)
    await domain.delete_plan(
        svc.store, svc.rooms, svc.materialiser, acting(request), plan_of(request), confirm
    )
    return Response(status_code=204)


# The page: /plans/{id}/settings, a form per action, working without JavaScript.


# Errors of these fields are shown beside the field, with what was typed kept in it; the
# others' above the page, as before.
BESIDE = ("webhook_url",)


async def _settings(
    request: Request,
    *,
    error: str | None = None,
    field: str | None = None,
    typed: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    identity = identity_of(request)
    plan = plan_of(request)
    beside = error is not None and field in BESIDE
    context = {
        "user": identity,
        "plan": plan,
        "error": None if beside else error,
        "field": field,
        "errors": {field: error} if beside else {},
        "form": typed or {},
        "slack": await slack.state(services(request), plan.id),
        "active": "settings",
        **plan_nav(identity),
    }
    return render(request, "plan_settings.html", context, status)


@rule(Rule.PLAN_OWNER)
async def settings_page(request: Request) -> Response:
    return await _settings(request)


@rule(Rule.PLAN_OWNER, on_archived=True)
async def settings_action(request: Request) -> Response:
    svc, by = services(request), acting(request)
    plan = plan_of(request)
    form = await request.form()
    action = str(form.get("action", ""))
    back = f"/plans/{plan.id}/settings"
    try:
        if action == "rename":
            changes: dict[str, Any] = {}
            for key, label in (("title", "a title"), ("customer", "the customer's name")):
                value = str(form.get(key, "")).strip()
                if not value or len(value) > 200:
                    raise ApiError(400, f"Enter {label}, up to 200 characters.", field=key)
                changes[key] = value
            await domain.change_plan(svc.store, svc.rooms, by, plan, changes)
        elif action in ("archive", "restore"):
            await domain.change_plan(
                svc.store, svc.rooms, by, plan, {"archived": action == "archive"}
            )
            back = "/" if action == "archive" else f"/plans/{plan.id}"
        elif action == "template":
            name = str(form.get("name", "")).strip()
            if not name or len(name) > 200:
                raise ApiError(400, "Name the template, in up to 200 characters.", field="name")
            await domain.save_template(svc.store, svc.rooms, by, plan, name)
            back = "/"
        elif action == "delete":
            await domain.delete_plan(
                svc.store, svc.rooms, svc.materialiser, by, plan, form.get("confirm")
            )
            return RedirectResponse("/", status_code=303)
        elif action == "slack":
            # Connecting is a change like any other: not on an archived plan. Disconnecting
            # (below) takes something away, so it is allowed there, as in the API.
            if plan.archived:
                raise ApiError(409, ARCHIVED_MESSAGE)
            await slack.connect(svc, plan.id, identity_of(request).user_id, form.get("webhook_url"))
            back += "#slack"
        elif action == "slack_disconnect":
            await slack.disconnect(svc, plan.id)
            back += "#slack"
        else:
            raise ApiError(400, "Unknown action.")
    except ApiError as exc:
        typed = {k: str(form.get(k, "")) for k in BESIDE}
        return await _settings(
            request, error=exc.detail, field=exc.field, typed=typed, status=exc.status_code
        )
    return RedirectResponse(back, status_code=303)
