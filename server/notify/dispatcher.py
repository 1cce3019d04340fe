"""The dispatcher: sends what the outbox holds, with retries and exponential back-off.

It claims due rows under a lease (``persistence.claim_notifications``), so several dispatchers
(processes) never send the same row; a failed attempt is tried again after ``retry_base`` x 2^n
seconds (at most an hour), and given up on after ``max_attempts``. A mail server that is down
delays mail and loses none.

A claimed batch (up to 50 rows) is sent in groups of ``group`` rows (10): each group in one call
on a worker thread (rendering and SMTP off the event loop), over one SMTP connection kept for
the whole batch and closed after it, then the group's outcomes recorded in one transaction. A
crash (or a cancelled pass) between sending a group and recording it may therefore repeat at most
that group's ``group`` messages: the lease then lapses and they are sent again. A row that fails
(refused, unreachable, a template error) is one failed attempt of that row alone; the others go
on.

``per_second`` (``TANDEM_NOTIFY_SEND_PER_SECOND``) caps the pace: a group waits until the
rows sent before it, at that rate, would have taken their time, so the outbox never takes a
whole core (and the database's write lock twenty times a second) from live editing. A claimed
batch is then no bigger than half the lease's worth at that pace, so its rows are sent before
their lease runs out. 0: as fast as the mail server takes them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial

import anyio
from sqlalchemy import Connection

import persistence
from server.store import Store

log = logging.getLogger(__name__)

Send = Callable[[persistence.NotificationRecord], None]


class Undeliverable(Exception):
    """A channel's word that trying again cannot help (a Slack webhook removed, or its URL
    refused now): the row fails at once instead of after every retry."""


class Router:
    """One send for several channels: each row goes to its own channel's."""

    def __init__(
        self, sends: dict[str, Send], *, closes: Sequence[Callable[[], None]] = ()
    ) -> None:
        self.sends = sends
        # What ends a batch: the email channel's SMTP connection is closed.
        self.closes = tuple(closes)

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(self.sends)

    def __call__(self, n: persistence.NotificationRecord) -> None:
        send = self.sends.get(n.channel)
        if send is None:
            raise Undeliverable(f"no {n.channel} channel is configured")
        send(n)

    def close(self) -> None:
        for close in self.closes:
            try:
                close()
            except Exception:
                log.exception("closing a notification channel failed")


# The most rows a pass claims.
BATCH = 50

# A row's outcome: None when sent, else the error to record and when to try again (None: never).
Outcome = tuple[persistence.NotificationRecord, str | None, datetime | None]


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
        group: int = 10,
        per_second: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
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
        self.group = max(1, group)
        self.per_second = max(0.0, per_second)
        self.clock = clock
        self.sleep = sleep
        # When the next group may start, at ``per_second`` (clock time).
        self._ready_at = float("-inf")
        self._started = 0.0
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

    @property
    def batch(self) -> int:
        """How many rows a pass claims: 50, or at a capped pace what half the lease sends."""
        if not self.per_second:
            return BATCH
        return max(1, min(BATCH, int(self.per_second * self.lease.total_seconds() / 2)))

    async def pass_once(self) -> int:
        """Send what is due now; how many rows were claimed."""
        limit, at = self.batch, datetime.now(UTC)
        # Read beside the writer, then leased in a transaction of one statement: the SQLite
        # write lock, which the rooms' commits wait for, is held that long only.
        due = await self.store.read(
            lambda s: persistence.due_notifications(
                session=s, at=at, limit=limit, channels=self.channels
            )
        )
        leased = await self.store.run_core(
            lambda c: persistence.lease_notifications(
                session=c, candidates=due, at=at, lease=self.lease
            )
        )
        claimed = [n for n in due if n.id in leased]
        try:
            for start in range(0, len(claimed), self.group):
                group = claimed[start : start + self.group]
                await self._pace()
                outcomes = await anyio.to_thread.run_sync(self._send_group, group)
                self._paced(len(group))
                await self.store.run_core(partial(self._record, outcomes=outcomes))
        finally:
            close = getattr(self.send, "close", None)
            if close is not None:
                await anyio.to_thread.run_sync(close)
        return len(claimed)

    async def _pace(self) -> None:
        """Wait for the group's turn at ``per_second``; its time starts then."""
        if not self.per_second:
            return
        now = self.clock()
        if self._ready_at > now:
            await self.sleep(self._ready_at - now)
            now = self._ready_at
        self._started = now

    def _paced(self, sent: int) -> None:
        """The next group's turn: after ``sent`` rows' time at ``per_second`` from this one's
        start (the time the sending took counts)."""
        if self.per_second:
            self._ready_at = self._started + sent / self.per_second

    def _send_group(self, group: list[persistence.NotificationRecord]) -> list[Outcome]:
        """On a worker thread: send each row, one after the other; what became of each."""
        return [self._send_one(n) for n in group]

    def _send_one(self, n: persistence.NotificationRecord) -> Outcome:
        try:
            self.send(n)
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
            return n, error, retry
        return n, None, None

    @staticmethod
    def _record(session: Connection, *, outcomes: list[Outcome]) -> None:
        """A group's outcomes, in one transaction: the sent rows in one statement."""
        persistence.mark_all_sent(
            session=session, notification_ids=[n.id for n, error, _ in outcomes if error is None]
        )
        for n, error, retry in outcomes:
            if error is not None:
                persistence.mark_failed(
                    session=session, notification_id=n.id, error=error, retry_at=retry
                )
