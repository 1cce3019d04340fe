"""The y-websocket wire protocol as the server needs it, and our named close codes."""

from __future__ import annotations

from enum import IntEnum


class Close(IntEnum):
    """Websocket close codes. The editor receives them in its page config, by name."""

    NORMAL = 1000
    INTERNAL = 1011
    SERVER_SHUTDOWN = 1012
    BAD_FRAME = 4400
    UNAUTHORIZED = 4401
    FORBIDDEN = 4403
    PLAN_NOT_FOUND = 4404
    READ_ONLY = 4405
    TOO_SLOW = 4408
    FRAME_TOO_LARGE = 4413
    UNAPPLIED = 4422  # too many updates whose dependencies never arrived
    TOO_MANY = 4429
    ROOM_RESET = 4500


# Message types of y-protocols.
MSG_SYNC = 0
MSG_AWARENESS = 1
MSG_AUTH = 2
MSG_QUERY_AWARENESS = 3
SYNC_STEP1 = 0
SYNC_STEP2 = 1
SYNC_UPDATE = 2


class FrameError(ValueError):
    """A frame that does not follow the protocol."""


def read_var_uint(data: bytes, pos: int) -> tuple[int, int]:
    """lib0's variable-length unsigned integer at ``pos``: (value, next position)."""
    value = 0
    shift = 0
    while True:
        if pos >= len(data):
            raise FrameError("truncated integer")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise FrameError("integer too long")


def read_var_bytes(data: bytes, pos: int) -> tuple[bytes, int]:
    length, pos = read_var_uint(data, pos)
    end = pos + length
    if end > len(data):
        raise FrameError("truncated payload")
    return data[pos:end], end


def write_var_uint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def write_var_bytes(payload: bytes) -> bytes:
    return write_var_uint(len(payload)) + payload


def parse_sync(frame: bytes) -> tuple[int, bytes]:
    """A sync frame's subtype and payload (a state vector or an update)."""
    sub, pos = read_var_uint(frame, 1)
    if sub not in (SYNC_STEP1, SYNC_STEP2, SYNC_UPDATE):
        raise FrameError(f"unknown sync message {sub}")
    payload, end = read_var_bytes(frame, pos)
    if end != len(frame):
        raise FrameError("trailing bytes after sync payload")
    return sub, payload


AUTH_PERMISSION_DENIED = 0


def permission_denied_frame(reason: str) -> bytes:
    """y-protocols' auth message "permission denied", which y-websocket clients report."""
    return bytes((MSG_AUTH, AUTH_PERMISSION_DENIED)) + write_var_bytes(reason.encode())


def sync_frame(sub: int, payload: bytes) -> bytes:
    return bytes((MSG_SYNC,)) + write_var_uint(sub) + write_var_bytes(payload)


def parse_awareness(frame: bytes) -> list[tuple[int, int, str]]:
    """An awareness frame's entries: (client id, clock, state as JSON text)."""
    body, end = read_var_bytes(frame, 1)
    if end != len(frame):
        raise FrameError("trailing bytes after awareness payload")
    count, pos = read_var_uint(body, 0)
    entries = []
    for _ in range(count):
        client, pos = read_var_uint(body, pos)
        clock, pos = read_var_uint(body, pos)
        raw, pos = read_var_bytes(body, pos)
        try:
            entries.append((client, clock, raw.decode("utf-8")))
        except UnicodeDecodeError as exc:
            raise FrameError("awareness state is not UTF-8") from exc
    if pos != len(body):
        raise FrameError("trailing bytes in awareness payload")
    return entries


def awareness_frame(entries: list[tuple[int, int, str]]) -> bytes:
    body = bytearray(write_var_uint(len(entries)))
    for client, clock, state in entries:
        body += write_var_uint(client) + write_var_uint(clock) + write_var_bytes(state.encode())
    return bytes((MSG_AWARENESS,)) + write_var_bytes(bytes(body))
