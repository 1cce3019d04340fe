"""The outgoing-request guard: which addresses a webhook may resolve to, which URLs are refused,
and that a send connects to the address that was checked and follows no redirect."""

from __future__ import annotations

import http.server
import ipaddress
import threading
from collections.abc import Iterator

import pytest

from server.notify.outgoing import Refused, allow_hosts, check, post_json, refusal

REFUSED = {
    # IPv4
    "127.0.0.1": "loopback",
    "127.255.0.9": "loopback",
    "10.1.2.3": "private",
    "172.16.0.1": "private",
    "172.31.255.255": "private",
    "192.168.1.1": "private",
    "169.254.169.254": "link-local",  # cloud metadata
    "224.0.0.1": "multicast",
    "239.255.255.250": "multicast",
    "0.0.0.0": "unspecified",
    "0.1.2.3": "private",
    "100.64.0.1": "",  # shared address space (carrier-grade NAT)
    "192.0.0.8": "",
    "192.0.2.1": "private",  # documentation
    "198.18.0.1": "private",  # benchmarking
    "240.0.0.1": "",
    "255.255.255.255": "",
    # IPv6
    "::1": "loopback",
    "::": "unspecified",
    "fe80::1": "link-local",
    "fc00::1": "private",
    "fd12:3456::1": "private",
    "ff02::1": "multicast",
    "ff0e::1": "multicast",
    "2001:db8::1": "private",  # documentation
    "::ffff:127.0.0.1": "loopback address (inside an IPv6 address)",
    "::ffff:10.0.0.1": "private address (inside an IPv6 address)",
    "::ffff:169.254.169.254": "link-local address (inside an IPv6 address)",
    "::ffff:0.0.0.0": "unspecified address (inside an IPv6 address)",
    "::127.0.0.1": "reserved",  # IPv4-compatible (deprecated)
    "2002:7f00:1::1": "loopback address (inside an IPv6 address)",  # 6to4 of 127.0.0.1
    "2002:a00:1::1": "private address (inside an IPv6 address)",  # 6to4 of 10.0.0.1
    "64:ff9b::7f00:1": "loopback address (inside an IPv6 address)",  # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe": "link-local address (inside an IPv6 address)",
    "2001::1": "",  # Teredo
}
PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "52.1.2.3",
    "2606:4700:4700::1111",
    "2a00:1450:4001::200e",
    "::ffff:8.8.8.8",
    "2002:808:808::1",  # 6to4 of 8.8.8.8
    "64:ff9b::808:808",  # NAT64 of 8.8.8.8
]


@pytest.mark.parametrize("address", sorted(REFUSED))
def test_addresses_refused(address: str) -> None:
    why = refusal(ipaddress.ip_address(address))
    assert why is not None, address
    assert REFUSED[address] in why


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_allowed(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


def resolver(*addresses: str):  # type: ignore[no-untyped-def]  # a function with an attribute
    seen: list[tuple[str, int]] = []

    def resolve(host: str, port: int) -> list[str]:
        seen.append((host, port))
        return list(addresses)

    resolve.seen = seen  # type: ignore[attr-defined]  # for the test to read
    return resolve


def test_https_to_a_public_host_is_checked_and_pinned() -> None:
    target = check("https://hooks.slack.com/services/T/B/x?y=1", (), resolver("52.1.2.3"))
    assert (target.scheme, target.host, target.port, target.address) == (
        "https",
        "hooks.slack.com",
        443,
        "52.1.2.3",
    )
    assert target.path == "/services/T/B/x?y=1"


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://hooks.slack.com/services/x", "must use https"),
        ("ftp://hooks.slack.com/x", "https"),
        ("hooks.slack.com/services/x", "https"),
        ("", "must be a URL"),
        ("https://", "https"),
        ("https://user:pw@hooks.slack.com/x", "user name or password"),
        ("https://hooks.slack.com:99999/x", "not a valid URL"),
        ("https://hooks.slack.com/" + "x" * 600, "longer than"),
        ("https://hooks.slack.com/a b", "spaces"),
    ],
)
def test_malformed_urls_refused(url: str, words: str) -> None:
    with pytest.raises(Refused, match=words):
        check(url, (), resolver("52.1.2.3"))


