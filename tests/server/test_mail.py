"""Invitations and one-time codes through a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from pathlib import Path

import httpx
import pytest
from aiosmtpd.controller import Controller

from tests.support.access import PASSWORD, api, create_link, sign_in
from tests.support.servers import Database, Server, free_port


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, N802
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"

    def last_to(self, address: str) -> str:
        for message in reversed(self.messages):
            if message["To"] == address:
                return message.get_payload(decode=True).decode()
        raise AssertionError(f"no mail to {address}")


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    box = Inbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    box.port = controller.port  # type: ignore[attr-defined]
    yield box
    controller.stop()


@pytest.fixture
def mail_server(database: Database, tmp_path: Path, inbox: Inbox) -> Iterator[Server]:
    srv = Server(
        data_dir=tmp_path,
        database_url=database.url,
        extra_env={
            "TANDEM_SMTP_HOST": "127.0.0.1",
            "TANDEM_SMTP_PORT": str(inbox.port),
            "TANDEM_SMTP_FROM": "tandem@vendor.example",
        },
    ).start()
    yield srv
    srv.stop()


def path_of(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def test_invitation_by_email_creates_the_account_once(mail_server: Server, inbox: Inbox) -> None:
    srv = mail_server
    srv.create_user("owner@vendor.example", "Olive Owner", PASSWORD)
    token = srv.create_token("owner@vendor.example")
    plan = srv.create_plan(token, "Rollout", "Acme")
    with api(srv, token) as owner:
        r = owner.post(
            f"/api/plans/{plan}/members",
            json={"email": "Robin@Customer.example", "role": "editor", "side": "customer"},
        )
        assert r.status_code == 201
        body = inbox.last_to("robin@customer.example")
        assert "Olive Owner invited you" in body and "Rollout" in body
        url = re.search(r"https?://\S+/invite/\S+", body).group(0)
        with httpx.Client(base_url=srv.http, follow_redirects=False) as robin:
            assert robin.get(path_of(url)).status_code == 200
            r = robin.post(
                path_of(url), data={"name": "Robin", "password": PASSWORD, "confirm": PASSWORD}
            )
            assert r.status_code == 303 and r.headers["location"] == f"/plans/{plan}"
            assert robin.get(f"/plans/{plan}").status_code == 200  # signed in by joining
            assert robin.get(f"/plans/{plan}/internal").status_code == 404  # customer side
            assert (
                robin.post(
                    path_of(url), data={"name": "Again", "password": PASSWORD, "confirm": PASSWORD}
                ).status_code
                == 410
            )
        members = owner.get(f"/api/plans/{plan}/members").json()["members"]
        assert {(m["email"], m["role"], m["side"]) for m in members} == {
            ("owner@vendor.example", "owner", "vendor"),
            ("robin@customer.example", "editor", "customer"),
        }
        kinds = [e["kind"] for e in owner.get(f"/api/plans/{plan}/access-log").json()["events"]]
        assert "member.invited" in kinds and "member.added" in kinds


def test_domain_locked_link_needs_a_code_from_that_domain(
    mail_server: Server, inbox: Inbox
) -> None:
    srv = mail_server
    srv.create_user("owner@vendor.example", "Olive Owner", PASSWORD)
    token = srv.create_token("owner@vendor.example")
    plan = srv.create_plan(token, "Rollout", "Acme")
    with api(srv, token) as owner:
        link = create_link(owner, plan, role="viewer", label="Acme only", domain="acme.example")
        with httpx.Client(base_url=srv.http, follow_redirects=False) as visitor:
            landing = path_of(link["url"])
            r = visitor.post(
                landing, data={"step": "name", "name": "Ann", "email": "ann@evil.example"}
            )
            assert r.status_code == 400
            # Without a proven address the link's own token opens no socket either.
            assert visitor.get(f"/plans/{plan}").status_code == 303
            r = visitor.post(
                landing, data={"step": "name", "name": "Ann", "email": "ann@acme.example"}
            )
            assert r.status_code == 200 and "code" in r.text
            pending = re.search(r'name="pending" value="([^"]+)"', r.text).group(1)
            code = re.search(r"code is (\d{6})", inbox.last_to("ann@acme.example")).group(1)
            wrong = "000000" if code != "000000" else "111111"
            r = visitor.post(landing, data={"step": "code", "pending": pending, "code": wrong})
            assert r.status_code == 400
            r = visitor.post(landing, data={"step": "code", "pending": pending, "code": code})
            assert r.status_code == 303
            assert visitor.get(f"/plans/{plan}").status_code == 200
            # One-time: the same code does not open a second visit.
            with httpx.Client(base_url=srv.http, follow_redirects=False) as other:
                r = other.post(landing, data={"step": "code", "pending": pending, "code": code})
                assert r.status_code == 400
        listed = owner.get(f"/api/plans/{plan}/links").json()["links"][0]
        assert listed["uses"] == 1 and listed["last_used_at"]


def test_password_reset_by_email_is_single_use_and_ends_other_sessions(
    mail_server: Server, inbox: Inbox
) -> None:
    srv = mail_server
    srv.create_user("owner@vendor.example", "Olive Owner", PASSWORD)
    srv.create_user("robin@vendor.example", "Robin", PASSWORD)
    old = httpx.Client(base_url=srv.http, follow_redirects=False)
    assert (
        old.post("/login", data={"email": "robin@vendor.example", "password": PASSWORD}).status_code
        == 303
    )
    assert old.get("/api/plans").status_code == 200
    with httpx.Client(base_url=srv.http, follow_redirects=False) as robin:
        assert robin.get("/login").text.count('href="/password-reset"') == 1
        known = robin.post("/password-reset", data={"email": "Robin@Vendor.example"})
        unknown = robin.post("/password-reset", data={"email": "nobody@vendor.example"})
        # The same answer whether or not the address has an account.
        assert known.status_code == unknown.status_code == 200
        assert known.text.replace("Robin@Vendor.example", "x").replace(
            "robin@vendor.example", "x"
        ) == (unknown.text.replace("nobody@vendor.example", "x"))
        body = _wait_for_mail(inbox, "robin@vendor.example")
        assert all(m["To"] != "nobody@vendor.example" for m in inbox.messages)
        url = re.search(r"https?://\S+/password-reset/tdr_\S+", body).group(0)
        assert robin.get(path_of(url)).status_code == 200
        r = robin.post(path_of(url), data={"password": "short", "confirm": "short"})
        assert r.status_code == 400 and "at least 8" in r.text
        r = robin.post(
            path_of(url), data={"password": "a new password", "confirm": "a new password"}
        )
        assert r.status_code == 303
        assert robin.get("/api/plans").status_code == 200  # signed in with the new password
        # Single use; the session from before the reset has ended; the old password is gone.
        assert robin.post(
            path_of(url), data={"password": "another one!", "confirm": "another one!"}
        ).status_code in (404, 410)
    assert old.get("/api/plans").status_code == 401
    old.close()
    r = httpx.post(
        f"{srv.http}/login", data={"email": "robin@vendor.example", "password": PASSWORD}
    )
    assert r.status_code == 401
    r = httpx.post(
        f"{srv.http}/login", data={"email": "robin@vendor.example", "password": "a new password"}
    )
    assert r.status_code == 303
    # A forged or foreign token (an invitation's, say) is no reset link.
    assert httpx.get(f"{srv.http}/password-reset/tdr_forged").status_code == 404


def _wait_for_mail(inbox: Inbox, address: str) -> str:
    # The reset mail goes out after the answer (so SMTP's delay reveals nothing): wait for it.
    import time

    for _ in range(100):
        try:
            return inbox.last_to(address)
        except AssertionError:
            time.sleep(0.1)
    return inbox.last_to(address)


def test_password_reset_requests_are_rate_limited(database: Database, tmp_path: Path) -> None:
    srv = Server(
        data_dir=tmp_path, database_url=database.url, extra_env={"TANDEM_SIGNIN_PER_MINUTE": "3"}
    ).start()
    try:
        srv.create_user("owner@vendor.example", "Olive Owner", PASSWORD)
        with httpx.Client(base_url=srv.http) as c:
            codes = [
                c.post("/password-reset", data={"email": "owner@vendor.example"}).status_code
                for _ in range(5)
            ]
        assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429], codes
    finally:
        srv.stop()


def _invite_on_share_page(srv: Server, plan: str) -> str:
    """Invite through the Share page's form, as an owner does; the page shown after it."""
    owner = sign_in(srv, "owner@vendor.example")
    form = {"csrf": owner.csrf, "action": "invite", "email": "robin@customer.example"}
    form |= {"role": "editor", "side": "customer"}
    r = owner.client.post(f"/plans/{plan}/share", data=form)
    assert r.status_code == 303, r.text
    page = owner.client.get(r.headers["location"])
    assert page.status_code == 200
    owner.client.close()
    return page.text


