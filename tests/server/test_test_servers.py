"""The test server helper itself: a test talks to the server it started, never another."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.support.servers import Database, Server, free_port


class _Impostor(BaseHTTPRequestHandler):
    """Answers every GET 200 and every POST 401, as another test's Tandem would."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def do_POST(self) -> None:
        self.send_response(401)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def impostor() -> Iterator[int]:
    srv = ThreadingHTTPServer(("127.0.0.1", free_port()), _Impostor)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv.server_address[1]
    finally:
        srv.shutdown()
        srv.server_close()


def test_a_port_taken_before_the_server_binds_it_is_left_for_another(
    database: Database, tmp_path: Path, impostor: int
) -> None:
    # As in CI once: the free port went to another test's server between free_port() and the
    # bind, that server answered the health check, and the test's requests went to it.
    srv = Server(data_dir=tmp_path, database_url=database.url, port=impostor)
    srv.start()
    try:
        assert srv.port != impostor
        assert "address already in use" in (tmp_path / f"server-{impostor}.log").read_text()
        srv.create_user("casey@vendor.example", "Casey Vendor")
        token = srv.create_token("casey@vendor.example")
        assert srv.create_plan(token)
        # Restarted, it keeps its new port.
        port = srv.port
        srv.stop()
        srv.start()
        assert srv.port == port
        assert httpx.get(f"{srv.http}/healthz").status_code == 200
    finally:
        srv.stop()
