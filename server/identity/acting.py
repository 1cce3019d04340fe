"""Who does something, and from where: what the access log records of each change of access,
written here once for the page and the API alike."""

from __future__ import annotations

from dataclasses import dataclass

import persistence
from server.store import Store

from .identity import Identity
from .policy import actor


@dataclass(frozen=True)
class Acting:
    """The person making a change (as the server knows them) and the address they came from."""

    identity: Identity
    ip: str | None

    @property
    def actor(self) -> str:
        return actor(self.identity)


async def log_access(
    store: Store,
    kind: str,
    *,
    plan_id: str | None,
    actor: str,
    ip: str | None,
    subject: str | None = None,
    detail: str | None = None,
) -> None:
    """An entry in the access log (who gave, used or took away access, from where); the
    commitment history of a plan's tasks is the materialiser's, not this."""
    await store.run(
        lambda s: persistence.record_access(
            session=s,
            plan_id=plan_id,
            kind=kind,
            actor=actor,
            subject=subject,
            detail=detail,
            ip=ip,
        )
    )
