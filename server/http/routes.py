"""The one URL table: every page, JSON endpoint and websocket of Tandem, and its handler.

Pages (``pages/``) and the JSON API (``api/``) sit side by side over the same domain calls
(``server.plan``); modules that serve one concept both ways (members, links, sharing, a plan's
lifecycle, the workspace) sit beside them. Only this module imports the handler modules, so a
URL's handler is found here; each handler declares its access rule with ``@rule(...)`` and
``check_rules`` refuses to build a table with a route that has none.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute

from server.identity import Rule

from . import (
    calendar,
    history,
    internal,
    lifecycle,
    links,
    members,
    metrics,
    notify,
    preferences,
    share,
    slack,
    sockets,
    workspace,
)
from .api import brief, plandata, plans
from .assets import Assets, Manifest
from .guard import rule
from .pages import dashboard, embed, home
from .responses import STATIC, services


@rule(Rule.PUBLIC)
async def health(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


@rule(Rule.PUBLIC)
async def ready(request: Request) -> Response:
    """200 when this process should get traffic; 503, naming what is down, when it should not
    (its database or Redis unreachable, or it is draining)."""
    readiness = services(request).readiness
    if readiness.draining:
        return JSONResponse({"status": "draining", "down": ["draining"]}, status_code=503)
    checks = await readiness.check()
    down = [name for name, state in checks.items() if state != "ok"]
    if readiness.draining:  # began while checking
        down.append("draining")
    body = {"status": "unready" if down else "ready", "down": down, "checks": checks}
    return JSONResponse(body, status_code=503 if down else 200)


def url_table(manifest: Manifest) -> list[BaseRoute]:
    # fmt: off
    routes: list[BaseRoute] = [
        # home
        Route("/setup", home.setup, methods=["GET", "POST"]),
        Route("/login", home.login, methods=["GET", "POST"]),
        Route("/logout", home.logout, methods=["POST"]),
        Route("/", home.plan_list, methods=["GET"], name="plan_list"),
        Route("/", home.create_plan_form, methods=["POST"]),
        Route("/plans/{plan_id}", home.plan_page, methods=["GET"], name="plan_page"),
        Route(
            "/plans/{plan_id}/internal", home.internal_page, methods=["GET"], name="internal_page"
        ),
        # dashboard
        Route(
            "/plans/{plan_id}/dashboard",
            dashboard.dashboard,
            methods=["GET"],
            name="plan_dashboard",
        ),
        Route("/plans/{plan_id}/dashboard", dashboard.override_status, methods=["POST"]),
        # history
        Route(
            "/plans/{plan_id}/history", history.history_page, methods=["GET"], name="plan_history"
        ),
        Route("/plans/{plan_id}/history", history.history_action, methods=["POST"]),
        Route("/api/plans/{plan_id}/history", history.history_api, methods=["GET"]),
        # The commitment history's first, documented address: the flat list, paged by event.
        Route("/api/plans/{plan_id}/audit", history.audit_api, methods=["GET"]),
        Route("/api/plans/{plan_id}/versions", history.list_versions_api, methods=["GET"]),
        Route("/api/plans/{plan_id}/versions", history.create_version_api, methods=["POST"]),
        Route("/api/plans/{plan_id}/restore", history.restore_api, methods=["POST"]),
        Route("/api/plans/{plan_id}/changes", history.changes_api, methods=["GET"]),
        # plans
        Route("/api/plans", plans.create_plan, methods=["POST"]),
        Route("/api/plans", plans.list_plans, methods=["GET"]),
        Route("/api/plans/{plan_id}", plans.get_plan, methods=["GET"]),
        Route("/api/plans/{plan_id}/people", plans.list_people, methods=["GET"]),
        Route("/api/plans/{plan_id}/document", plans.get_document, methods=["GET"]),
        Route(
            "/api/plans/{plan_id}/internal/document", plans.get_internal_document, methods=["GET"]
        ),
        # lifecycle
        Route("/api/plans/{plan_id}", lifecycle.patch_plan, methods=["PATCH"]),
        Route("/api/plans/{plan_id}", lifecycle.delete_plan_api, methods=["DELETE"]),
        Route(
            "/plans/{plan_id}/settings",
            lifecycle.settings_page,
            methods=["GET"],
            name="plan_settings",
        ),
        Route("/plans/{plan_id}/settings", lifecycle.settings_action, methods=["POST"]),
        # members
        Route("/api/plans/{plan_id}/members", members.list_members_api, methods=["GET"]),
        Route("/api/plans/{plan_id}/members", members.invite_api, methods=["POST"]),
        Route(
            "/api/plans/{plan_id}/members/{user_id}", members.change_member_api, methods=["PATCH"]
        ),
        Route(
            "/api/plans/{plan_id}/members/{user_id}", members.remove_member_api, methods=["DELETE"]
        ),
        Route(
            "/invite/{token}", members.accept_page, methods=["GET", "POST"], name="accept_invite"
        ),
        # links
        Route("/api/plans/{plan_id}/links", links.create_link_api, methods=["POST"]),
        Route("/api/plans/{plan_id}/links", links.list_links_api, methods=["GET"]),
        Route("/api/plans/{plan_id}/links/{link_id}", links.revoke_link_api, methods=["DELETE"]),
        Route("/api/plans/{plan_id}/embeds", links.create_embed_api, methods=["POST"]),
        Route("/s/{token}", links.visit_page, methods=["GET", "POST"], name="visit"),
        # share
        Route("/plans/{plan_id}/share", share.share_page, methods=["GET"], name="share"),
        Route("/plans/{plan_id}/share", share.share_action, methods=["POST"]),
        Route("/plans/{plan_id}/access", share.access_page, methods=["GET"], name="access_log"),
        Route("/api/plans/{plan_id}/access-log", share.access_log_api, methods=["GET"]),
        # embed
        Route("/embed/{token}", embed.embed_page, methods=["GET"], name="embed"),
        # plandata
        Route("/api/templates", plandata.list_templates, methods=["GET"]),
        Route("/api/plans/{plan_id}/save-as-template", plandata.save_as_template, methods=["POST"]),
        Route("/api/plans/{plan_id}/tasks", plandata.list_tasks, methods=["GET"]),
        Route("/api/plans/{plan_id}/tasks/{task_id}", plandata.patch_task, methods=["PATCH"]),
        Route("/api/plans/{plan_id}/milestones", plandata.list_milestones, methods=["GET"]),
        Route("/api/plans/{plan_id}/key-results", plandata.list_key_results, methods=["GET"]),
        Route("/api/plans/{plan_id}/risks", plandata.list_risks, methods=["GET"]),
        Route("/api/plans/{plan_id}/contacts", plandata.list_contacts, methods=["GET"]),
        Route("/api/plans/{plan_id}/summary", plandata.get_summary, methods=["GET"]),
        Route("/api/plans/{plan_id}/status", plandata.put_status, methods=["PUT"]),
        # the handover brief (members only; the internal plan in vendor-side copies only)
        Route("/api/plans/{plan_id}/brief", brief.get_brief, methods=["GET"], name="brief"),
        Route("/api/plans/{plan_id}/status", plandata.delete_status, methods=["DELETE"]),
        # workspace
        Route("/workspace/people", workspace.people_page, methods=["GET", "POST"], name="people"),
        Route("/api/workspace/people", workspace.people_api, methods=["GET"]),
        Route("/api/workspace/people", workspace.invite_staff_api, methods=["POST"]),
        Route("/api/workspace/people/{user_id}", workspace.update_person_api, methods=["PATCH"]),
        Route("/password-reset", workspace.reset_request_page, methods=["GET", "POST"]),
        Route("/password-reset/{token}", workspace.reset_page, methods=["GET", "POST"]),
        # acting from a notification, and unsubscribing, without a login
        Route("/act/{action}/{task_id}/{token}", notify.act_page, methods=["GET", "POST"]),
        Route("/unsubscribe/{token}", preferences.unsubscribe_page, methods=["GET", "POST"]),
        # notification preferences (contacts without an account: from the unsubscribe link)
        Route("/settings/notifications", preferences.settings_page, methods=["GET", "POST"]),
        Route("/api/me/notifications", preferences.me_api, methods=["GET", "PUT"]),
        Route(
            "/api/plans/{plan_id}/notification-preferences",
            preferences.plan_api,
            methods=["GET", "PUT"],
        ),
        Route(
            "/api/plans/{plan_id}/notifications", notify.list_notifications_api, methods=["GET"]
        ),
        # a plan's Slack channel, and Slack's button presses (404 without a signing secret)
        Route("/api/plans/{plan_id}/slack", slack.get_slack_api, methods=["GET"]),
        Route("/api/plans/{plan_id}/slack", slack.put_slack_api, methods=["PUT"]),
        Route("/api/plans/{plan_id}/slack", slack.delete_slack_api, methods=["DELETE"]),
        Route("/slack/interactivity", slack.interactivity, methods=["POST"]),
        # a person's calendar feed: managed by them, read by their calendar application
        Route("/api/me/calendar", calendar.calendar_api, methods=["GET", "POST", "DELETE"]),
        Route("/calendar", home.calendar_form, methods=["POST"]),
        Route("/calendar/{token}.ics", calendar.calendar_feed, methods=["GET"]),
        # the live documents
        WebSocketRoute("/ws/plans/{plan_id}", sockets.plan_socket),
        WebSocketRoute("/ws/plans/{plan_id}/internal", sockets.internal_socket),
        # the worker process (loopback, its own signed credential)
        Route("/internal/plans/{plan_id}/ids", internal.assign_ids, methods=["POST"]),
        Route("/healthz", health),
        Route("/readyz", ready),
        Route("/metrics", metrics.metrics, methods=["GET"]),
        Mount("/static", Assets(STATIC, manifest), name="static"),
    ]
    # fmt: on
    check_rules(routes)
    return routes


def check_rules(routes: list[BaseRoute]) -> None:
    """Every route declares an access rule (``@rule``); static files are the one exception."""
    for route in routes:
        if isinstance(route, Mount) and route.name == "static":
            continue
        if not isinstance(getattr(getattr(route, "endpoint", None), "access_rule", None), Rule):
            raise RuntimeError(f"route {getattr(route, 'path', route)!r} has no access rule")
