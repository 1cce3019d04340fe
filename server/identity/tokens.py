"""Signed, purpose-scoped, expiring tokens for invitations, share links, embeds and visits.

Each purpose has its own itsdangerous salt, so a token made for one use is rejected by every
other; each token names a database row (the link, the invitation), so it can be revoked; and
each carries its signing time, so it expires even if the row is never cleaned up.
"""

from __future__ import annotations

from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

# Purpose -> (salt, prefix). Prefixes tell a reader (and the websocket) what a token is.
PURPOSES = {
    "invite": ("tandem.invite", "tdi_"),
    "link": ("tandem.share-link", "tdl_"),
    "embed": ("tandem.embed", "tde_"),
    "visit": ("tandem.visit", "tdv_"),
    "code": ("tandem.email-code", "tdc_"),
    "reset": ("tandem.password-reset", "tdr_"),
    # A notification's action links, one purpose each, and its unsubscribe link.
    "act_complete": ("tandem.act.complete", "tdk_"),
    "act_due": ("tandem.act.due", "tdd_"),
    "act_blocked": ("tandem.act.blocked", "tdb_"),
    "unsubscribe": ("tandem.unsubscribe", "tdu_"),
    # A Slack message's Mark complete button: names the plan and the task.
    "slack": ("tandem.slack-complete", "tds_"),
    # The worker process asking the serving process for a change through a live room.
    "worker": ("tandem.worker", "tdw_"),
    # A person's calendar feed URL (its row, by the secret's hash, makes it revocable).
    "calendar": ("tandem.calendar", "tdf_"),
}
# The longest any of these can live; rows carry the real, shorter expiry.
MAX_AGE = 366 * 86400
VISIT_DAYS = 7
CODE_MINUTES = 10
INVITE_DAYS = 7
# How long each purpose's signature is honoured. A visit cookie has no row, so its signature is
# its only clock: read with the 366-day ceiling it lived a year though it said 7 days.
LIFETIMES = {
    "invite": INVITE_DAYS * 86400 + 3600,
    "link": MAX_AGE,
    "embed": MAX_AGE,
    "visit": VISIT_DAYS * 86400,
    "code": CODE_MINUTES * 60,
    # Password resets (2 hours) and staff invitations (7 days) share this purpose: the row's own
    # expiry says which, and the signature never outlives the longer of them.
    "reset": INVITE_DAYS * 86400 + 3600,
    # Action links: TANDEM_NOTIFY_LINK_DAYS (read with max_age) within this ceiling; used
    # ones are refused by their row.
    "act_complete": MAX_AGE,
    "act_due": MAX_AGE,
    "act_blocked": MAX_AGE,
    "unsubscribe": MAX_AGE,
    "slack": MAX_AGE,
    # Minted per request, so a minute is plenty; a leaked one is soon worthless.
    "worker": 60,
    # A subscribed calendar has nobody to renew its URL: it lives until replaced or revoked.
    "calendar": 50 * 366 * 86400,
}


class Signer:
    def __init__(self, secret_key: str) -> None:
        self._serializers = {
            purpose: (URLSafeTimedSerializer(secret_key, salt=salt), prefix)
            for purpose, (salt, prefix) in PURPOSES.items()
        }

    def dumps(self, purpose: str, value: Any) -> str:
        serializer, prefix = self._serializers[purpose]
        return prefix + serializer.dumps(value)

    def loads(self, purpose: str, token: str | None, *, max_age: int | None = None) -> Any:
        """The signed value, or None if the token is not a valid, unexpired one for ``purpose``.

        Unexpired means younger than ``max_age``, at most the purpose's own lifetime."""
        serializer, prefix = self._serializers[purpose]
        max_age = min(max_age or LIFETIMES[purpose], LIFETIMES[purpose])
        if not token or not token.startswith(prefix) or len(token) > 2000:
            return None
        try:
            return serializer.loads(token[len(prefix) :], max_age=max_age)
        except BadSignature:  # SignatureExpired is a BadSignature
            return None
