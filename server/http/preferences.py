"""Notification preferences, both ways: for accounts the JSON API (``/api/me/notifications``,
``/api/plans/{id}/notification-preferences``) and the page ``/settings/notifications``; for
everyone (Key contacts without an account too) the page behind the unsubscribe link of every
message (``notify.unsubscribe_page``, which shares the form below).

Preferences belong to an email address: a person's own (accounts: the account's address; the
signed unsubscribe link: the address it was sent to). What is stored and obeyed is
``persistence.notify_prefs``; the kinds, modes and checks are ``server.notify.prefs``.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

import persistence
from server.identity import Rule
from server.notify.prefs import (
    KINDS,
    MODES,
    WEEKDAYS,
    BadPreference,
    apply,
    kinds_change,
    person_view,
    settings_change,
    zone_names,
)
from server.plan import ApiError

from .guard import identity_of, plan_of, rule
from .responses import read_json, render, services

ME_FIELDS = {"time_zone", "digest_weekday", "digest_hour", "digest", "kinds", "subscribed"}
PLAN_FIELDS = {"kinds", "subscribed"}


def _unknown(body: dict[str, Any], allowed: set[str]) -> None:
    for name in body:
        if name not in allowed:
            raise ApiError(400, f"unknown field {name!r}; use {', '.join(sorted(allowed))}")


def _subscribed(body: dict[str, Any]) -> bool:
    value = body.get("subscribed")
    if value not in (None, True):
        raise ApiError(400, "subscribed can only be true (to take back an unsubscribe)")
    return value is True


async def _plans(request: Request) -> list[persistence.PlanRecord]:
    user_id = identity_of(request).account_id
    return await services(request).store.read(
        lambda s: persistence.plans_of_member(session=s, user_id=user_id)
    )


def _email(request: Request) -> str:
    email = identity_of(request).email
    if not email:
        raise ApiError(400, "this account has no email address to notify")
    return email


def _described(view: dict[str, Any]) -> dict[str, Any]:
    return {**view, "available": {"kinds": KINDS, "modes": list(MODES)}}


@rule(Rule.SIGNED_IN)
async def me_api(request: Request) -> Response:
    """GET: the caller's time zone, digest time, default mode of each kind and each plan's
    own; PUT: change any of them (what is left out stays)."""
    email = _email(request)
    plans = [p.id for p in await _plans(request)]
    store = services(request).store
    if request.method == "PUT":
        body = await read_json(request)
        _unknown(body, ME_FIELDS)
        subscribe = _subscribed(body)
        try:
            change = settings_change(body)
            kinds = kinds_change(body.get("kinds"), plan=False)
        except BadPreference as exc:
            raise ApiError(400, str(exc)) from None
        await store.run(lambda s: apply(s, email, change, kinds, plan_id=None, subscribe=subscribe))
    view = await store.read(lambda s: person_view(s, email, plans))
    return JSONResponse(_described(view))


@rule(Rule.PLAN_MEMBER)
async def plan_api(request: Request) -> Response:
    """GET: the caller's mode of each kind in this plan (null: as their default); PUT
    ``{"kinds": {kind: mode or "default"}, "subscribed": true}``."""
    email = _email(request)
    plan = plan_of(request)
    store = services(request).store
    if request.method == "PUT":
        body = await read_json(request)
        _unknown(body, PLAN_FIELDS)
        subscribe = _subscribed(body)
        try:
            kinds = kinds_change(body.get("kinds"), plan=True)
        except BadPreference as exc:
            raise ApiError(400, str(exc)) from None
        await store.run(
            lambda s: apply(
                s, email, settings_change({}), kinds, plan_id=plan.id, subscribe=subscribe
            )
        )
    view = await store.read(lambda s: person_view(s, email, [plan.id]))
    mine = view["plans"][plan.id]
    effective = {k: mine["kinds"][k] or view["kinds"][k] for k in KINDS}
    return JSONResponse(
        {"plan_id": plan.id, **mine, "effective": effective, "defaults": view["kinds"]}
    )


# The form, shared by the settings page and the unsubscribe link's page


def form_context(view: dict[str, Any], plans: list[Any], *, defaults: bool) -> dict[str, Any]:
    """What ``_notify_prefs_form.html`` shows: the person-wide settings, the default of each
    kind (``defaults``) and each plan's own."""
    return {
        "prefs": view,
        "prefs_plans": plans,
        "prefs_defaults": defaults,
        "kinds": KINDS,
        "modes": MODES,
        "weekdays": WEEKDAYS,
        "zones": sorted(zone_names()),
    }


