"""The fan-out through Redis pub/sub (``TANDEM_REDIS_URL``); the design is in fanout.py.

One connection subscribes (``tandem:all`` and the channel of every loaded room) and one
publishes, from a queue: nothing on the edit path waits for Redis, and when Redis is away the
messages are dropped (the log has them; see ``_lost``). The subscriber reconnects with a backoff
and, once back, every room reads the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from server.identity import Identity

from .events import Closing
from .fanout import (
    BEAT_SECONDS,
    CHANNEL_ALL,
    CHECK_SECONDS,
    GONE_SECONDS,
    ROOM_PREFIX,
    Message,
    decode,
    digest,
    encode,
    fanout_lag,
    identity_from_json,
    identity_json,
    room_channel,
)
from .keys import RoomKey, split_key
from .rooms import Room, RoomManager

log = logging.getLogger(__name__)

# Messages waiting for the publisher; past this (Redis slow or away) they are dropped, and
# announced once Redis is back (the log has them).
MAX_QUEUED = 50_000
RECONNECT_DELAYS = (0.1, 0.25, 0.5, 1.0, 2.0)


class RedisFanout:
    """The process's fan-out; an async context manager entered in the lifespan, before the
    rooms (so that it stops after them)."""

    def __init__(self, url: str, rooms: RoomManager) -> None:
        self.url = url
        self.rooms = rooms
        self.origin = uuid.uuid4().hex[:12]
        self.connected = False
        self._queue: asyncio.Queue[tuple[str, bytes, RoomKey | None]] = asyncio.Queue()
        self._watched: set[RoomKey] = set()
        self._subscribed: set[RoomKey] = set()  # on the current connection
        self._resubscribe = asyncio.Event()
        # Rooms of which a batch could not be published: announced once Redis is back.
        self._lost: set[RoomKey] = set()
        # Other processes: when last heard, and who is connected to them by room.
        self._seen: dict[str, float] = {}
        self._here: dict[str, dict[RoomKey, list[Identity]]] = {}
        self._dirty: set[RoomKey] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._publisher_client: aioredis.Redis | None = None
        self.reconnects = 0
        self._background: set[asyncio.Future[None]] = set()
        self._echo = 0.0  # when the subscriber last heard one of this process's messages
        rooms.attach(self)

    def _client(self, *, timeout: float | None) -> aioredis.Redis:
        # No retries inside redis-py: a lost connection must reach us, to read the log after.
        return aioredis.from_url(
            self.url,
            socket_connect_timeout=2,
            socket_timeout=timeout,
            socket_keepalive=True,
            health_check_interval=2,
            retry=Retry(NoBackoff(), 0),
        )

    async def __aenter__(self) -> RedisFanout:
        self._publisher_client = self._client(timeout=2)
        self._tasks = [
            asyncio.create_task(self._subscriber(), name="fanout-subscriber"),
            asyncio.create_task(self._publisher(), name="fanout-publisher"),
            asyncio.create_task(self._beats(), name="fanout-beats"),
            asyncio.create_task(self._checks(), name="fanout-checks"),
        ]
        return self

    async def __aexit__(self, *exc: object) -> None:
        # The rooms have stopped: say so, let the publisher send what is queued, then stop.
        self._send(CHANNEL_ALL, encode("bye", self.origin))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2):
                await self._queue.join()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
        if self._publisher_client is not None:
            with contextlib.suppress(Exception):
                await self._publisher_client.aclose()

    # What rooms call (never waits)

    def publish_update(self, key: RoomKey, prev: int, last: int, update: bytes) -> None:
        self._send(
            room_channel(key), encode("update", self.origin, update, prev=prev, last=last), key
        )

    def publish_awareness(self, key: RoomKey, frame: bytes) -> None:
        self._send(room_channel(key), encode("awareness", self.origin, frame))

    def publish_closing(self, closing: Closing) -> None:
        fields = asdict(closing)
        if closing.credential_id is not None:
            fields["credential_id"] = digest(closing.credential_id)
        self._send(CHANNEL_ALL, encode("closing", self.origin, closing=fields))

    def publish_discard(self, key: RoomKey, code: int, reason: str) -> None:
        self._send(room_channel(key), encode("discard", self.origin, code=code, reason=reason))

    def watch(self, key: RoomKey) -> None:
        self._watched.add(key)
        self._resubscribe.set()

    def loaded(self, key: RoomKey) -> None:
        # Those who have the room loaded answer with their connections' presence.
        self._send(room_channel(key), encode("query", self.origin))

    def unwatch(self, key: RoomKey) -> None:
        self._watched.discard(key)
        self._resubscribe.set()

    def here_changed(self, key: RoomKey) -> None:
        if not self._dirty:
            asyncio.get_running_loop().call_soon(self._send_here)
        self._dirty.add(key)

    def remote_present(self, key: RoomKey) -> list[Identity]:
        return [i for rooms in self._here.values() for i in rooms.get(key, ())]

    # Publishing

    def _send(self, channel: str, data: bytes, key: RoomKey | None = None) -> None:
        if self._queue.qsize() >= MAX_QUEUED:
            if key is not None:
                self._lost.add(key)
            return
        self._queue.put_nowait((channel, data, key))

    async def _publisher(self) -> None:
        client = self._publisher_client
        assert client is not None
        failing = False
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty() and len(batch) < 1000:
                batch.append(self._queue.get_nowait())
            lost: set[RoomKey] = set()
            if self._lost and self.connected:
                lost, self._lost = self._lost, set()
            try:
                async with client.pipeline(transaction=False) as pipe:
                    for channel, data, _ in batch:
                        pipe.publish(channel, data)
                    if lost:
                        for key in lost:
                            room = self.rooms.room(key)
                            if room is not None:
                                pipe.publish(
                                    room_channel(key),
                                    encode("head", self.origin, last=room.last_id),
                                )
                    await pipe.execute()
            except Exception as exc:  # noqa: BLE001 - Redis away: the log has every update
                self._lost |= lost | {key for _, _, key in batch if key is not None}
                if not failing:
                    log.warning(
                        "could not publish to Redis (%s): rooms go on here, and what could "
                        "not be published is announced once it is back",
                        exc,
                    )
                failing = True
                await asyncio.sleep(0.2)
            else:
                if failing:
                    log.warning("publishing to Redis again (%d rooms announced)", len(lost))
                failing = False
            finally:
                for _ in batch:
                    self._queue.task_done()

    def _send_here(self) -> None:
        dirty, self._dirty = self._dirty, set()
        for key in dirty:
            room = self.rooms.room(key)
            present = room.present() if room else []
            self._send(
                CHANNEL_ALL,
                encode("here", self.origin, room=key, people=[identity_json(i) for i in present]),
            )

    async def _beats(self) -> None:
        while True:
            try:
                self._beat()
                self._forget_silent()
            except Exception:
                log.exception("fan-out beat failed")
            await asyncio.sleep(BEAT_SECONDS)

    def _forget_silent(self) -> None:
        now = time.monotonic()
        for origin, seen in list(self._seen.items()):
            if now - seen > GONE_SECONDS:
                log.warning(
                    "process %s not heard for %.0f s: its presence ends", origin, now - seen
                )
                self._gone(origin)

    def _beat(self) -> None:
        here = {
            key: [identity_json(i) for i in present]
            for key, present in self.rooms.present_here().items()
        }
        self._send(CHANNEL_ALL, encode("beat", self.origin, here=here))

    async def _checks(self) -> None:
        """The safety net: rooms with connections whose document's newest log id is past what
        they applied read the log (a message lost without the connection dropping)."""
        while True:
            await asyncio.sleep(CHECK_SECONDS)
            try:
                await self._check()
            except Exception:  # noqa: BLE001 - the database may be away; next time
                log.exception("could not compare the rooms with the log")

    async def _check(self) -> None:
        rooms: dict[tuple[str, str], Room] = {
            split_key(key): room
            for key in list(self._watched)
            if (room := self.rooms.room(key)) is not None and (room.connections or room.gapped)
        }
        if not rooms:
            return
        for plan, doc, top in await self.rooms.store.log_tops(list(rooms)):
            found = rooms.get((plan, doc))
            if found is not None and top > found.applied_upto:
                found.catch_up()

    # Subscribing

    async def _subscriptions(self, pubsub: Any) -> None:
        """Keeps the connection's room channels those of the loaded rooms, one change at a
        time, in order."""
        while True:
            await self._resubscribe.wait()
            self._resubscribe.clear()
            add = self._watched - self._subscribed
            remove = self._subscribed - self._watched
            if add:
                await pubsub.subscribe(*(room_channel(k) for k in add))
                self._subscribed |= add
            if remove:
                await pubsub.unsubscribe(*(room_channel(k) for k in remove))
                self._subscribed -= remove

    async def _subscriber(self) -> None:
        failures = 0
        while True:
            client = self._client(timeout=None)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            syncing: asyncio.Task[None] | None = None
            try:
                self._subscribed = set(self._watched)
                await pubsub.subscribe(CHANNEL_ALL, *(room_channel(k) for k in self._subscribed))
                self.connected = True
                if failures or self.reconnects:
                    log.warning("connected to Redis again: every room reads the log")
                self.reconnects += 1
                failures = 0
                self._after_connect()
                self._echo = time.monotonic()
                syncing = asyncio.create_task(self._subscriptions(pubsub))
                self._resubscribe.set()
                while True:
                    if syncing.done():
                        syncing.result()  # its error ends this connection
                    if time.monotonic() - self._echo > GONE_SECONDS:
                        # Its own beats no longer come back: the connection is dead without
                        # having said so (a silent network). A new one reads the log.
                        raise ConnectionError("no message from Redis for too long")
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        self._received(message["channel"], message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis away: rooms go on, locally
                if self.connected or not failures:
                    log.warning("lost the connection to Redis (%s); retrying", exc)
                self.connected = False
                failures += 1
            finally:
                if syncing is not None:
                    syncing.cancel()
                    with contextlib.suppress(BaseException):
                        await syncing
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                with contextlib.suppress(Exception):
                    await client.aclose()
            await asyncio.sleep(RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS)) - 1])

    def _after_connect(self) -> None:
        """Connected (again): what may have been missed is read from the log, presence asked
        for again, and this process announced."""
        self._send(CHANNEL_ALL, encode("hello", self.origin))
        self._beat()
        for key in list(self._watched):
            room = self.rooms.room(key)
            if room is not None:
                room.catch_up()
                self._send(room_channel(key), encode("query", self.origin))

    # Receiving

    def _received(self, channel: bytes | str, data: bytes) -> None:
        try:
            message = decode(data)
        except (ValueError, UnicodeDecodeError):
            log.warning("ignored a malformed fan-out message on %r", channel)
            return
        if message.origin == self.origin:
            self._echo = time.monotonic()
            return
        self._seen[message.origin] = time.monotonic()
        name = channel.decode() if isinstance(channel, bytes) else channel
        try:
            if name == CHANNEL_ALL:
                self._received_all(message)
            elif name.startswith(ROOM_PREFIX):
                self._received_room(name[len(ROOM_PREFIX) :], message)
        except Exception:
            log.exception("fan-out message %r on %s failed", message.kind, name)

    def _received_room(self, key: RoomKey, message: Message) -> None:
        room = self.rooms.room(key)
        if room is None or room.failed:
            return
        h = message.header
        if message.kind == "update":
            room.apply_remote(int(h["prev"]), int(h["last"]), message.payload)
            fanout_lag().observe(max(0.0, time.time() - float(h["t"])))
        elif message.kind == "awareness":
            room.remote_presence(message.origin, message.payload)
        elif message.kind == "query":
            frame = room.presence.local_frame()
            if frame is not None:
                self._send(room_channel(key), encode("awareness", self.origin, frame))
        elif message.kind == "discard":
            task = asyncio.ensure_future(
                self.rooms.discard_here(key, int(h["code"]), str(h["reason"]))
            )
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        elif message.kind == "head" and int(h["last"]) > room.applied_upto:
            room.catch_up()

    def _received_all(self, message: Message) -> None:
        h = message.header
        if message.kind == "closing":
            fields = h["closing"]
            closing = Closing(**fields)
            self.rooms.close_here(closing, digests=True)
        elif message.kind == "beat":
            self._here[message.origin] = {
                key: [identity_from_json(d) for d in people]
                for key, people in dict(h.get("here") or {}).items()
            }
        elif message.kind == "here":
            rooms = self._here.setdefault(message.origin, {})
            people = [identity_from_json(d) for d in h.get("people") or ()]
            if people:
                rooms[str(h["room"])] = people
            else:
                rooms.pop(str(h["room"]), None)
        elif message.kind == "hello":
            self._beat()
        elif message.kind == "bye":
            self._gone(message.origin)

    def _gone(self, origin: str) -> None:
        self._seen.pop(origin, None)
        self._here.pop(origin, None)
        for room in self._rooms():
            room.drop_origin(origin)

    def _rooms(self) -> Iterable[Room]:
        return [r for key in list(self._watched) if (r := self.rooms.room(key)) is not None]
