"""How plans and people look to a browser: the JSON of a plan, the editor page's context.
Shared by pages and API handlers (which never import each other)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

import persistence
from server.identity import Identity, plan_nav
from server.live import Close

from .guard import identity_of, plan_of
from .responses import colour_for, json_for_script, services


def person_json(identity: Identity) -> dict[str, Any]:
    # A visitor chooses their own name, so it may be a member's: "guest" tells them apart.
    return {"name": identity.name, "color": colour_for(identity), "guest": not identity.is_account}


def _api_person(identity: Identity) -> dict[str, Any]:
    return {"name": identity.name, "color": colour_for(identity)}


def plan_json(
    request: Request, plan: persistence.PlanRecord, role: str | None = None
) -> dict[str, Any]:
    present = services(request).rooms.present(plan.id)
    return {
        "id": plan.id,
        "title": plan.title,
        "customer": plan.customer,
        "url": str(request.url_for("plan_page", plan_id=plan.id)),
        "created_at": plan.created_at.isoformat(),
        "updated_at": plan.updated_at.isoformat(),
        "archived": plan.archived,
        "archived_at": plan.archived_at.isoformat() if plan.archived_at else None,
        "present": [_api_person(i) for i in present],
        "role": role,
    }


def editor_context(request: Request, *, internal: bool = False, embed: bool = False) -> dict:
    identity = identity_of(request)
    plan = plan_of(request)
    ws_scheme = "wss" if request.url.scheme == "https" else "ws"
    config = {
        "planId": f"{plan.id}/internal" if internal else plan.id,
        "wsUrl": f"{ws_scheme}://{request.url.netloc}/ws/plans",
        "user": {**person_json(identity), "person": identity.person},
        "readOnly": identity.read_only or plan.archived,
        "closeCodes": {c.name: int(c) for c in Close},
    }
    if not identity.is_account:
        config["homeUrl"] = request.url.path  # visitors have no plan list to go back to
    return {
        "user": identity,
        "plan": plan,
        "config_json": json_for_script(config),
        "internal": internal,
        "embed": embed,
        **plan_nav(identity),
    }