def test_share_page_says_sent_only_when_the_mail_went_out(
    mail_server: Server, inbox: Inbox
) -> None:
    srv = mail_server
    srv.create_user("owner@vendor.example", "Olive Owner", PASSWORD)
    plan = srv.create_plan(srv.create_token("owner@vendor.example"), "Rollout", "Acme")
    page = _invite_on_share_page(srv, plan)
    assert "Invitation sent." in page and "No email was sent" not in page
    assert inbox.last_to("robin@customer.example")


@pytest.mark.parametrize("smtp", ["none", "refused"])
def test_without_mail_the_owner_gets_the_link_not_a_false_sent(
    database: Database, tmp_path: Path, smtp: str
) -> None:
    env = {} if smtp == "none" else {"TANDEM_SMTP_HOST": "127.0.0.1"}
    env |= {"TANDEM_SMTP_PORT": str(free_port())}  # nothing listens there
    srv = Server(data_dir=tmp_path, database_url=database.url, extra_env=env).start()
    try:
        srv.create_user("owner@vendor.example", "Olive Owner", PASSWORD)
        token = srv.create_token("owner@vendor.example")
        plan = srv.create_plan(token, "Rollout", "Acme")
        page = _invite_on_share_page(srv, plan)
        assert "Invitation sent." not in page
        assert "No email was sent to robin@customer.example" in page
        why = "no mail server set up" if smtp == "none" else "the mail server refused it"
        assert why in page
        link = re.search(r'id="unsent-invite".*?value="([^"]+/invite/[^"]+)"', page, re.S)
        assert link, page
        with api(srv, token) as owner:
            r = owner.post(
                f"/api/plans/{plan}/members",
                json={"email": "sam@customer.example", "role": "viewer", "side": "customer"},
            )
            assert r.status_code == 201 and r.json()["emailed"] is False
        with httpx.Client(base_url=srv.http) as robin:
            assert robin.get(path_of(link.group(1))).status_code == 200
    finally:
        srv.stop()
