"""An open socket lasts no longer than its credential: a token revoked from the CLI, a link or
a session that expired, an account deactivated, all close it with 4401."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import websockets
from sqlalchemy import create_engine, select, update
from sqlalchemy.orm import Session

from persistence.models import Session as SessionRow
from persistence.models import ShareLink, User
from tests.support.access import api, create_link, invite_and_join, sign_in
from tests.support.servers import Database, Server

UNAUTHORIZED = 4401


async def _closed_within(ws, seconds: float) -> int | None:  # type: ignore[no-untyped-def]
    try:
        async with asyncio.timeout(seconds):
            while True:
                await ws.recv()
    except websockets.ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd else None


@pytest.fixture
def srv(database: Database, tmp_path: Path):  # type: ignore[no-untyped-def]
    server = Server(
        data_dir=tmp_path, database_url=database.url, extra_env={"TANDEM_RECHECK_SECONDS": "0.3"}
    ).start()
    yield server
    server.stop()


def test_sockets_close_when_their_credential_lapses(srv: Server, database: Database) -> None:
    srv.create_user("owner@vendor.example", "Olive Owner")
    owner_token = srv.create_token("owner@vendor.example")
    doomed_token = srv.create_token("owner@vendor.example")
    doomed_id = srv.cli("tokens", "list", "owner@vendor.example").stdout.splitlines()[-1]
    doomed_id = doomed_id.split("\t")[0]
    owner = api(srv, owner_token)
    plan = srv.create_plan(owner_token)
    invite_and_join(srv, owner, plan, "dee@customer.example", "Dee Parted", "editor", "customer")
    dee_token = srv.create_token("dee@customer.example")
    dee = sign_in(srv, "dee@customer.example")
    owner_browser = sign_in(srv, "owner@vendor.example")
    link = create_link(owner, plan, role="editor", label="Working group")
    engine = create_engine(database.url)
    past = datetime.now(UTC) - timedelta(minutes=1)

    def change(statement) -> Callable[[], None]:  # type: ignore[no-untyped-def]
        def run() -> None:
            with Session(engine) as s, s.begin():
                s.execute(statement)

        return run

    def user_id(email: str) -> int:
        with Session(engine) as s:
            return s.scalar(select(User.id).where(User.email == email))  # type: ignore[return-value]

    url = f"{srv.ws}/{plan}"

    def by_cookie(caller):  # type: ignore[no-untyped-def]
        headers = {"Origin": srv.http, "Cookie": caller.cookie_header()}
        return websockets.connect(url, additional_headers=headers)

    async def scenario() -> None:
        async with (
            websockets.connect(f"{url}?token={owner_token}") as stays,
            websockets.connect(f"{url}?token={doomed_token}") as revoked,
            websockets.connect(f"{url}?token={link['token']}") as expired_link,
            by_cookie(owner_browser) as expired_session,
            websockets.connect(f"{url}?token={dee_token}") as deactivated_token,
            by_cookie(dee) as deactivated_session,
        ):
            for ws in (stays, revoked, expired_link, expired_session):
                await ws.recv()
            for ws in (deactivated_token, deactivated_session):
                await ws.recv()

            # Another process (the CLI) revokes the token: nothing in the server is told.
            done = await asyncio.to_thread(srv.cli, "tokens", "revoke", doomed_id)
            assert done.returncode == 0, done.stderr
            assert await _closed_within(revoked, 15) == UNAUTHORIZED

            await asyncio.to_thread(
                change(update(ShareLink).where(ShareLink.id == link["id"]).values(expires_at=past))
            )
            assert await _closed_within(expired_link, 15) == UNAUTHORIZED

            owner_id = user_id("owner@vendor.example")
            await asyncio.to_thread(
                change(
                    update(SessionRow).where(SessionRow.user_id == owner_id).values(expires_at=past)
                )
            )
            assert await _closed_within(expired_session, 15) == UNAUTHORIZED

            dee_id = user_id("dee@customer.example")
            await asyncio.to_thread(
                change(update(User).where(User.id == dee_id).values(deactivated_at=past))
            )
            assert await _closed_within(deactivated_token, 15) == UNAUTHORIZED
            assert await _closed_within(deactivated_session, 15) == UNAUTHORIZED

            # The owner's own token is still good: that socket was left alone throughout.
            pong = await stays.ping()
            await asyncio.wait_for(pong, 5)

    try:
        asyncio.run(scenario())
    finally:
        engine.dispose()
        owner.close()
        dee.client.close()
        owner_browser.client.close()
    assert "revoked or expired" in srv.log()
