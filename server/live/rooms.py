"""Rooms: one live document per plan, shared by its connections.

Order of events for an update a client sends (the reason this is not pycrdt-websocket's YRoom):

1. it is queued for the room's writer, which takes everything queued as one batch;
2. each update is applied to the document; the document reports the *effective* update
   (what was new), so resent or duplicate content is neither logged nor forwarded;
3. the batch is appended to the SQL update log in one transaction (a group commit);
4. only then is each update sent to the other connections.

So no client ever sees an edit that a crash could lose. Answers to sync-step-1 take the same
lock, so a joining client is never handed state that is not yet durable either.

With several processes (``TANDEM_REDIS_URL``, see fanout.py) a room also has a ``bus``: after
step 3 each batch is published for the same room in the other processes, which apply it
(``apply_remote``) without logging it again. The room then knows two marks: ``last_id``, the
newest log id it has applied, and ``applied_upto``, below which it has applied *every* entry of
its document. Only the second may label a checkpoint (a checkpoint claiming ``last_id`` could
claim an entry another process committed and this one has not received yet, and a load from
that checkpoint would lose it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from pycrdt import Doc, get_update, merge_updates

import crdt
import persistence
from server.hooks import Hooks
from server.identity import Identity
from server.store import Store

from .connection import Connection, binary_frame
from .events import Closing, Committed
from .fanout import digest
from .keys import RoomKey, room_keys, split_key
from .presence import Presence, people
from .protocol import (
    MSG_AUTH,
    MSG_AWARENESS,
    MSG_QUERY_AWARENESS,
    MSG_SYNC,
    SYNC_STEP1,
    SYNC_STEP2,
    SYNC_UPDATE,
    Close,
    FrameError,
    parse_sync,
    permission_denied_frame,
    sync_frame,
)

if TYPE_CHECKING:
    from .fanout import Bus

log = logging.getLogger(__name__)

# How long a room with a hole in what it applied (a batch whose predecessor never arrived)
# waits for the missing batch before it reads the log.
GAP_GRACE = 0.5

# How stale a plan's "last edited" time may get while its room is busy.
TOUCH_EVERY = 10.0

# Updates a room holds before the connections sending them have to wait for the writer.
MAX_PENDING_BYTES = 16 * 1024 * 1024

# Bytes of updates a document holds back because what they build on never arrived (no
# well-behaved client sends those: everything it builds on came through this server). Past
# either bound the connection is closed and the room's document reloaded from the log.
MAX_UNAPPLIED_BYTES_PER_CONNECTION = 1024 * 1024
MAX_UNAPPLIED_BYTES_PER_ROOM = 4 * 1024 * 1024


def _held_back(update: bytes, state: bytes) -> bool:
    """Whether ``update`` has structs a document with ``state`` has not integrated: pycrdt
    does not expose a document's pending structs, but they are what the document's state
    does not cover (the leading count of client blocks is then not zero)."""
    return get_update(update, state)[0] != 0


def _one(updates: list[bytes]) -> bytes:
    """``updates`` as one update (merged only when there are several)."""
    return updates[0] if len(updates) == 1 else merge_updates(*updates)


def _is_fatal(exc: BaseException) -> bool:
    return isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt, SystemExit))


class Room:
    def __init__(
        self,
        key: RoomKey,
        store: Store,
        history: persistence.PlanHistory,
        *,
        checkpoint_every: int,
        hooks: Hooks | None = None,
    ) -> None:
        # The room key (see keys.py); the store and the hooks get the plan and the document.
        self.key = key
        self._plan, self._doc = split_key(key)
        self.hooks = hooks
        self.store = store
        self.checkpoint_every = checkpoint_every
        self.last_id: int = history.last_id
        # Every entry of the document up to here is in ``doc`` (see the module's docstring);
        # batches applied beyond it, whose predecessor has not been: predecessor -> last id.
        self.applied_upto: int = history.last_id
        self._ahead: dict[int, int] = {}
        # The process's fan-out (several processes), or None: set by the RoomManager.
        self.bus: Bus | None = None
        self._catching_up: asyncio.Task[None] | None = None
        self._catch_up_again = False
        self._gap_timer: asyncio.TimerHandle | None = None
        self.since_checkpoint = len(history.updates)
        self.connections: set[Connection] = set()
        self.failed = False
        self._lock = asyncio.Lock()
        self._pending: list[tuple[Connection, bytes]] = []
        self._pending_bytes = 0
        self._drained = asyncio.Event()
        self._wake = asyncio.Event()
        self._stopping = False
        self._captured: list[bytes] = []
        self._load(history)
        # Updates the document holds back for missing dependencies: (connection, update).
        self._unapplied: list[tuple[Connection, bytes]] = []
        self.presence = Presence()
        self._writer: asyncio.Task[None] | None = None
        self._unload: asyncio.TimerHandle | None = None
        self._on_reset: Callable[[Room], None] | None = None
        self._checkpointing: asyncio.Task[None] | None = None
        self._touched = -TOUCH_EVERY  # loop time the plan's updated_at was last set

    def _load(self, history: persistence.PlanHistory) -> None:
        self.doc = crdt.doc_from_updates(history.updates, base=history.checkpoint)
        self._subscription = self.doc.observe(lambda event: self._captured.append(event.update))
        self._guard = crdt.SchemaGuard(self.doc)

    async def _reload(self, why: str) -> None:
        """Replace the document by the log's (caller holds the lock, nothing is pending to be
        logged): drops what a refused update left in it, and what waits for dependencies."""
        log.warning("room %s: reloading its document from the log (%s)", self.key, why)
        self._guard.close()
        self.doc.unobserve(self._subscription)
        history = await self.store.load(self._plan, self._doc)
        self._load(history)
        self.last_id = max(self.last_id, history.last_id)
        self.applied_upto = history.last_id
        self._ahead.clear()
        if self.bus is not None:
            self.catch_up()  # what other processes logged while it was read
        for conn, update in self._unapplied:
            conn.unapplied_bytes -= len(update)
        self._unapplied.clear()

    async def repair(self) -> None:
        """Delete what breaks the plan's schema (written before updates were checked), as an
        ordinary logged change that connected clients receive too."""
        update = crdt.schema_repair(self.doc)
        if update is None:
            return
        log.warning("room %s: deleting content that breaks the plan's schema", self.key)
        await self.apply_server_change(lambda doc: doc.apply_update(update), None)
        self._guard.close()
        self._guard = crdt.SchemaGuard(self.doc)

    # Lifecycle

    def start(self, on_reset: Callable[[Room], None]) -> None:
        self._on_reset = on_reset
        self._writer = asyncio.create_task(self._write_loop(), name=f"room-writer-{self.key}")

    async def stop(self) -> None:
        """Write what is pending and a checkpoint, then stop the writer."""
        self._stopping = True
        self._wake.set()
        if self._gap_timer is not None:
            self._gap_timer.cancel()
        if self._writer is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        if self._catching_up is not None:
            self._catching_up.cancel()
            with contextlib.suppress(BaseException):
                await self._catching_up
        await self._checkpoint_written()
        if not self.failed and self.since_checkpoint:
            async with self._lock:
                self._checkpoint()
            await self._checkpoint_written()

    def schedule_unload(self, delay: float, callback: Callable[[], Awaitable[object]]) -> None:
        self.cancel_unload()
        loop = asyncio.get_running_loop()
        self._unload = loop.call_later(delay, lambda: asyncio.ensure_future(callback()))

    def cancel_unload(self) -> None:
        if self._unload is not None:
            self._unload.cancel()
            self._unload = None

    # Connections

    async def add(self, conn: Connection) -> None:
        async with self._lock:
            self.connections.add(conn)
            conn.send(sync_frame(SYNC_STEP1, self.doc.get_state()))
        if self.presence:
            conn.send(self.presence.frame())

    def remove(self, conn: Connection) -> None:
        self.connections.discard(conn)
        gone = self.presence.leave(conn)
        if gone:
            self._broadcast(gone, exclude=conn)
            if self.bus is not None:
                self.bus.publish_awareness(self.key, gone)

    def present(self) -> list[Identity]:
        return people(self.connections)

    def _broadcast(self, frame: bytes, *, exclude: Connection | None) -> None:
        wire = binary_frame(frame)
        for conn in self.connections:
            if conn is not exclude:
                conn.send(frame, wire)

    def reset(self, reason: str) -> None:
        """Give up on this room's in-memory state; clients reconnect to a fresh load."""
        if self.failed:
            return
        self.failed = True
        log.error("room %s reset: %s", self.key, reason)
        for conn in list(self.connections):
            conn.close(Close.ROOM_RESET, "room reloading, reconnect")
        self._stopping = True
        self._wake.set()
        if self._on_reset is not None:
            self._on_reset(self)

    # Frames

    async def receive(self, conn: Connection, frame: bytes) -> None:
        """Handle one frame from ``conn``. Raises FrameError for a frame that breaks protocol."""
        if not frame:
            raise FrameError("empty frame")
        kind = frame[0]
        if kind == MSG_SYNC:
            sub, payload = parse_sync(frame)
            if sub == SYNC_STEP1:
                await self._answer_step1(conn, payload)
            elif conn.identity.read_only:
                # Viewers still sync and see live edits; their changes are dropped here,
                # and the client is told once, in the y-protocols way.
                if payload != b"\x00\x00":
                    log.info("dropped a change from read-only %r", conn)
                    if not conn.told_read_only:
                        conn.told_read_only = True
                        conn.send(permission_denied_frame("read-only"))
            else:
                await self._enqueue(conn, payload)
        elif kind == MSG_AWARENESS:
            forward = self.presence.receive(conn, frame, self.connections)
            if forward:
                self._broadcast(forward, exclude=conn)
                if self.bus is not None:
                    self.bus.publish_awareness(self.key, forward)
        elif kind == MSG_QUERY_AWARENESS:
            if self.presence:
                conn.send(self.presence.frame())
        elif kind == MSG_AUTH:
            pass  # y-protocols' auth message: we authenticate at connect time instead
        else:
            raise FrameError(f"unknown message type {kind}")

    async def _answer_step1(self, conn: Connection, state_vector: bytes) -> None:
        async with self._lock:
            try:
                update = self.doc.get_update(state_vector)
            except Exception as exc:  # noqa: BLE001 - pycrdt raises plain exceptions for bad input
                raise FrameError(f"bad state vector: {exc}") from None
        conn.send(sync_frame(SYNC_STEP2, update))

    async def _enqueue(self, conn: Connection, update: bytes) -> None:
        if update == b"\x00\x00":  # an empty update: nothing to apply, log or forward
            return
        while self._pending_bytes > MAX_PENDING_BYTES and not self.failed:
            self._drained.clear()
            await self._drained.wait()
        self._pending.append((conn, update))
        self._pending_bytes += len(update)
        self._wake.set()

    # The writer

    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._pending and not self.failed:
                batch, self._pending = self._pending, []
                self._pending_bytes = 0
                self._drained.set()
                try:
                    await self._commit(batch)
                except BaseException as exc:
                    if _is_fatal(exc):
                        raise
                    self.reset(f"{type(exc).__name__}: {exc}")
            if self._stopping and (not self._pending or self.failed):
                self._drained.set()
                return

    async def _commit(self, batch: list[tuple[Connection, bytes]]) -> None:
        async with self._lock:
            accepted: list[tuple[Connection, bytes]] = []
            reload = None
            for i, (conn, update) in enumerate(batch):
                if conn.refused:
                    continue  # what a refused connection sent after is not applied either
                self._captured.clear()
                try:
                    self.doc.apply_update(update)
                except Exception as exc:  # noqa: BLE001 - pycrdt's decode errors
                    log.warning("closing %r: update could not be applied (%s)", conn, exc)
                    conn.close(Close.BAD_FRAME, "update could not be applied")
                    continue
                reload = self._refused(conn, update)
                if reload is not None:
                    # The document holds what was refused: the rest of the batch waits for
                    # the reload, which needs what was accepted logged first.
                    self._pending[:0] = batch[i + 1 :]
                    self._pending_bytes += sum(len(u) for _, u in batch[i + 1 :])
                    self._wake.set()
                    break
                if self._captured:
                    accepted.append((conn, _one(self._captured)))
            if not accepted:
                if reload is not None:
                    await self._reload(reload)
                return
            entries = [(conn.identity.user_id, update) for conn, update in accepted]
            prev, ids = await self._append(entries)
            self.since_checkpoint += len(ids)
            for conn, update in accepted:
                self._broadcast(sync_frame(SYNC_UPDATE, update), exclude=conn)
            self._published(prev, ids[-1], [update for _, update in accepted])
            if reload is not None:
                await self._reload(reload)
            elif self.since_checkpoint >= self.checkpoint_every:
                self._checkpoint()
        self._committed(
            [(conn.identity.user_id, i) for (conn, _), i in zip(accepted, ids, strict=True)]
        )

    def _refused(self, conn: Connection, update: bytes) -> str | None:
        """After ``update`` from ``conn`` was applied: None if it may be logged and sent on.
        Otherwise ``conn`` is closed and the reason returned: the document must be reloaded."""
        problem = self._guard.check()
        if problem is not None:
            # Not logged, not forwarded; the log names the connection, not the content.
            log.warning("closing %r: update breaks the plan's schema (%s)", conn, problem)
            conn.refused = True
            conn.close(Close.BAD_FRAME, "update breaks the plan's schema")
            return "refused an update"
        state = self.doc.get_state()
        if _held_back(update, state):
            self._unapplied.append((conn, update))
            conn.unapplied_bytes += len(update)
        if self._unapplied:
            still = []
            for entry in self._unapplied:
                if _held_back(entry[1], state):
                    still.append(entry)
                else:
                    entry[0].unapplied_bytes -= len(entry[1])
            self._unapplied = still
            total = sum(len(u) for _, u in still)
            if (
                conn.unapplied_bytes > MAX_UNAPPLIED_BYTES_PER_CONNECTION
                or total > MAX_UNAPPLIED_BYTES_PER_ROOM
            ):
                log.warning(
                    "closing %r with %d: %d bytes of updates wait for missing dependencies",
                    conn,
                    Close.UNAPPLIED,
                    conn.unapplied_bytes,
                )
                conn.refused = True
                conn.close(Close.UNAPPLIED, "too many updates with missing dependencies")
                return "dropping updates with missing dependencies"
        return None

    async def apply_server_change(
        self, fn: Callable[[Doc], object], author_id: int | None
    ) -> int | None:
        """Change the document on the server: ``fn(doc)`` runs under the room's lock, and its
        effective update is logged (attributed to ``author_id``) and then sent to every
        connection, like any client's. Returns the log id, or None when nothing changed.
        Whatever ``fn`` raises propagates, with nothing logged."""
        if self.failed:
            raise RuntimeError(f"room {self.key} is resetting")
        async with self._lock:
            self._captured.clear()
            with self.doc.transaction():
                fn(self.doc)
            self._guard.check()  # the server's own change: nothing to blame on the next client
            if not self._captured:
                return None
            update = _one(self._captured)
            try:
                prev, (log_id,) = await self._append([(author_id, update)])
            except BaseException as exc:
                if not _is_fatal(exc):
                    self.reset(f"{type(exc).__name__}: {exc}")
                raise
            self.since_checkpoint += 1
            self._broadcast(sync_frame(SYNC_UPDATE, update), exclude=None)
            self._published(prev, log_id, [update])
            if self.since_checkpoint >= self.checkpoint_every:
                self._checkpoint()
        self._committed([(author_id, log_id)])
        return log_id

    async def _append(
        self, entries: list[tuple[int | None, bytes]]
    ) -> tuple[int | None, list[int]]:
        """Log ``entries`` (caller holds the lock); the predecessor's id when other processes
        write this document too (None: only this room writes it), and the new ids."""
        if self.bus is None:
            ids = await self.store.append(self._plan, entries, doc=self._doc, touch=self._touch())
            prev = None
        else:
            prev, ids = await self.store.append_chained(
                self._plan, entries, doc=self._doc, touch=self._touch()
            )
        self._applied(prev, ids[-1])
        return prev, ids

    def _published(self, prev: int | None, last: int, updates: list[bytes]) -> None:
        if self.bus is not None and prev is not None:
            update = _one(updates)
            self.bus.publish_update(self.key, prev, last, update)

    # Several processes (see fanout.py)

    def _applied(self, prev: int | None, last: int) -> None:
        """The entries after ``prev`` up to ``last`` are in the document. ``prev`` None: they
        follow everything applied (only this room writes the document)."""
        self.last_id = max(self.last_id, last)
        if prev is None or prev <= self.applied_upto:
            self.applied_upto = max(self.applied_upto, last)
        else:
            self._ahead[prev] = max(last, self._ahead.get(prev, 0))
        while self._ahead:
            joined = [p for p in self._ahead if p <= self.applied_upto]
            if not joined:
                break
            for p in joined:
                self.applied_upto = max(self.applied_upto, self._ahead.pop(p))
        if self._ahead and self._gap_timer is None and not self._stopping:
            # Batches committed at once in two processes arrive in either order: give the
            # missing one a moment before reading the log.
            loop = asyncio.get_running_loop()
            self._gap_timer = loop.call_later(GAP_GRACE, self._gap_check)

    def _gap_check(self) -> None:
        self._gap_timer = None
        if self._ahead:
            self.catch_up()

    @property
    def gapped(self) -> bool:
        """Whether some batch applied waits for a predecessor not applied yet."""
        return bool(self._ahead)

    def apply_remote(self, prev: int, last: int, update: bytes) -> bool:
        """Apply a batch another process logged (entries after ``prev`` up to ``last``) and
        forward what it changed to this room's connections; nothing is logged. Whether it
        changed anything. Synchronous: the document is never seen half-changed, and what is
        applied is durable already, so the room's lock is not needed."""
        if self.failed or last <= self.applied_upto:
            return False
        changed = self._apply_durable(update)
        self._applied(prev, last)
        return changed

    def _apply_durable(self, update: bytes) -> bool:
        self._captured.clear()
        try:
            self.doc.apply_update(update)
        except Exception as exc:  # noqa: BLE001 - pycrdt's decode errors
            # Logged by another process, so it passed the same checks there: the log is the
            # truth, and a reset reloads from it.
            self._captured.clear()
            self.reset(f"a logged update could not be applied: {exc}")
            return False
        self._guard.check()  # checked where it was logged; nothing to blame on a connection
        if not self._captured:
            return False
        effective = _one(self._captured)
        self._captured.clear()
        self._broadcast(sync_frame(SYNC_UPDATE, effective), exclude=None)
        return True

    def catch_up(self) -> asyncio.Task[None] | None:
        """Read the log past ``applied_upto`` and apply it (in the background; one at a time,
        and once more after the one running if asked meanwhile): after messages were lost or
        arrived out of order."""
        if self.failed or self._stopping:
            return None
        if self._catching_up is None or self._catching_up.done():
            self._catching_up = asyncio.create_task(
                self._catch_up(), name=f"room-catch-up-{self.key}"
            )
        else:
            self._catch_up_again = True  # what it read may predate what prompted this
        return self._catching_up

    async def _catch_up(self) -> None:
        while True:
            self._catch_up_again = False
            after = self.applied_upto
            try:
                rows = await self.store.log_after(self._plan, after, self._doc)
            except Exception:  # noqa: BLE001 - the database may be away: the next check retries
                log.exception("room %s: reading the log after %d failed", self.key, after)
                return
            if self.failed:
                return
            if rows:
                # Entries of one document commit in id order (persistence.
                # append_updates_chained): these are all of them after ``after``.
                changed = self._apply_durable(merge_updates(*(data for _, data in rows)))
                self._applied(after, rows[-1][0])
                log.log(
                    logging.INFO if changed else logging.DEBUG,
                    "room %s: read %d entries from the log (%s)",
                    self.key,
                    len(rows),
                    "some new" if changed else "none new",
                )
            if not self._catch_up_again:
                return

    def remote_presence(self, origin: str, frame: bytes) -> None:
        """Awareness from the same room in another process: kept, and forwarded here."""
        forward = self.presence.receive_remote(origin, frame)
        if forward:
            self._broadcast(forward, exclude=None)

    def drop_origin(self, origin: str) -> None:
        """Another process went away: the presence it held ends here."""
        gone = self.presence.drop_origin(origin)
        if gone:
            self._broadcast(gone, exclude=None)

    def _touch(self) -> bool:
        now = asyncio.get_running_loop().time()
        if now - self._touched < TOUCH_EVERY:
            return False
        self._touched = now
        return True

    def _committed(self, entries: list[tuple[int | None, int]]) -> None:
        if self.hooks is not None:
            self.hooks.publish(Committed(self._plan, self._doc, tuple(entries)))

    def _checkpoint(self) -> None:
        """Start writing a checkpoint. The caller holds the lock, so the state taken here
        matches ``last_id`` exactly; the write itself runs in the background, so the next
        batch of edits does not wait for it (a checkpoint only speeds up loading: if it is
        lost, the log it summarises is still there)."""
        if not self.applied_upto or (self._checkpointing and not self._checkpointing.done()):
            return  # the one being written will do; the next commit tries again
        # ``applied_upto``, not ``last_id``: the checkpoint claims every entry up to its label.
        state, upto = self.doc.get_update(), self.applied_upto
        self.since_checkpoint = 0
        self._checkpointing = asyncio.create_task(
            self._write_checkpoint(upto, state), name=f"room-checkpoint-{self.key}"
        )

    async def _write_checkpoint(self, upto: int, state: bytes) -> None:
        try:
            await self.store.checkpoint(self._plan, upto, state, doc=self._doc)
        except Exception:
            # The log still holds everything; the next checkpoint will cover this one.
            log.exception("room %s: writing a checkpoint at %d failed", self.key, upto)

    async def _checkpoint_written(self) -> None:
        if self._checkpointing is not None:
            await self._checkpointing

    async def snapshot(self) -> bytes:
        """The document's durable state as one update."""
        async with self._lock:
            return self.doc.get_update()


