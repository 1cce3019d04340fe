"""The owner's screens: members, invitations, share links and embeds, and the access log; each
form action a thin adapter over the plan domain (membership, sharing), as the API's are."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

import persistence
from server import plan as domain
from server.identity import CUSTOMER, LINK_ROLES, ROLES, SIDES, Rule, vendor_owner
from server.plan import ApiError, int_param

from .guard import acting, identity_of, plan_of, rule
from .responses import base_url, render, services

# The newest notifications the Share page lists; the API gives up to 200.
NOTIFICATIONS_SHOWN = 50


def notification_kind(kind: str) -> str:
    """A notification's kind in words ("due_soon" is "Due soon")."""
    words = kind.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


EXPIRY_CHOICES = [
    ("1", "1 day"),
    ("7", "7 days"),
    ("30", "30 days"),
    ("90", "90 days"),
    ("365", "1 year"),
]


async def _load(request: Request) -> dict[str, Any]:
    plan_id = plan_of(request).id

    def load(
        s: Session,
    ) -> tuple[
        list[persistence.MemberRecord],
        list[persistence.InviteRecord],
        list[persistence.LinkRecord],
        list[persistence.NotificationRecord],
    ]:
        return (
            persistence.list_members(session=s, plan_id=plan_id),
            persistence.pending_invites(session=s, plan_id=plan_id),
            persistence.list_links(session=s, plan_id=plan_id),
            persistence.list_notifications(session=s, plan_id=plan_id, limit=NOTIFICATIONS_SHOWN),
        )

    people, invites, all_links, notifications = await services(request).store.run(load)
    signer, base = services(request).signer, base_url(request)
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = [  # template context
        {
            "link": link,
            "url": domain.link_url(signer, base, link) if link.usable(now) else None,
            "active": link.usable(now),
        }
        for link in reversed(all_links)
    ]
    return {
        "plan": plan_of(request),
        "members": people,
        "invites": [
            {"invite": i, "url": domain.invite_url(signer, base, i)}
            for i in domain.visible_invites(identity_of(request), invites)
        ],
        "shares": [r for r in rows if r["link"].kind == "share"],
        "embeds": [r for r in rows if r["link"].kind == "embed"],
        "roles": ROLES,
        "link_roles": LINK_ROLES,
        # Only vendor-side owners may grant the vendor side.
        "sides": SIDES if vendor_owner(identity_of(request)) else (CUSTOMER,),
        "expiries": EXPIRY_CHOICES,
        "me": identity_of(request),
        "embed_origins": services(request).settings.embed_allowed_origins,
        "notifications": notifications,
        "notifications_shown": NOTIFICATIONS_SHOWN,
        "notification_kind": notification_kind,
    }


@rule(Rule.PLAN_OWNER)
async def share_page(request: Request) -> Response:
    ctx = await _load(request)
    done = request.query_params.get("done", "")
    ctx["notice"] = ACTIONS.get(done, "Done.") if done else ""
    if done == "invite-unsent":
        # Nothing went out: the owner gets the link to pass on, at the top, not a false "sent".
        wanted = request.query_params.get("invite", "")
        ctx["unsent"] = next((r for r in ctx["invites"] if r["invite"].id == wanted), None)
        ctx["mail_configured"] = bool(services(request).mailer.host)
        ctx["notice"] = ""
    return render(request, "share.html", ctx)


ACTIONS = {
    "invite": "Invitation sent.",
    "member": "Member updated.",
    "remove": "Member removed.",
    "revoke-invite": "Invitation revoked.",
    "link": "Share link created: copy it from the list below.",
    "embed": "Embed URL created.",
    "revoke-link": "Link revoked; anyone using it was disconnected.",
}


