"""Who is asking, and the roles and sides a person can hold in a plan."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

OWNER, EDITOR, VIEWER = "owner", "editor", "viewer"
ROLES = (OWNER, EDITOR, VIEWER)
LINK_ROLES = (VIEWER, EDITOR)
VENDOR, CUSTOMER = "vendor", "customer"
SIDES = (VENDOR, CUSTOMER)


@dataclass(frozen=True)
class Identity:
    """Who is asking, as the server knows it (never as the client claims)."""

    user_id: int | None
    name: str
    email: str | None
    via: str  # "session", "token" (accounts), "link" or "embed" (visitors of one plan)
    credential_id: str
    read_only: bool = False
    # Set once the identity is scoped to a plan: the plan, the caller's role and side in it.
    plan_id: str | None = None
    role: str | None = None
    side: str | None = None
    workspace_owner: bool = False
    # Workspace staff (the vendor's people); guests are customer side in every plan.
    staff: bool = False
    # A link or embed visitor whose link was created to show the plan's history too.
    history: bool = False

    @property
    def is_account(self) -> bool:
        return self.via in ("session", "token")

    @property
    def account_id(self) -> int:
        """The account's user id, where only accounts get through (rules SIGNED_IN and up,
        or an identity from ``guard.account``)."""
        if self.user_id is None:
            raise LookupError(f"a {self.via} visitor has no account")
        return self.user_id

    @functools.cached_property  # read for every awareness message a connection sends
    def person(self) -> str | None:
        """The same short key in every tab an account has open on this plan, so presence
        shows each person once; it names the account (not a secret: plans list members) but
        is not reused across plans. None for visitors: people may share one link."""
        if not self.is_account or self.user_id is None or self.plan_id is None:
            return None
        return hashlib.sha256(f"{self.plan_id}:{self.user_id}".encode()).hexdigest()[:12]
