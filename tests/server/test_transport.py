"""The server as a network peer: what it logs, whose address it believes, how long it waits for
a request, how much body it takes."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from tests.support.servers import Database, Server


def _server(database: Database, tmp_path: Path, **env: str) -> Server:
    return Server(data_dir=tmp_path, database_url=database.url, extra_env=env).start()


@pytest.fixture
def start(database: Database, tmp_path: Path) -> Iterator:  # type: ignore[type-arg]
    started: list[Server] = []

    def go(**env: str) -> Server:
        sub = tmp_path / f"s{len(started)}"
        sub.mkdir()
        started.append(_server(database, sub, **env))
        return started[-1]

    yield go
    for srv in started:
        srv.stop()


def test_tokens_in_urls_never_reach_the_log(start) -> None:  # type: ignore[no-untyped-def]
    srv = start()
    secrets = {
        "/s/tdl_SECRETlink.abc-def": "tdl_",
        "/embed/tde_SECRETembed.abc": "tde_",
        "/invite/tdi_SECRETinvite.abc": "tdi_",
        "/reset/tdr_SECRETreset.abc": "tdr_",  # a prefix the server may not even know yet
        "/api/plans?token=tdm_SECRETquery.abc&x=1": "tdm_",
        "/api/plans?token=SECRETbare": "token=",
        "/login?next=%2Fs%2Ftdl_SECRETencoded.abc": "tdl_",
    }
    with httpx.Client(base_url=srv.http) as client:
        for path in secrets:
            client.get(path)

    async def socket_with_token() -> None:
        async with websockets.connect(f"{srv.ws}/p1?token=tdm_SECRETsocket.abc") as ws:
            with pytest.raises(websockets.ConnectionClosed):
                await ws.recv()

    asyncio.run(socket_with_token())
    srv.stop()
    log = srv.log()
    assert "SECRET" not in log
    assert log.count("token=[redacted]") >= 3
    for shown in ("tdl_[redacted]", "tde_[redacted]", "tdi_[redacted]", "tdr_[redacted]"):
        assert shown in log  # the request lines are there, without their tokens


def _sign_in_attempts(srv: Server, count: int) -> list[int]:
    codes = []
    with httpx.Client(base_url=srv.http) as client:
        for i in range(count):
            r = client.post(
                "/login",
                data={"email": "csm@vendor.example", "password": "wrong password"},
                headers={"X-Forwarded-For": f"203.0.113.{i + 1}"},
            )
            codes.append(r.status_code)
    return codes


def _socket_closes(srv: Server, count: int) -> list[int | None]:
    async def one(i: int) -> int | None:
        headers = {"X-Forwarded-For": f"203.0.113.{i + 1}"}
        async with websockets.connect(f"{srv.ws}/p1", additional_headers=headers) as ws:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
        return closed.value.rcvd.code if closed.value.rcvd else None

    async def all_of_them() -> list[int | None]:
        return [await one(i) for i in range(count)]

    return asyncio.run(all_of_them())


def test_forwarded_for_is_believed_only_from_configured_proxies(start) -> None:  # type: ignore[no-untyped-def]
    srv = start(TANDEM_SIGNIN_PER_MINUTE="3", TANDEM_WS_CONNECTS_PER_MINUTE="3")
    srv.create_user("csm@vendor.example", "Casey CSM")
    codes = _sign_in_attempts(srv, 6)
    assert codes[:3] == [401, 401, 401]
    assert 429 in codes  # a made-up header from a direct peer does not dodge the limit
    closes = _socket_closes(srv, 6)
    assert closes[:3] == [4401, 4401, 4401]  # no credentials, but connected
    assert 4429 in closes  # ...and then limited, whatever the header says
    srv.stop()

    behind_proxy = start(  # the same database: the account is there already
        TANDEM_SIGNIN_PER_MINUTE="3", TANDEM_TRUSTED_PROXIES="127.0.0.1"
    )
    # From the configured proxy, each forwarded address is its own client.
    assert _sign_in_attempts(behind_proxy, 6) == [401] * 6


def _closed_by_server(sock: socket.socket) -> bool:
    """True once the server closes ``sock``; False if it is still open after 20 s."""
    sock.settimeout(20)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def test_connections_that_never_finish_a_request_are_closed(start) -> None:  # type: ignore[no-untyped-def]
    srv = start(
        TANDEM_HEADER_TIMEOUT_SECONDS="1",
        TANDEM_KEEP_ALIVE_SECONDS="1",
        TANDEM_BODY_TIMEOUT_SECONDS="1",
    )
    token = _token_on(srv)  # with an account, /login reads its form
    addr = ("127.0.0.1", srv.port)
    slow_body = socket.create_connection(addr)
    slow_body.sendall(
        b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n\r\nemail=a"
    )
    silent = socket.create_connection(addr)
    partial = socket.create_connection(addr)
    partial.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    second = socket.create_connection(addr)
    second.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert second.recv(65536).startswith(b"HTTP/1.1 200")
    second.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # the next request never ends
    for sock in (silent, partial, second):
        with sock:
            assert _closed_by_server(sock)
    with slow_body:
        slow_body.settimeout(20)
        answer = b""
        while chunk := slow_body.recv(65536):  # to the end: the server closes it
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert b"request body not received within 1 seconds" in answer
    assert httpx.get(f"{srv.http}/healthz").status_code == 200

    async def a_socket_outlives_the_deadline() -> None:
        plan = srv.create_plan(token)
        async with websockets.connect(f"{srv.ws}/{plan}?token={token}") as ws:
            await ws.recv()
            await asyncio.sleep(2.5)  # past the 1 s head deadline: an upgraded socket stays
            pong = await ws.ping()
            await asyncio.wait_for(pong, 5)

    asyncio.run(a_socket_outlives_the_deadline())


def _token_on(srv: Server) -> str:
    srv.create_user("csm@vendor.example", "Casey CSM")
    return srv.create_token("csm@vendor.example")


def _chunks(total: int) -> Iterator[bytes]:
    boundary = b"--xx\r\n"
    yield boundary + b'Content-Disposition: form-data; name="f"; filename="a.bin"\r\n\r\n'
    piece = b"a" * 65536
    for _ in range(total // len(piece)):
        yield piece
    yield b"\r\n--xx--\r\n"


def test_chunked_bodies_obey_the_request_size_limit(start) -> None:  # type: ignore[no-untyped-def]
    srv = start(TANDEM_MAX_REQUEST_BYTES="100000")
    srv.create_user("csm@vendor.example", "Casey CSM")
    with httpx.Client(base_url=srv.http) as client:
        for path in ("/login", "/logout"):  # both read a form, before any sign-in
            r = client.post(
                path,
                content=_chunks(4 * 1024 * 1024),
                headers={"Content-Type": "multipart/form-data; boundary=xx"},
            )
            assert r.status_code == 413, (path, r.status_code)
            assert r.json() == {"error": "request body is larger than 100000 bytes"}
    assert httpx.get(f"{srv.http}/healthz").status_code == 200