@rule(Rule.PLAN_OWNER)
async def share_action(request: Request) -> Response:
    form = await request.form()
    action = str(form.get("action", ""))
    field = {k: str(v).strip() for k, v in form.items() if isinstance(v, str)}
    plan = plan_of(request)
    plan_id = plan.id
    svc, by = services(request), acting(request)
    try:
        if action == "invite":
            invited = await domain.invite_member(
                svc.store,
                svc.mailer,
                svc.signer,
                by,
                plan,
                base_url=base_url(request),
                email=field.get("email", ""),
                role=field.get("role", ""),
                side=field.get("side", ""),
            )
            if not invited.emailed:
                return RedirectResponse(
                    f"/plans/{plan_id}/share?done=invite-unsent&invite={invited.invite.id}",
                    status_code=303,
                )
        elif action == "member":
            await domain.change_member(
                svc.store,
                svc.rooms,
                by,
                plan_id,
                _int(field.get("user_id")),
                role=field.get("role", ""),
                side=field.get("side", ""),
            )
        elif action == "remove":
            await domain.remove_member(
                svc.store, svc.rooms, by, plan_id, _int(field.get("user_id"))
            )
        elif action == "revoke-invite":
            await domain.revoke_invite(svc.store, plan_id, field.get("invite_id", ""))
        elif action in ("link", "embed"):
            days = field.get("days", "30")
            if days not in dict(EXPIRY_CHOICES):
                raise ApiError(400, "choose an expiry", field="days")
            expires = (datetime.now(UTC) + timedelta(days=int(days))).isoformat()
            label = field.get("label", "")
            if len(label) > domain.MAX_LABEL:  # was cut to 200 without a word
                raise ApiError(
                    400, f"Keep the label to {domain.MAX_LABEL} characters: it has {len(label):,}."
                )
            await domain.create_link(
                svc.store,
                by,
                plan_id,
                kind="share" if action == "link" else "embed",
                role=field.get("role", ""),
                expires_at=expires,
                label=label,
                domain=field.get("domain") or None,
                history=field.get("history") == "on",
            )
        elif action == "revoke-link":
            await domain.revoke_link(svc.store, svc.rooms, by, plan_id, field.get("link_id", ""))
        else:
            raise ApiError(400, "unknown action")
    except ApiError as exc:
        ctx = await _load(request)
        ctx["error"] = exc.detail
        ctx["form"] = field
        return render(request, "share.html", ctx, exc.status_code)
    return RedirectResponse(f"/plans/{plan_id}/share?done={action}", status_code=303)


def _int(value: str | None) -> int:
    return int_param(value, "user_id", message="no such member")


async def _events(request: Request) -> list[persistence.AccessEventRecord]:
    return await domain.access_log(
        services(request).store, identity_of(request), plan_of(request).id
    )


# The access log in words; the API keeps the codes.
ACCESS_KINDS = {
    "signin": "Signed in",
    "signin.failed": "Sign-in failed",
    "member.invited": "Invited",
    "member.added": "Joined",
    "member.changed": "Role changed",
    "member.removed": "Removed",
    "link.created": "Link created",
    "link.used": "Opened a link",
    "link.revoked": "Link revoked",
}


def access_kind(kind: str) -> str:
    """A kind in words; one added later without a label still reads as words, not a code."""
    if kind in ACCESS_KINDS:
        return ACCESS_KINDS[kind]
    words = kind.replace(".", " ").replace("_", " ").strip()
    return words[:1].upper() + words[1:]


@rule(Rule.PLAN_OWNER)
async def access_page(request: Request) -> Response:
    events = await _events(request)
    ctx = {"plan": plan_of(request), "events": events, "kind_label": access_kind}
    return render(request, "access_log.html", ctx)


@rule(Rule.PLAN_OWNER)
async def access_log_api(request: Request) -> Response:
    events = await _events(request)
    return JSONResponse(
        {
            "events": [
                {
                    "at": e.at.isoformat(),
                    "kind": e.kind,
                    "actor": e.actor,
                    "subject": e.subject,
                    "detail": e.detail,
                    "ip": e.ip,
                }
                for e in events
            ]
        }
    )