def read_form(
    form: FormData, plan_ids: list[str], *, defaults: bool
) -> tuple[dict[str, Any], dict[str | None, dict[str, str | None]], set[str]]:
    """(person-wide settings, kinds by plan id or None, plans to subscribe to again) from the
    form; BadPreference when something is wrong."""
    field = {k: str(v).strip() for k, v in form.items() if isinstance(v, str)}
    body: dict[str, Any] = {}
    for name in ("time_zone", "digest_weekday", "digest_hour"):
        if name in field:
            body[name] = field[name]
    if "digest" in field:
        if field["digest"] not in ("on", "off"):
            raise BadPreference("digest must be on or off")
        body["digest"] = field["digest"] == "on"
    kinds: dict[str | None, dict[str, str | None]] = {}
    scopes: list[str | None] = [*([None] if defaults else []), *plan_ids]
    for plan_id in scopes:
        names = {k: f"mode:{plan_id or '*'}:{k}" for k in KINDS}
        given = {k: field[n] for k, n in names.items() if n in field}
        kinds[plan_id] = kinds_change(given, plan=plan_id is not None)
    again = {p for p in plan_ids if field.get(f"subscribe:{p}") == "yes"}
    if field.get("subscribe:*") == "yes":
        again.add("*")
    return body, kinds, again


def save_form(
    s: Any, email: str, body: dict[str, Any], kinds: dict[str | None, Any], again: set[str]
) -> None:
    change = settings_change(body)
    apply(s, email, change, kinds.pop(None, {}), plan_id=None, subscribe="*" in again)
    for plan_id, modes in kinds.items():
        apply(s, email, settings_change({}), modes, plan_id=plan_id, subscribe=plan_id in again)


@rule(Rule.SIGNED_IN)
async def settings_page(request: Request) -> Response:
    """The account's notification preferences, every plan on one page."""
    email = _email(request)
    plans = await _plans(request)
    ids = [p.id for p in plans]
    store = services(request).store
    ctx: dict[str, Any] = {"error": None, "saved": request.query_params.get("saved") == "1"}
    status = 200
    if request.method == "POST":
        form = await request.form()
        try:
            body, kinds, again = read_form(form, ids, defaults=True)
            await store.run(lambda s: save_form(s, email, body, kinds, again))
        except BadPreference as exc:
            ctx["error"], status = str(exc), 400
        else:
            return RedirectResponse("/settings/notifications?saved=1", status_code=303)
    view = await store.read(lambda s: person_view(s, email, ids))
    ctx.update(form_context(view, plans, defaults=True))
    return render(request, "notification_settings.html", ctx, status)


# The page behind every message's unsubscribe link: one-click unsubscribe, and the
# preferences of the address it was sent to (Key contacts without an account set theirs here)

# How the unsubscribe page names a kind in a sentence ("no more messages about ...").
KIND_LABELS = {k: v[0].lower() + v[1:] for k, v in KINDS.items()} | {"digest": "the weekly digest"}


@rule(Rule.PUBLIC)  # the signed unsubscribe link is the credential
async def unsubscribe_page(request: Request) -> Response:
    svc = services(request)
    found = svc.links.read_unsubscribe(request.path_params["token"])
    ctx: dict[str, Any] = {}
    if found is None:
        ctx["refused"] = "This unsubscribe link is not valid."
        return render(request, "unsubscribe.html", ctx, 404)
    email, plan_id, kind = found
    plan = None
    if plan_id is not None:
        plan = await svc.store.read(lambda s: persistence.get_plan(session=s, plan_id=plan_id))
    ctx.update(email=email, plan=plan, kind=kind, kind_label=KIND_LABELS.get(kind or ""))
    plans = [plan] if plan is not None else []
    ids = [p.id for p in plans]
    status = 200

    async def with_form() -> None:
        view = await svc.store.read(lambda s: person_view(s, email, ids))
        ctx.update(form_context(view, plans, defaults=plan is None))

    if request.method == "GET":
        ctx["already"] = await svc.store.read(
            lambda s: persistence.unsubscribed(session=s, email=email, plan_id=plan_id)
        )
        await with_form()
        return render(request, "unsubscribe.html", ctx)
    form = await request.form()
    if form.get("step") == "preferences":
        try:
            body, kinds, again = read_form(form, ids, defaults=plan is None)
            await svc.store.run(lambda s: save_form(s, email, body, kinds, again))
        except BadPreference as exc:
            ctx["prefs_error"], status = str(exc), 400
        else:
            ctx["saved"] = True
        await with_form()
        return render(request, "unsubscribe.html", ctx, status)
    # RFC 8058: a mail client's one-click POST carries "List-Unsubscribe=One-Click" and stops
    # every kind of message about the plan (the digest's link: the digest); the page's own form
    # may narrow it to the kind of message the link came in, or widen it to every plan.
    scope = str(form.get("scope", "kind" if plan is None and kind == "digest" else "plan"))
    stop_plan = None if scope == "all" or plan is None else plan_id
    stop_kind = kind if scope == "kind" and kind in KIND_LABELS else None
    await svc.store.run(
        lambda s: persistence.unsubscribe(session=s, email=email, plan_id=stop_plan, kind=stop_kind)
    )
    ctx.update(done=True, everywhere=stop_plan is None, only=KIND_LABELS.get(stop_kind or ""))
    return render(request, "unsubscribe.html", ctx)
