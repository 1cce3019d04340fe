"""Requests the server makes to addresses plan owners give it (Slack webhooks): the guard that
keeps a plan owner from making the server call into its own network.

A URL must be ``https``; its host is resolved and every address it resolves to must be a
public one: loopback, private, link-local, multicast, reserved, unspecified and shared
addresses are refused, in IPv4 and IPv6 alike, and IPv6 addresses that carry an IPv4 one
(mapped, compatible, 6to4, NAT64, Teredo) are judged by what they carry. A host listed in
``TANDEM_WEBHOOK_ALLOW_HOSTS`` (tests, an internal relay) may be any address, over http too.

The same check runs when the URL is saved and again at every send, and the request goes to
the address that was checked (no second lookup a rebinding DNS server could answer
differently), follows no redirect, times out quickly and reads a bounded answer.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolve = Callable[[str, int], list[str]]

MAX_URL = 500
TIMEOUT = 5.0
MAX_ANSWER = 64 * 1024

# Ranges ``ipaddress`` (as of Python 3.11) calls global but no webhook lives in.
_NOT_PUBLIC_V4 = [
    ipaddress.ip_network(n)
    for n in ("192.0.0.0/24", "100.64.0.0/10", "198.18.0.0/15", "0.0.0.0/8", "240.0.0.0/4")
]
_NAT64 = [ipaddress.ip_network(n) for n in ("64:ff9b::/96", "64:ff9b:1::/48")]
_V4_COMPATIBLE = ipaddress.ip_network("::/96")


class Refused(ValueError):
    """An outgoing URL the server will not call; the message says why, for the person who
    gave it."""


def refusal(ip: IP) -> str | None:
    """Why the server may not call ``ip`` ("a loopback address", ...), or None if it is a
    public address."""
    if isinstance(ip, ipaddress.IPv6Address):
        carried: ipaddress.IPv4Address | None = ip.ipv4_mapped or ip.sixtofour
        if carried is None and any(ip in n for n in _NAT64):
            carried = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if carried is not None:
            why = refusal(carried)
            return None if why is None else f"{why} (inside an IPv6 address)"
        if ip.teredo is not None:
            return "a Teredo tunnel address"
        if ip in _V4_COMPATIBLE and not ip.is_unspecified and not ip.is_loopback:
            return "a reserved address"
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_private:
        return "a private address"
    if ip.is_reserved:
        return "a reserved address"
    if isinstance(ip, ipaddress.IPv4Address) and any(ip in n for n in _NOT_PUBLIC_V4):
        return "a private address"
    if not ip.is_global:
        return "not a public address"
    return None


def allow_hosts(text: str) -> frozenset[str]:
    """``TANDEM_WEBHOOK_ALLOW_HOSTS``: host names or addresses, comma-separated."""
    return frozenset(h.strip().lower().strip("[]") for h in text.split(",") if h.strip())


def system_resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (``address``) and what to ask for."""

    scheme: str
    host: str
    port: int
    path: str
    address: str


def check(url: object, allowed: Iterable[str] = (), resolve: Resolve = system_resolve) -> Target:
    """The target ``url`` names, if the server may call it; raises ``Refused`` otherwise."""
    if not isinstance(url, str) or not url.strip():
        raise Refused("Paste the webhook URL: it must be a URL (https://...)")
    url = url.strip()
    if len(url) > MAX_URL:
        raise Refused(f"The webhook URL is longer than {MAX_URL} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise Refused("The webhook URL is not a valid URL") from None
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        raise Refused("The webhook URL must be an https:// URL")
    if parts.username is not None or parts.password is not None:
        raise Refused("The webhook URL must not carry a user name or password")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise Refused("The webhook URL must not contain spaces or control characters")
    listed = host in set(allowed)
    if parts.scheme != "https" and not listed:
        raise Refused("The webhook URL must use https")
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError):
        raise Refused(f"The webhook's host {host} could not be resolved") from None
    checked: list[IP] = []
    for a in addresses:
        try:
            checked.append(ipaddress.ip_address(a.split("%", 1)[0]))
        except ValueError:
            continue
    if not checked:
        raise Refused(f"The webhook's host {host} could not be resolved")
    if not listed:
        for ip in checked:
            why = refusal(ip)
            if why is not None:
                raise Refused(
                    f"The webhook's host {host} resolves to {ip}, {why}; the server does not "
                    "call into private networks"
                )
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, host, port, path, str(checked[0]))


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = target.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """TLS to the checked address, the certificate checked against the URL's host name."""

    def __init__(self, target: Target, timeout: float) -> None:
        self._tls = ssl.create_default_context()
        super().__init__(target.host, target.port, timeout=timeout, context=self._tls)
        self._address = target.address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes


def post_json(
    url: str,
    body: Any,
    *,
    allowed: Iterable[str] = (),
    resolve: Resolve = system_resolve,
    timeout: float = TIMEOUT,
    limit: int = MAX_ANSWER,
) -> Answer:
    """POST ``body`` as JSON to ``url``, checked again now; the answer's first ``limit``
    bytes. A redirect is an answer like any other, never followed."""
    target = check(url, allowed, resolve)
    cls = _PinnedHTTPS if target.scheme == "https" else _PinnedHTTP
    conn = cls(target, timeout)
    try:
        conn.request(
            "POST",
            target.path,
            body=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "User-Agent": "Tandem"},
        )
        response = conn.getresponse()
        return Answer(response.status, response.read(limit))
    finally:
        conn.close()
