"""SMTP with STARTTLS and login, against a real aiosmtpd server that requires both, with a
certificate from a private authority made for this test (openssl). The server trusts that
authority only through TANDEM_SMTP_CA_FILE: without it the certificate is refused, never
skipped. A wrong password keeps the notification queued with the error recorded."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.server.test_notifications import JORDAN, Inbox, Plan, mail_server, poll
from tests.support.servers import Database, free_port

USER, PASSWORD = "tandem", "s3cret-pass"


def openssl(*args: str, cwd: Path) -> None:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private certificate authority and a server certificate it signed for 127.0.0.1."""
    d = tmp_path_factory.mktemp("certs")
    (d / "ext.cnf").write_text(
        "basicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=IP:127.0.0.1\n"
    )
    ca = "-x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2"
    openssl("req", *ca.split(), "-subj", "/CN=Tandem test CA", cwd=d)
    csr = "-newkey rsa:2048 -nodes -keyout server.key -out server.csr"
    openssl("req", *csr.split(), "-subj", "/CN=127.0.0.1", cwd=d)
    sign = "-req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem"
    openssl("x509", *sign.split(), "-days", "2", "-extfile", "ext.cnf", cwd=d)
    return d


class Authenticator:
    def __init__(self) -> None:
        self.results: list[tuple[str, bool, bool]] = []  # mechanism, success, over TLS

    def __call__(self, server, session, envelope, mechanism, auth_data):  # noqa: ANN001, ANN204
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            USER.encode(),
            PASSWORD.encode(),
        )
        self.results.append((mechanism, ok, session.ssl is not None))
        # handled=False: aiosmtpd answers a failure with 535 itself (True: we would have to).
        return AuthResult(success=ok, handled=False)


@pytest.fixture
def tls_smtp(certs: Path) -> Iterator[tuple[Inbox, Authenticator, int]]:
    box, auth = Inbox(), Authenticator()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certs / "server.pem", certs / "server.key")
    port = free_port()
    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        authenticator=auth,
        auth_required=True,  # and, by default, only after STARTTLS
    )
    controller.start()
    yield box, auth, port
    controller.stop()


@pytest.fixture(autouse=True)
def close_clients() -> Iterator[None]:
    yield
    while Plan.clients:
        Plan.clients.pop().close()


def tls_env(certs: Path, password: str, *, trust: bool = True) -> dict[str, str]:
    env = {
        "TANDEM_SMTP_STARTTLS": "true",
        "TANDEM_SMTP_USER": USER,
        "TANDEM_SMTP_PASSWORD": password,
        # One failed attempt is enough to see; no retry inside the test.
        "TANDEM_NOTIFY_RETRY_SECONDS": "3600",
    }
    if trust:
        env["TANDEM_SMTP_CA_FILE"] = str(certs / "ca.pem")
    return env


def test_starttls_and_login_deliver(
    database: Database, tmp_path: Path, certs: Path, tls_smtp: tuple[Inbox, Authenticator, int]
) -> None:
    box, auth, port = tls_smtp
    srv = mail_server(tmp_path, database, port, **tls_env(certs, PASSWORD)).start()
    try:
        plan = Plan(srv)
        plan.assign_to_jordan(plan.tasks()[4]["id"])
        (message,) = box.wait(JORDAN)
        assert message["Subject"]
        assert auth.results and all(ok and tls for _m, ok, tls in auth.results)
        poll(lambda: [n for n in plan.notifications() if n["state"] == "sent"])
    finally:
        srv.stop()


def test_a_wrong_password_keeps_the_message_queued_with_its_error(
    database: Database, tmp_path: Path, certs: Path, tls_smtp: tuple[Inbox, Authenticator, int]
) -> None:
    box, auth, port = tls_smtp
    srv = mail_server(tmp_path, database, port, **tls_env(certs, "wrong")).start()
    try:
        plan = Plan(srv)
        plan.assign_to_jordan(plan.tasks()[4]["id"])
        (n,) = poll(lambda: [n for n in plan.notifications() if n["last_error"]])
        assert n["state"] == "queued" and n["attempts"] == 1
        assert "SMTPAuthenticationError" in n["last_error"], n["last_error"]
        assert PASSWORD not in n["last_error"] and "wrong" not in n["last_error"]
        assert auth.results and not any(ok for _m, ok, _tls in auth.results)
        assert all(tls for _m, _ok, tls in auth.results)  # the password only went over TLS
        assert box.messages == []
    finally:
        srv.stop()


def test_a_certificate_nobody_trusts_is_refused_not_skipped(
    database: Database, tmp_path: Path, certs: Path, tls_smtp: tuple[Inbox, Authenticator, int]
) -> None:
    box, auth, port = tls_smtp
    env = tls_env(certs, PASSWORD, trust=False)
    srv = mail_server(tmp_path, database, port, **env).start()
    try:
        plan = Plan(srv)
        plan.assign_to_jordan(plan.tasks()[4]["id"])
        (n,) = poll(lambda: [n for n in plan.notifications() if n["last_error"]])
        assert n["state"] == "queued"
        assert "CERTIFICATE_VERIFY_FAILED" in n["last_error"], n["last_error"]
        assert auth.results == [] and box.messages == []  # no password was sent
    finally:
        srv.stop()
