"""The dispatcher: sends what the outbox holds, with retries and exponential back-off.

It claims due rows under a lease (``persistence.claim_notifications``), so several dispatchers
(processes) never send the same row; a failed attempt is tried again after ``retry_base`` x 2^n
seconds (at most an hour), and given up on after ``max_attempts``. A mail server that is down
delays mail and loses none.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import anyio

import persistence
from server.store import Store

log = logging.getLogger(__name__)

Send = Callable[[persistence.NotificationRecord], None]


class Undeliverable(Exception):
    """A channel's word that trying again cannot help (a Slack webhook removed, or its URL
    refused now): the row fails at once instead of after every retry."""


class Router:
    """One send for several channels: each row goes to its own channel's."""

    def __init__(self, sends: dict[str, Send]) -> None:
        self.sends = sends

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(self.sends)

    def __call__(self, n: persistence.NotificationRecord) -> None:
        send = self.sends.get(n.channel)
        if send is None:
            raise Undeliverable(f"no {n.channel} channel is configured")
        send(n)


class Dispatcher:
    def __init__(
        self,
        store: Store,
        send: Send,
        *,
        retry_base: float = 30.0,
        retry_cap: float = 3600.0,
        max_attempts: int = 12,
        lease: float = 300.0,
        idle: float = 60.0,
        channels: tuple[str, ...] = ("email",),
    ) -> None:
        self.store = store
        self.send = send
        # The outbox rows this dispatcher claims: those of the channels it can send.
        self.channels = channels
        self.retry_base = retry_base
        self.retry_cap = retry_cap
        self.max_attempts = max_attempts
        self.lease = timedelta(seconds=lease)
        self.idle = idle
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    def backoff(self, attempts: int) -> float:
        """Seconds before the next try, after ``attempts`` failed ones (1, 2, ...)."""
        return float(min(self.retry_cap, self.retry_base * 2 ** (attempts - 1)))

    async def run(self) -> None:
        while True:
            try:
                sent = await self.pass_once()
            except Exception:
                log.exception("notification dispatch failed")
                sent = 0
            if sent:
                continue
            await self._wait()

    async def _wait(self) -> None:
        due = await self.store.read(
            lambda s: persistence.next_attempt(session=s, channels=self.channels)
        )
        delay = self.idle
        if due is not None:
            delay = min(delay, max(0.0, (due - datetime.now(UTC)).total_seconds()))
        self._wake.clear()
        with anyio.move_on_after(delay):
            await self._wake.wait()

    async def pass_once(self) -> int:
        """Send what is due now; how many rows were claimed."""
        claimed = await self.store.run(
            lambda s: persistence.claim_notifications(
                session=s, lease=self.lease, channels=self.channels
            )
        )
        for n in claimed:
            await self._send_one(n)
        return len(claimed)

    async def _send_one(self, n: persistence.NotificationRecord) -> None:
        try:
            await anyio.to_thread.run_sync(self.send, n)
        # Whatever the channel raises (refused, unreachable, a template error) is one failed
        # attempt of this row; the others go on.
        except Exception as exc:  # noqa: BLE001
            attempts = n.attempts + 1
            error = f"{type(exc).__name__}: {exc}"
            retry = None
            if attempts < self.max_attempts and not isinstance(exc, Undeliverable):
                retry = datetime.now(UTC) + timedelta(seconds=self.backoff(attempts))
            # Never the body or its links: they are credentials.
            log.warning(
                "notification %d to %s failed (attempt %d): %s",
                n.id,
                n.recipient_email.rpartition("@")[2],
                attempts,
                error,
            )
            await self.store.run(
                lambda s: persistence.mark_failed(
                    session=s, notification_id=n.id, error=error, retry_at=retry
                )
            )
            return
        await self.store.run(lambda s: persistence.mark_sent(session=s, notification_id=n.id))
