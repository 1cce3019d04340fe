"""The links a notification carries: act on a task (mark complete, move the due date, I'm
blocked) and unsubscribe. Each is a signed token for one purpose (its own salt), one task and
one recipient; an action link names a row id too, so it works once (``notification_actions``)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from server.identity import Signer

from .people import Person

ACTIONS = ("complete", "due", "blocked")


@dataclass(frozen=True)
class ActionClaim:
    """What a valid action link says: which use, plan, task and recipient."""

    action: str
    id: str
    plan_id: str
    task_id: str
    ref: str
    email: str
    name: str


@dataclass(frozen=True)
class Links:
    signer: Signer
    base_url: str
    link_days: int = 14

    def action(self, action: str, *, plan_id: str, task_id: str, person: Person) -> str:
        token = self.signer.dumps(
            f"act_{action}",
            {
                "i": secrets.token_hex(12),
                "p": plan_id,
                "t": task_id,
                "r": person.ref,
                "e": person.email,
                "n": person.name,
            },
        )
        return f"{self.base_url}/act/{action}/{task_id}/{token}"

    def actions(self, *, plan_id: str, task_id: str, person: Person) -> dict[str, str]:
        return {a: self.action(a, plan_id=plan_id, task_id=task_id, person=person) for a in ACTIONS}

    def unsubscribe(self, *, email: str, plan_id: str | None, kind: str | None = None) -> str:
        """The link to stop mail to ``email`` about the plan; its page offers to stop only
        messages of ``kind`` (the one it came in), or those of every plan, instead."""
        token = self.signer.dumps("unsubscribe", [email, plan_id, kind])
        return f"{self.base_url}/unsubscribe/{token}"

    def read_action(self, action: str, token: str) -> ActionClaim | None:
        """The claim of a valid, unexpired link for ``action``; None otherwise (a link for
        another action, tampered, expired or not a link at all)."""
        if action not in ACTIONS:
            return None
        value: Any = self.signer.loads(f"act_{action}", token, max_age=self.link_days * 86400)
        if not isinstance(value, dict):
            return None
        fields = [value.get(k) for k in ("i", "p", "t", "r", "e", "n")]
        texts = [f for f in fields if isinstance(f, str)]
        if len(texts) != len(fields):
            return None
        return ActionClaim(action, *texts)

    def read_unsubscribe(self, token: str) -> tuple[str, str | None, str | None] | None:
        """(email, plan id or None, kind or None) of a valid unsubscribe link."""
        value: Any = self.signer.loads("unsubscribe", token)
        if not (isinstance(value, list) and len(value) == 3 and isinstance(value[0], str)):
            return None
        if any(v is not None and not isinstance(v, str) for v in value[1:]):
            return None
        return value[0], value[1], value[2]