def test_not_a_string_refused() -> None:
    with pytest.raises(Refused, match="must be a URL"):
        check(None, (), resolver("52.1.2.3"))


def test_a_host_resolving_to_any_private_address_is_refused() -> None:
    # One public and one private answer (DNS round robin): refused, whichever comes first.
    with pytest.raises(Refused, match="10.0.0.5, a private address"):
        check("https://relay.example/x", (), resolver("52.1.2.3", "10.0.0.5"))
    with pytest.raises(Refused, match="loopback"):
        check("https://127.0.0.1/x", (), resolver("127.0.0.1"))
    with pytest.raises(Refused, match="loopback"):
        check("https://[::ffff:127.0.0.1]/x", (), resolver("::ffff:127.0.0.1"))


def test_unresolvable_host_refused() -> None:
    def fail(host: str, port: int) -> list[str]:
        raise OSError("no such host")

    with pytest.raises(Refused, match="could not be resolved"):
        check("https://nowhere.invalid/x", (), fail)


def test_listed_hosts_may_be_private_and_plain_http() -> None:
    listed = allow_hosts(" 127.0.0.1 , Relay.Internal,")
    assert listed == {"127.0.0.1", "relay.internal"}
    target = check("http://127.0.0.1:8123/hook", listed, resolver("127.0.0.1"))
    assert (target.scheme, target.port, target.address) == ("http", 8123, "127.0.0.1")
    assert check("https://relay.internal/x", listed, resolver("10.0.0.7")).address == "10.0.0.7"
    # Listing one host opens no other.
    with pytest.raises(Refused, match="https"):
        check("http://localhost:8123/hook", listed, resolver("127.0.0.1"))
    with pytest.raises(Refused, match="loopback"):
        check("https://localhost:8123/hook", listed, resolver("127.0.0.1"))


class _Hook(http.server.BaseHTTPRequestHandler):
    received: list[tuple[str, str, bytes]] = []

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append((self.path, self.headers["Host"], body))
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.1:1/elsewhere")
            self.end_headers()
            return
        answer = b"x" * 100_000 if self.path == "/big" else b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[int]:
    _Hook.received = []
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def test_send_connects_to_the_checked_address(hook: int) -> None:
    # The name resolves (once, at the check) to the receiver's address; the request goes
    # there and still names the host it was given.
    resolve = resolver("127.0.0.1")
    answer = post_json(
        f"http://hooks.test:{hook}/in?q=1", {"text": "hi"}, allowed={"hooks.test"}, resolve=resolve
    )
    assert answer == type(answer)(200, b"ok")
    assert resolve.seen == [("hooks.test", hook)]  # type: ignore[attr-defined]  # set above
    assert _Hook.received == [("/in?q=1", f"hooks.test:{hook}", b'{"text": "hi"}')]


def test_send_follows_no_redirect_and_reads_a_bounded_answer(hook: int) -> None:
    listed = {"127.0.0.1"}
    moved = post_json(f"http://127.0.0.1:{hook}/redirect", {}, allowed=listed)
    assert moved.status == 302
    assert [p for p, _, _ in _Hook.received] == ["/redirect"]
    big = post_json(f"http://127.0.0.1:{hook}/big", {}, allowed=listed, limit=1000)
    assert big.status == 200 and len(big.body) == 1000


def test_send_checks_again(hook: int) -> None:
    # Not listed at send time (the setting changed since it was saved): refused, not sent.
    with pytest.raises(Refused, match="https"):
        post_json(f"http://127.0.0.1:{hook}/in", {})
    assert _Hook.received == []