class RoomManager:
    """Creates, loads and unloads rooms; an async context manager entered in the lifespan."""

    def __init__(
        self,
        store: Store,
        *,
        idle_seconds: float,
        checkpoint_every: int,
        hooks: Hooks | None = None,
    ) -> None:
        self.store = store
        self.hooks = hooks
        self.idle_seconds = idle_seconds
        self.checkpoint_every = checkpoint_every
        self._rooms: dict[RoomKey, Room] = {}
        self._locks: dict[RoomKey, asyncio.Lock] = {}
        # The fan-out to the other processes (TANDEM_REDIS_URL), or None: one process.
        self.bus: Bus | None = None

    def attach(self, bus: Bus) -> None:
        """Share the rooms with other processes through ``bus`` (before any room loads)."""
        self.bus = bus

    async def __aenter__(self) -> RoomManager:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for room in list(self._rooms.values()):
            for conn in list(room.connections):
                conn.close(Close.SERVER_SHUTDOWN, "server restarting")
            room.cancel_unload()
            await room.stop()
        self._rooms.clear()

    def _lock(self, key: RoomKey) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    async def _loaded(self, key: RoomKey) -> Room:
        """Caller holds the plan's lock."""
        room = self._rooms.get(key)
        if room is None:
            if self.bus is not None:
                self.bus.watch(key)  # before loading: what is published meanwhile comes too
            try:
                history = await self.store.load(*split_key(key))
            except BaseException:
                if self.bus is not None:
                    self.bus.unwatch(key)
                raise
            room = Room(
                key,
                self.store,
                history,
                checkpoint_every=self.checkpoint_every,
                hooks=self.hooks,
            )
            room.bus = self.bus
            room.start(self._forget)
            self._rooms[key] = room
            if self.bus is not None:
                room.catch_up()  # what was committed between the load and the subscription
                self.bus.loaded(key)
            try:
                await room.repair()
            except Exception:
                log.exception("room %s: repairing its schema failed", key)
            log.info("room %s loaded (%d updates replayed)", key, len(history.updates))
        return room

    async def join(self, key: RoomKey, conn: Connection) -> Room:
        """The room of ``key``, loaded and started under its lock, with ``conn`` in it."""
        async with self._lock(key):
            room = await self._loaded(key)
            room.cancel_unload()
            await room.add(conn)
            if self.bus is not None:
                self.bus.here_changed(key)
            return room

    async def open(self, key: RoomKey) -> Room:
        """The room of ``key`` for a server-side change; loaded if need be, and unloaded again
        after the idle delay when nobody joins it."""
        async with self._lock(key):
            room = await self._loaded(key)
            if not room.connections:
                room.schedule_unload(self.idle_seconds, lambda: self._unload(room))
            return room

    def leave(self, room: Room, conn: Connection) -> None:
        room.remove(conn)
        if self.bus is not None:
            self.bus.here_changed(room.key)
        if not room.connections and not room.failed:
            room.schedule_unload(self.idle_seconds, lambda: self._unload(room))

    async def _unload(self, room: Room) -> None:
        async with self._lock(room.key):
            if room.connections or self._rooms.get(room.key) is not room:
                return
            del self._rooms[room.key]
            if self.bus is not None:
                self.bus.unwatch(room.key)
            await room.stop()
            log.info("room %s unloaded", room.key)

    async def discard(self, key: RoomKey, code: int, reason: str) -> None:
        """Close a room's connections and stop it, writing what is pending, without waiting
        for them to leave (a deleted plan); in every process."""
        if self.bus is not None:
            self.bus.publish_discard(key, code, reason)
        await self.discard_here(key, code, reason)

    async def discard_here(self, key: RoomKey, code: int, reason: str) -> None:
        """``discard`` in this process only."""
        async with self._lock(key):
            room = self._rooms.pop(key, None)
            if room is None:
                return
            if self.bus is not None:
                self.bus.unwatch(key)
            for conn in list(room.connections):
                conn.close(code, reason)
            room.cancel_unload()
            await room.stop()
            log.info("room %s discarded", key)

    def _forget(self, room: Room) -> None:
        if self._rooms.get(room.key) is room:
            del self._rooms[room.key]
            if self.bus is not None:
                self.bus.unwatch(room.key)

    def room(self, key: RoomKey) -> Room | None:
        return self._rooms.get(key)

    @property
    def loaded(self) -> int:
        """Documents in memory (a plan's internal document is one more)."""
        return len(self._rooms)

    def present(self, key: RoomKey) -> list[Identity]:
        """Who is connected to the room, in this process and (with a fan-out) the others."""
        room = self._rooms.get(key)
        if self.bus is None:
            return room.present() if room else []
        return people(room.connections if room else (), self.bus.remote_present(key))

    def present_here(self) -> dict[RoomKey, list[Identity]]:
        """Who is connected to this process, by room (for the other processes)."""
        return {key: room.present() for key, room in self._rooms.items() if room.connections}

    def connections(self) -> list[Connection]:
        return [c for room in self._rooms.values() for c in room.connections]

    def plan_connections(self, plan_id: str) -> list[Connection]:
        """The open connections of both of a plan's documents."""
        return [
            c for key in room_keys(plan_id) if (r := self._rooms.get(key)) for c in r.connections
        ]

    def close(self, closing: Closing) -> int:
        """Close the connections ``closing`` describes, in every process; how many were closed
        in this one."""
        if self.bus is not None:
            self.bus.publish_closing(closing)
        return self.close_here(closing)

    def close_here(self, closing: Closing, *, digests: bool = False) -> int:
        """Close the connections of this process ``closing`` describes; how many. ``digests``:
        its ``credential_id`` is a digest (it came from another process)."""
        closed = 0
        if closing.plan_id is None:
            candidates = self.connections()
        else:
            candidates = self.plan_connections(closing.plan_id)
        for c in candidates:
            i = c.identity
            if closing.user_id is not None and not (i.is_account and i.user_id == closing.user_id):
                continue
            if closing.link_id is not None and not (
                i.via in ("link", "embed") and i.credential_id == closing.link_id
            ):
                continue
            if closing.side is not None and i.side != closing.side:
                continue
            if closing.via is not None and i.via != closing.via:
                continue
            if (
                closing.credential_id is not None
                and (digest(i.credential_id) if digests else i.credential_id)
                != closing.credential_id
            ):
                continue
            c.close(closing.code, closing.reason)
            closed += 1
        return closed

    async def snapshot(self, key: RoomKey) -> bytes:
        """The durable state of the document ``key`` names: from its live room, or replayed
        from the log."""
        room = self._rooms.get(key)
        if room is not None and not room.failed:
            return await room.snapshot()
        history = await self.store.load(*split_key(key))
        return crdt.doc_from_updates(history.updates, base=history.checkpoint).get_update()
