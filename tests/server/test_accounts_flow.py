"""The browser-side account flow over plain HTTP (no redirects followed), against a real server."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from pycrdt import Doc, create_sync_message
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect

from tests.support.servers import Database, Server

COOKIE = "tandem_session"
PASSWORD = "correct horse battery"
OWNER_EMAIL = "owner@vendor.example"

SCRIPT = "<script>alert(1)</script>"
ATTR_BREAK = '"><img src=x onerror=alert(1)>'
# A name that would end the editor page's JSON <script> element if embedded raw.
SCRIPT_BREAK = "</script><script>alert(2)</script>" + ATTR_BREAK


def browser(srv: Server, cookie: str | None = None) -> httpx.Client:
    cookies = {COOKIE: cookie} if cookie else None
    return httpx.Client(base_url=srv.http, follow_redirects=False, timeout=10, cookies=cookies)


@contextmanager
def signed_in(srv: Server, email: str = OWNER_EMAIL) -> Iterator[httpx.Client]:
    with browser(srv) as c:
        r = c.post("/login", data={"email": email, "password": PASSWORD})
        assert r.status_code == 303, r.text
        assert c.cookies.get(COOKIE)
        yield c


def csrf_of(page: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', page)
    assert m, "no csrf field on the page"
    return m.group(1)


def set_cookie_headers(r: httpx.Response) -> list[str]:
    return [h for h in r.headers.get_list("set-cookie") if h.startswith(f"{COOKIE}=")]


def user_count(srv: Server, email: str) -> bool:
    """Whether ``email`` has an account (``tokens list`` refuses unknown emails)."""
    return srv.cli("tokens", "list", email).returncode == 0


# First run


def test_fresh_server_sends_everyone_to_setup_and_bad_input_creates_nothing(server: Server) -> None:
    with browser(server) as c:
        for path in ("/", "/login", "/plans/whatever"):
            r = c.get(path)
            assert r.status_code == 303, path
            target = r.headers["location"]
            if path != "/login":  # sign-in first, which then sends on to setup
                assert target.startswith("/login")
                target = c.get(target).headers["location"]
            assert target == "/setup", path
        assert c.get("/setup").status_code == 200

        good = {
            "name": "Olive Owner",
            "email": OWNER_EMAIL,
            "password": PASSWORD,
            "confirm": PASSWORD,
        }
        bad_cases = [
            ({"name": "  "}, {"name"}),
            ({"name": "n" * 201}, {"name"}),
            ({"email": "not-an-email"}, {"email"}),
            ({"email": "a@" + "b" * 320}, {"email"}),
            ({"password": "short", "confirm": "short"}, {"password"}),
            ({"confirm": PASSWORD + "!"}, {"confirm"}),
            (
                {"name": "", "email": "", "password": "", "confirm": ""},
                {"name", "email", "password"},
            ),
        ]
        for change, fields in bad_cases:
            r = c.post("/setup", data={**good, **change})
            assert r.status_code == 400, change
            assert not set_cookie_headers(r)
            errors = re.findall(
                r'<label for="(\w+)">.*?</label>\s*<input[^>]*>\s*(<p class="field-error"[^>]*>)?',
                r.text,
                re.S,
            )
            assert {name for name, error in errors if error} == fields, change
            # What was typed is kept in the form, except passwords, which are never sent back.
            if "name" not in fields:
                assert 'value="Olive Owner"' in r.text
            if "email" not in fields:
                assert f'value="{OWNER_EMAIL}"' in r.text
            assert PASSWORD not in r.text
        # Nothing was created: still a fresh workspace.
        assert c.get(c.get("/").headers["location"]).headers["location"] == "/setup"
        assert not user_count(server, OWNER_EMAIL)


def test_setup_creates_the_owner_signs_in_and_closes(server: Server) -> None:
    with browser(server) as c:
        r = c.post(
            "/setup",
            data={
                "name": "Olive Owner",
                "email": f"  {OWNER_EMAIL.upper()} ",
                "password": PASSWORD,
                "confirm": PASSWORD,
            },
        )
        assert r.status_code == 303, r.text
        assert r.headers["location"] == "/"
        [header] = set_cookie_headers(r)
        attrs = {a.strip().split("=", 1)[0].lower() for a in header.split(";")[1:]}
        assert {"httponly", "samesite", "path"} <= attrs
        assert re.search(r";\s*samesite=lax", header, re.I)
        assert "secure" not in attrs  # TANDEM_SECURE_COOKIES is off by default (plain HTTP)

        page = c.get("/")
        assert page.status_code == 200
        assert "Olive Owner" in page.text

        # Setup is closed for good: a second "owner" is neither shown the form nor created.
        for r in (
            c.get("/setup"),
            c.post(
                "/setup",
                data={
                    "name": "Mallory",
                    "email": "m@evil.example",
                    "password": PASSWORD,
                    "confirm": PASSWORD,
                },
            ),
        ):
            # Signed in (as here) to the plans; signed out to the sign-in page.
            assert (r.status_code, r.headers["location"]) == (303, "/")
            assert not set_cookie_headers(r)
    with httpx.Client(base_url=server.http, follow_redirects=False) as anon:
        assert anon.get("/setup").headers["location"] == "/login"
    assert not user_count(server, "m@evil.example")
    # The email was normalised, and the password works for a fresh sign-in.
    with signed_in(server) as c:
        assert c.get("/").status_code == 200


# A set-up workspace, shared by the tests below (each signs in on its own).


@dataclass
class Site:
    server: Server
    owner_name: str
    plans: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="module")
def site(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp(f"flow-{backend}")
    db = Database(backend, tmp, at_head=True)
    srv = Server(data_dir=tmp, database_url=db.url)
    try:
        srv.start()
        with browser(srv) as c:
            data = {
                "name": SCRIPT_BREAK,
                "email": OWNER_EMAIL,
                "password": PASSWORD,
                "confirm": PASSWORD,
            }
            assert c.post("/setup", data=data).status_code == 303
        yield Site(srv, SCRIPT_BREAK)
    finally:
        srv.stop()
        db.drop()


def create_plan_via_form(c: httpx.Client, title: str, customer: str) -> str:
    csrf = csrf_of(c.get("/").text)
    r = c.post("/", data={"csrf": csrf, "title": title, "customer": customer})
    assert r.status_code == 303, r.text
    m = re.fullmatch(r"/plans/([A-Za-z0-9_-]+)", r.headers["location"])
    assert m, r.headers["location"]
    return m.group(1)


# Signing in and out


def test_wrong_password_is_a_401_page_without_a_cookie(site: Site) -> None:
    with browser(site.server) as c:
        wrong = c.post("/login", data={"email": OWNER_EMAIL, "password": PASSWORD + "x"})
        unknown = c.post("/login", data={"email": "nobody@vendor.example", "password": PASSWORD})
        for r in (wrong, unknown):
            assert r.status_code == 401
            assert not set_cookie_headers(r)
            assert 'role="alert"' in r.text and "do not match" in r.text
        # The same answer whether or not the account exists.
        assert wrong.text.replace(OWNER_EMAIL, "E") == unknown.text.replace(
            "nobody@vendor.example", "E"
        )
        assert not c.cookies.get(COOKIE)
        assert c.get("/").status_code == 303


def test_sign_in_is_case_insensitive_about_the_email(site: Site) -> None:
    with browser(site.server) as c:
        r = c.post("/login", data={"email": OWNER_EMAIL.upper(), "password": PASSWORD})
        assert r.status_code == 303
        assert c.get("/").status_code == 200


OFF_SITE = [
    "//evil.example",
    "//evil.example/plans",
    "https://evil.example/",
    "http:evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/\t/evil.example",
    "/%2F/evil.example",
    "javascript:alert(1)",
    " //evil.example",
]


def assert_on_site(srv: Server, location: str) -> None:
    """``location`` resolves to this server the way a browser resolves it (ignoring tabs and
    newlines anywhere in a URL, and treating backslashes as slashes)."""
    browser_view = re.sub(r"[\t\n\r]", "", location).replace("\\", "/")
    resolved = urlsplit(urljoin(srv.http + "/login", browser_view))
    assert (resolved.scheme, resolved.netloc) == ("http", urlsplit(srv.http).netloc), location


@pytest.mark.parametrize("target", OFF_SITE)
def test_next_cannot_leave_the_site(site: Site, target: str) -> None:
    with browser(site.server) as c:
        page = c.get("/login", params={"next": target})
        assert page.status_code == 200
        hidden = re.search(r'name="next" value="([^"]*)"', page.text)
        assert hidden
        assert_on_site(site.server, html.unescape(hidden.group(1)))
        r = c.post("/login", data={"email": OWNER_EMAIL, "password": PASSWORD, "next": target})
        assert r.status_code == 303
        assert_on_site(site.server, r.headers["location"])


def test_next_brings_you_back_to_the_page_you_asked_for(site: Site) -> None:
    with browser(site.server) as c:
        r = c.get("/plans/some-plan", params={"tab": "goals"})
        assert r.status_code == 303
        login = r.headers["location"]
        assert login == "/login?next=/plans/some-plan%3Ftab%3Dgoals"
        hidden = re.search(r'name="next" value="([^"]*)"', c.get(login).text)
        assert hidden and hidden.group(1) == "/plans/some-plan?tab=goals"
        r = c.post(
            "/login", data={"email": OWNER_EMAIL, "password": PASSWORD, "next": hidden.group(1)}
        )
        assert r.headers["location"] == "/plans/some-plan?tab=goals"


def first_frame(ws: ClientConnection) -> bytes | str:
    return ws.recv(timeout=10)


def close_code(ws: ClientConnection) -> int | None:
    """Read until the server closes; the close code it sent."""
    try:
        while True:
            ws.recv(timeout=10)
    except ConnectionClosed:
        pass
    return ws.close_code


def test_sign_out_revokes_the_session_and_closes_its_websockets(site: Site) -> None:
    with signed_in(site.server) as c:
        plan_id = create_plan_via_form(c, "Sign-out plan", "Acme")
        cookie = c.cookies.get(COOKIE)
        assert cookie
        headers = {"Cookie": f"{COOKIE}={cookie}"}
        url = f"{site.server.ws}/{plan_id}"
        with ws_connect(url, additional_headers=headers) as open_ws:
            first_frame(open_ws)  # the server's sync step 1: this connection is in the room
            open_ws.send(create_sync_message(Doc()))

            page = c.get("/")
            # Without the CSRF field, sign-out is refused and nothing changes.
            assert c.post("/logout", data={}).status_code == 403
            assert c.get("/").status_code == 200

            r = c.post("/logout", data={"csrf": csrf_of(page.text)})
            assert (r.status_code, r.headers["location"]) == (303, "/login")
            [deleted] = set_cookie_headers(r)
            assert re.search(r"max-age=0|expires=Thu, 01 Jan 1970", deleted, re.I)

            # The connection that was open when its session ended is closed as unauthorised.
            assert close_code(open_ws) == 4401

    # The old cookie, replayed, is worth nothing anywhere.
    with browser(site.server, cookie) as old:
        assert old.get("/").status_code == 303
        assert old.get(f"/plans/{plan_id}").status_code == 303
        assert old.get("/api/plans").status_code == 401
    with ws_connect(url, additional_headers=headers) as ws:
        assert close_code(ws) == 4401


# Plans through the form


def test_create_a_plan_through_the_form(site: Site) -> None:
    with signed_in(site.server) as c:
        plan_id = create_plan_via_form(c, "  Renewal plan  ", "Globex")
        page = c.get(f"/plans/{plan_id}")
        assert page.status_code == 200
        assert "Renewal plan" in page.text and "Globex" in page.text
        listing = c.get("/").text
        assert f'href="/plans/{plan_id}"' in listing

        csrf = csrf_of(listing)
        before = listing.count('href="/plans/')
        r = c.post("/", data={"csrf": csrf, "title": "", "customer": "x" * 201})
        assert r.status_code == 400
        assert "Enter a title." in r.text
        assert "Keep it to 200 characters: this one has 201." in r.text
        assert c.post("/", data={"title": "No CSRF", "customer": "Acme"}).status_code == 403
        assert (
            c.post(
                "/", data={"csrf": "0" * 64, "title": "Bad CSRF", "customer": "Acme"}
            ).status_code
            == 403
        )
        assert c.get("/").text.count('href="/plans/') == before
        assert c.get("/plans/no-such-plan").status_code == 404


# User text in pages


class PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.text: list[str] = []
        self._in_script: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._in_script = dict(attrs)
            self.scripts.append((self._in_script, ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = None

    def handle_data(self, data: str) -> None:
        if self._in_script is not None:
            attrs, body = self.scripts[-1]
            self.scripts[-1] = (attrs, body + data)
        else:
            self.text.append(data)


def parse(html: str) -> PageParser:
    p = PageParser()
    p.feed(html)
    p.close()
    return p


def assert_inert(page: PageParser) -> None:
    """No markup came from user text: no images, no event handlers, no inline scripts."""
    assert not [t for t, _ in page.tags if t == "img"]
    assert not [(t, a) for t, attrs in page.tags for a in attrs if a.lower().startswith("on")]
    for attrs, body in page.scripts:
        assert attrs.get("src") or attrs.get("type") == "application/json", (attrs, body)


def attr_values(page: PageParser) -> set[str]:
    return {v for _, attrs in page.tags for v in attrs.values() if v is not None}


def test_user_text_is_escaped_in_the_plan_list_and_editor(site: Site) -> None:
    with signed_in(site.server) as c:
        plan_id = create_plan_via_form(c, SCRIPT + ATTR_BREAK, ATTR_BREAK + SCRIPT)
        cookie = c.cookies.get(COOKIE)
        url = f"{site.server.ws}/{plan_id}"
        # Someone in the plan, so the list shows their name too.
        with ws_connect(url, additional_headers={"Cookie": f"{COOKIE}={cookie}"}) as ws:
            first_frame(ws)
            listing = parse(c.get("/").text)
        assert_inert(listing)
        assert not listing.scripts
        text = "".join(listing.text)
        # Shown literally, as text: the title, the customer and the signed-in owner's name.
        assert SCRIPT + ATTR_BREAK in text and ATTR_BREAK + SCRIPT in text
        assert site.owner_name in text
        assert site.owner_name in attr_values(listing)  # the presence dot's tooltip

        editor_html = c.get(f"/plans/{plan_id}").text
        editor = parse(editor_html)
        assert_inert(editor)
        assert SCRIPT + ATTR_BREAK in "".join(editor.text)
        # The title's tooltip names the plan and its customer, each whole inside the attribute.
        assert f"{SCRIPT + ATTR_BREAK} · {ATTR_BREAK + SCRIPT}" in attr_values(editor)
        assert ATTR_BREAK + SCRIPT in "".join(editor.text)

        # Exactly the page's own two scripts; the JSON config is whole and carries the name.
        [(config_attrs, config_body), (code_attrs, _)] = editor.scripts
        assert config_attrs == {"id": "tandem-config", "type": "application/json"}
        assert re.fullmatch(r"/static/editor-[A-Z0-9]+\.js", str(code_attrs.get("src", "")))
        config: dict[str, Any] = json.loads(config_body)
        assert config["planId"] == plan_id
        assert config["user"]["name"] == site.owner_name
        assert "</script" not in config_body.lower() and "<" not in config_body
