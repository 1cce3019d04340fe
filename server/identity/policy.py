"""The access rules every route declares, and what each lets an identity do; no HTTP here (the
guard that enforces them on requests is ``server.http.guard``)."""

from __future__ import annotations

from enum import StrEnum

from .identity import EDITOR, OWNER, VENDOR, Identity


class Rule(StrEnum):
    PUBLIC = "public"  # anyone; the endpoint checks its own signed token, if any
    SIGNED_IN = "signed_in"  # any account, by session or API token
    PLAN_VIEW = "plan_view"  # anyone with a role in the plan: members, link and embed visitors
    PLAN_EDIT = "plan_edit"  # members who may change the plan: owners and editors
    PLAN_VENDOR = "plan_vendor"  # vendor-side members only: the internal account plan
    PLAN_OWNER = "plan_owner"  # the plan's owners (and the workspace owner)
    # the plan's history (timeline, versions, comparisons) and the handover brief: members, and
    # visitors of a link created with "history": true
    PLAN_HISTORY = "plan_history"
    # accounts with a role in the plan, whatever it is: their own notification preferences
    PLAN_MEMBER = "plan_member"
    STAFF = "staff"  # workspace staff accounts: they create plans and templates
    WORKSPACE_OWNER = "workspace_owner"  # the workspace owner: staff, guests and deactivation


def allowed(rule_: Rule, identity: Identity) -> bool:
    if rule_ in (Rule.PUBLIC, Rule.SIGNED_IN, Rule.PLAN_VIEW):
        return True
    if rule_ is Rule.STAFF:
        return identity.is_account and identity.staff
    if rule_ is Rule.WORKSPACE_OWNER:
        return identity.is_account and identity.workspace_owner
    if rule_ is Rule.PLAN_EDIT:
        # Accounts only: link and embed visitors change nothing over HTTP.
        return identity.is_account and identity.role in (OWNER, EDITOR)
    if rule_ is Rule.PLAN_VENDOR:
        return identity.is_account and identity.side == VENDOR
    if rule_ is Rule.PLAN_OWNER:
        return identity.is_account and identity.role == OWNER
    if rule_ is Rule.PLAN_HISTORY:
        return identity.is_account or identity.history
    if rule_ is Rule.PLAN_MEMBER:
        return identity.is_account
    return False


def vendor_owner(identity: Identity) -> bool:
    """Only a vendor-side owner (staff) may grant, change or see the vendor side of a plan."""
    return identity.is_account and identity.staff and identity.side == VENDOR


def plan_nav(identity: Identity) -> dict[str, bool]:
    """What a plan's tab bar offers this person on every plan page: the internal plan, the
    handover brief and Share only to those who may open them."""
    return {
        "is_vendor": allowed(Rule.PLAN_VENDOR, identity),
        "is_owner": allowed(Rule.PLAN_OWNER, identity),
        "shows_history": allowed(Rule.PLAN_HISTORY, identity),
    }


def actor(identity: Identity) -> str:
    if identity.is_account:
        return f"{identity.name} <{identity.email}>"
    return f"{identity.name} (via {identity.via} {identity.credential_id[:8]})"
