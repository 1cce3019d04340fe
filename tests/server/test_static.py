"""Static files, pages and JSON go over the wire compressed; the build's content-hashed assets are
cached for a year, and a changed source gets a new name."""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
import websockets
from pycrdt import Doc, Provider

from tests.support.access import sign_in
from tests.support.servers import ROOT, Database, Server
from tests.support.yclient import WebsocketChannel, add_paragraph

DIST = ROOT / "web" / "dist"
IMMUTABLE = "public, max-age=31536000, immutable"


@pytest.fixture(scope="module")
def server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp(f"static-{backend}")
    db = Database(backend, tmp, at_head=True)
    srv = Server(data_dir=tmp, database_url=db.url)
    try:
        srv.start()
        srv.create_user("casey@vendor.example", "Casey CSM")
        yield srv
    finally:
        srv.stop()
        db.drop()


def raw_get(url: str, **headers: str) -> tuple[httpx.Response, bytes]:
    """The response and its body exactly as sent (httpx would otherwise decode gzip)."""
    with httpx.stream("GET", url, headers=headers, timeout=10) as r:
        return r, b"".join(r.iter_raw())


def editor_script(server: Server) -> str:
    token = server.create_token("casey@vendor.example")
    plan_id = server.create_plan(token)
    casey = sign_in(server, "casey@vendor.example")
    try:
        page = casey.client.get(f"/plans/{plan_id}")
    finally:
        casey.client.close()
    assert page.status_code == 200, page.text
    found = re.search(r'<script src="(/static/[^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def test_the_editor_bundle_has_a_hashed_name_compressed_and_cached_a_year(server: Server) -> None:
    url = editor_script(server)
    manifest = json.loads((DIST / "manifest.json").read_text())
    assert url == f"/static/{manifest['editor.js']}"
    plain = (DIST / manifest["editor.js"]).read_bytes()

    r, body = raw_get(server.http + url, **{"Accept-Encoding": "gzip"})
    assert r.status_code == 200
    assert r.headers["content-encoding"] == "gzip"
    assert r.headers["cache-control"] == IMMUTABLE
    assert r.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert "accept-encoding" in r.headers["vary"].lower()
    assert int(r.headers["content-length"]) == len(body) < len(plain) / 2
    assert gzip.decompress(body) == plain

    r, body = raw_get(server.http + url, **{"Accept-Encoding": "gzip, deflate, br"})
    assert r.headers["content-encoding"] == "br"
    assert body == (DIST / f"{manifest['editor.js']}.br").read_bytes() and len(body) < len(plain)

    # A client that takes no compression (or refuses it with q=0) gets the file as it is.
    for accept in ("identity", "gzip;q=0, br;q=0"):
        r, body = raw_get(server.http + url, **{"Accept-Encoding": accept})
        assert "content-encoding" not in r.headers
        assert int(r.headers["content-length"]) == len(body) and body == plain
        assert r.headers["cache-control"] == IMMUTABLE

    # Revalidation still works on the compressed answer.
    r, _ = raw_get(server.http + url, **{"Accept-Encoding": "gzip"})
    again, body = raw_get(
        server.http + url, **{"Accept-Encoding": "gzip", "If-None-Match": r.headers["etag"]}
    )
    assert again.status_code == 304 and body == b""
    assert again.headers["cache-control"] == IMMUTABLE


def test_stylesheets_are_hashed_and_an_unhashed_file_is_revalidated(server: Server) -> None:
    manifest = json.loads((DIST / "manifest.json").read_text())
    login = httpx.get(f"{server.http}/login")
    assert f'href="/static/{manifest["app.css"]}"' in login.text
    r, body = raw_get(f"{server.http}/static/{manifest['app.css']}", **{"Accept-Encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip" and r.headers["cache-control"] == IMMUTABLE
    assert gzip.decompress(body) == (DIST / manifest["app.css"]).read_bytes()
    # The manifest's own name never changes, so browsers must not keep it.
    r, _ = raw_get(f"{server.http}/static/manifest.json")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-cache"
    missing, _ = raw_get(f"{server.http}/static/editor.js")
    assert missing.status_code == 404


def test_pages_and_json_are_gzipped_for_clients_that_accept_it(server: Server) -> None:
    token = server.create_token("casey@vendor.example")
    for n in range(5):
        server.create_plan(token, title=f"Plan number {n} for the compression test")
    auth = {"Authorization": f"Bearer {token}"}

    r, body = raw_get(f"{server.http}/api/plans", **auth, **{"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
    assert r.headers["content-type"].startswith("application/json")
    assert int(r.headers["content-length"]) == len(body)
    assert len(json.loads(gzip.decompress(body))["plans"]) >= 5

    r, body = raw_get(f"{server.http}/api/plans", **auth, **{"Accept-Encoding": "identity"})
    assert "content-encoding" not in r.headers and len(json.loads(body)["plans"]) >= 5

    r, body = raw_get(f"{server.http}/login", **{"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
    assert b"<form" in gzip.decompress(body)
    # Pages still carry their own no-store and the security headers.
    assert r.headers["cache-control"] == "no-store"
    assert "content-security-policy" in r.headers


@pytest.mark.anyio
async def test_a_websocket_that_accepts_gzip_is_left_alone(server: Server) -> None:
    """Gzip is for HTTP bodies: a websocket whose handshake says Accept-Encoding: gzip syncs
    and sends edits as any other (the middleware must not wrap its frames)."""
    token = server.create_token("casey@vendor.example")
    plan_id = server.create_plan(token)
    url = f"{server.ws}/{plan_id}?token={token}"
    headers = {"Authorization": f"Bearer {token}", "Accept-Encoding": "gzip"}
    document = f"/api/plans/{plan_id}/document?format=markdown"
    async with (
        httpx.AsyncClient(base_url=server.http, headers=headers, timeout=10) as http,
        websockets.connect(url, additional_headers={"Accept-Encoding": "gzip"}) as ws,
        Provider(doc := Doc(), WebsocketChannel(ws, url)) as provider,
    ):
        with anyio.fail_after(15):
            await provider.synced.wait()
        add_paragraph(doc, "sent through a gzip-accepting socket")
        with anyio.fail_after(15):
            while "gzip-accepting" not in (await http.get(document)).text:
                await anyio.sleep(0.1)


def build(src: Path, out: Path) -> dict[str, str]:
    subprocess.run(
        ["node", "web/build.mjs", "--src", str(src), "--outdir", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=120,
    )
    return json.loads((out / "manifest.json").read_text())


def test_a_changed_source_gets_a_new_name_and_an_unchanged_one_keeps_its_name(
    tmp_path: Path,
) -> None:
    src = tmp_path / "src"
    shutil.copytree(ROOT / "web" / "src", src)
    before = build(src, tmp_path / "before")
    with (src / "app.css").open("a") as css:
        css.write("\n.compression-test { color: red; }\n")
    after = build(src, tmp_path / "after")

    assert set(before) == set(after) == {"app.css", "editor.css", "editor.js"}
    assert before["app.css"] != after["app.css"]
    assert before["editor.js"] == after["editor.js"]
    assert before["editor.css"] == after["editor.css"]
    for name in after.values():
        assert (tmp_path / "after" / name).is_file()
        assert (tmp_path / "after" / f"{name}.gz").is_file()
        assert (tmp_path / "after" / f"{name}.br").is_file()
