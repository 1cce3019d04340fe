"""Several server processes behind a load balancer, one plan across them (issue 14).

Real parts only: three `tandem serve` processes on one PostgreSQL database, a private Redis
they share (TANDEM_REDIS_URL), Debian's HAProxy in front running docs/haproxy.cfg, and stock
y-websocket clients from npm (tests/js/cluster_clients.mjs) connecting through it. PostgreSQL
only: several processes need one shared database, and SQLite is refused with Redis.

Each client types paragraphs with a mark of its own (``m<client>.<seq>``) and remembers every
mark it has ever seen; "no edit lost, none doubled" is checked on the final text, where every
mark any client saw must stand exactly once.
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.access import create_link, invite_and_join
from tests.support.cluster import (
    HAPROXY,
    HAPROXY_CONFIG,
    Cluster,
    NodeClients,
    cluster,
    node_clients,
    render_config,
    wait_for,
)
from tests.support.servers import ROOT, Database, free_port


@pytest.fixture
def pg(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if "postgresql" not in request.config.getoption("--backends").split(","):
        pytest.skip("several processes need PostgreSQL (run with --backends postgresql)")
    db = Database("postgresql", tmp_path, at_head=True)
    yield db
    db.drop()


@pytest.fixture
def cl(pg: Database, tmp_path: Path) -> Iterator[Cluster]:
    with cluster(tmp_path / "cluster", pg.url) as c:
        try:
            yield c
        finally:
            # Shown by pytest only when the test failed.
            print(tail(c.logs()))


def tail(text: str, lines: int = 300) -> str:
    return "\n".join(text.splitlines()[-lines:])


@pytest.fixture
def owner(cl: Cluster) -> str:
    srv = cl.servers[0]
    srv.create_user("owner@vendor.example", "Olive Owner")
    return srv.create_token("owner@vendor.example")


def api(cl: Cluster, token: str) -> httpx.Client:
    """An API client through the load balancer."""
    return httpx.Client(base_url=cl.http, headers={"Authorization": f"Bearer {token}"}, timeout=30)


@pytest.fixture
def plan(cl: Cluster, owner: str) -> str:
    with api(cl, owner) as c:
        r = c.post("/api/plans", json={"title": "Joint success plan", "customer": "Acme"})
        assert r.status_code == 201, r.text
        return str(r.json()["id"])


@pytest.fixture
def clients(cl: Cluster, plan: str, tmp_path: Path) -> Iterator[NodeClients]:
    with node_clients(cl.ws, plan, tmp_path / "node-clients.log") as nc:
        yield nc


def member(cl: Cluster, owner: str, plan: str, email: str, name: str, side: str) -> str:
    """Someone invited into the plan as an editor, with an API token of their own."""
    srv = cl.servers[0]
    with api(cl, owner) as c:
        # The invitation's own page is on whichever process the proxy picks: any will do.
        invite_and_join(srv, c, plan, email, name, "editor", side)
    return srv.create_token(email)


def final_marks(nc: NodeClients, client: int) -> Counter[str]:
    counts = nc.call("marks", client=client)["counts"]
    return Counter({m: n for m, n in counts.items() if m.startswith("m")})


def assert_all_once(nc: NodeClients, client: int) -> set[str]:
    """Every mark any client ever saw stands in ``client``'s text, each exactly once."""
    seen = set(nc.call("everSeen")["marks"])
    final = final_marks(nc, client)
    doubled = {m: n for m, n in final.items() if n > 1}
    assert not doubled, f"marks twice in the text: {doubled}"
    missing = seen - set(final)
    assert not missing, f"{len(missing)} marks seen but lost: {sorted(missing)[:20]}"
    return seen


def fresh_look(cl: Cluster, nc: NodeClients, token: str, *, on_each: bool) -> None:
    """A newcomer through the proxy (and, with ``on_each``, one straight to every live
    process) sees every mark, once."""
    newcomers = nc.open([token])
    if on_each:
        for i in cl.alive():
            newcomers += nc.open([token], url=cl.servers[i].ws)
    nc.synced(newcomers)
    seen = set(nc.call("everSeen")["marks"])
    for n in newcomers:
        nc.call("waitMarks", clients=[n], marks=sorted(seen))
        assert_all_once(nc, n)


def sent_total(nc: NodeClients) -> int:
    return sum(int(c["sent"]) for c in nc.state())


def spread(servers: dict[int, str]) -> Counter[str]:
    return Counter(servers.values())


def worker_holder(cl: Cluster) -> int | None:
    """The process whose worker holds the worker lease now (its row in PostgreSQL names the
    serving process: ``host:pid:serve``), or None while nobody holds it."""
    import psycopg

    with psycopg.connect(cl.database_url) as conn:
        row = conn.execute(
            "SELECT holder FROM notification_leases WHERE name = 'worker' AND expires_at > now()"
        ).fetchone()
    if row is None:
        return None
    pid = int(row[0].split(":")[1])
    for i in cl.alive():
        proc = cl.servers[i].proc
        if proc is not None and proc.pid == pid:
            return i
    return None


def audit(cl: Cluster, token: str, plan: str) -> list[dict[str, Any]]:
    with api(cl, token) as c:
        r = c.get(f"/api/plans/{plan}/audit", params={"limit": 1000})
        assert r.status_code == 200, r.text
        return list(r.json()["events"])


# The tests.


def test_the_readme_quotes_the_haproxy_config_the_tests_run(tmp_path: Path) -> None:
    """One file, docs/haproxy.cfg: the README shows it whole, and as the tests render it
    (their ports, socket and servers) it passes HAProxy's own check."""
    readme = (ROOT / "README.md").read_text()
    quoted = re.search(r"```haproxy\n(.*?)```", readme, re.S)
    assert quoted, "the README has no ```haproxy block"
    assert quoted.group(1) == HAPROXY_CONFIG.read_text()
    path = tmp_path / "haproxy.cfg"
    path.write_text(
        render_config(
            HAPROXY_CONFIG.read_text(),
            port=free_port(),
            socket_path=tmp_path / "haproxy.sock",
            servers=[("tandem1", free_port()), ("tandem2", free_port())],
        )
    )
    checked = subprocess.run([HAPROXY, "-c", "-f", str(path)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_clients_spread_over_three_processes_converge(
    cl: Cluster, owner: str, clients: NodeClients
) -> None:
    ids = clients.open([owner] * 6)
    servers = clients.synced(ids)
    # HAProxy spread them: every process has some, and says so in its own /metrics.
    assert set(servers.values()) == {"tandem1", "tandem2", "tandem3"}, servers
    on = spread(servers)
    wait_for(
        lambda: all(cl.connections()[cl.index(n)] >= k for n, k in on.items()),
        f"each process's /metrics to count its sockets ({on})",
    )
    clients.call("type", count=5)
    assert clients.call("converge")["marks"] == 30
    for i in ids:
        assert_all_once(clients, i)
    fresh_look(cl, clients, owner, on_each=True)


def test_presence_revocation_and_removal_cross_processes(
    cl: Cluster, owner: str, plan: str, clients: NodeClients
) -> None:
    vera = member(cl, owner, plan, "vera@vendor.example", "Vera Vendor", "vendor")
    cora = member(cl, owner, plan, "cora@customer.example", "Cora Customer", "customer")
    rex = member(cl, owner, plan, "rex@customer.example", "Rex Removed", "customer")
    with api(cl, owner) as c:
        link = create_link(c, plan, role="editor", label="Working group")
    # Straight to the processes, so that each crossing is certain: Vera on the first, Cora on
    # the second; Rex and the link on every one.
    ws = [srv.ws for srv in cl.servers]
    (v,) = clients.open([vera], url=ws[0])
    (c_,) = clients.open([cora], url=ws[1])
    rexes = [clients.open([rex], url=url)[0] for url in ws]
    links = [clients.open([link["token"]], url=url)[0] for url in ws]
    clients.synced()
    clients.call("user", client=v, user={"name": "anything", "color": "#f00"})
    clients.call("user", client=c_, user={"name": "anything", "color": "#0f0"})
    # Presence carries the server-known name, from one process to the other.
    clients.call("waitPresence", client=c_, name="Vera Vendor")
    clients.call("waitPresence", client=v, name="Cora Customer")
    clients.call("waitPresence", client=links[2], name="Vera Vendor")

    with api(cl, owner) as c:
        r = c.delete(f"/api/plans/{plan}/links/{link['id']}")
        assert r.status_code == 204, r.text
        for i in links:
            clients.call("waitClose", client=i, codes=[4403])
        members = c.get(f"/api/plans/{plan}/members").json()["members"]
        rex_id = next(m["user_id"] for m in members if m["email"] == "rex@customer.example")
        r = c.delete(f"/api/plans/{plan}/members/{rex_id}")
        assert r.status_code == 204, r.text
        for i in rexes:
            clients.call("waitClose", client=i, codes=[4403])
    # Cut off: what the others type now reaches them, not Rex nor the link.
    done = clients.call("type", count=1, clients=[v, c_])
    assert done == {}
    clients.call("waitMarks", clients=[v, c_], marks=[f"m{v}.0", f"m{c_}.0"])
    for i in rexes + links:
        assert not set(final_marks(clients, i)) & {f"m{v}.0", f"m{c_}.0"}, i
    # When Vera leaves, Cora's process hears of it.
    clients.call("destroy", clients=[v])
    clients.call("waitAbsent", client=c_, name="Vera Vendor")


def test_redis_restarted_mid_editing_loses_nothing(
    cl: Cluster, owner: str, clients: NodeClients
) -> None:
    ids = clients.open([owner] * 6)
    servers = clients.synced(ids)
    assert len(set(servers.values())) >= 2, servers
    clients.call("start", rate=5)
    sent = wait_for(lambda: sent_total(clients) >= 30 and sent_total(clients), "edits")
    cl.redis.stop()
    # Every process notices (its /readyz fails, and HAProxy sees it), while the editing goes on.
    for i in range(cl.size):
        cl.proxy.wait_status(cl.name(i), up=False)
    wait_for(lambda: sent_total(clients) >= sent + 60, "edits while Redis is down")
    cl.redis.start()
    for i in range(cl.size):
        cl.proxy.wait_status(cl.name(i), up=True)
    sent = sent_total(clients)
    wait_for(lambda: sent_total(clients) >= sent + 30, "edits after the restart")
    clients.call("stop")
    clients.call("converge", timeout=120)
    for i in ids:
        assert_all_once(clients, i)
    fresh_look(cl, clients, owner, on_each=True)


def test_sigkill_under_load_loses_and_doubles_nothing(
    cl: Cluster, owner: str, plan: str, clients: NodeClients
) -> None:
    ids = clients.open([owner] * 9)
    servers = clients.synced(ids)
    assert set(servers.values()) == {"tandem1", "tandem2", "tandem3"}, servers
    # The worker's process is the one killed, when one says it holds the lease.
    holder = wait_for(lambda: worker_holder(cl) is not None and [worker_holder(cl)], "a lease")[0]
    victim = cl.name(holder)
    clients.call("task", count=2)
    clients.call("start", rate=5)
    wait_for(lambda: sent_total(clients) >= 60, "edits before the kill")
    cl.kill(holder)
    orphans = [i for i, name in servers.items() if name == victim]
    moved = clients.call("waitServerChange", clients=orphans, **{"from": servers}, timeout=60)
    assert victim not in moved["servers"].values()
    # Another process's worker takes the lease over once the dead one's lapses.
    new_holder = wait_for(
        lambda: (h := worker_holder(cl)) is not None and h != holder and [h], "the lease to move"
    )[0]
    assert new_holder in cl.alive()
    sent = sent_total(clients)
    wait_for(lambda: sent_total(clients) >= sent + 60, "edits after the kill")
    clients.call("task", count=1)
    clients.call("stop")
    clients.call("converge", timeout=120)
    for i in ids:
        assert_all_once(clients, i)
    # The killed process, started again, serves all of it too.
    cl.restart(holder)
    fresh_look(cl, clients, owner, on_each=True)
    # The audit trail holds each task's creation once.
    tasks = {f"t{i}.{k}" for i in ids for k in range(3)}

    def created() -> Counter[str]:
        return Counter(e["new"]["text"] for e in audit(cl, owner, plan) if e["kind"] == "created")

    wait_for(lambda: set(created()) >= tasks, "every task in the commitment history", 60)
    doubled = {t: n for t, n in created().items() if n > 1}
    assert not doubled, f"created twice in the commitment history: {doubled}"


def test_sigterm_drains_with_1012_and_clients_move(
    cl: Cluster, owner: str, clients: NodeClients
) -> None:
    ids = clients.open([owner] * 6)
    servers = clients.synced(ids)
    assert set(servers.values()) == {"tandem1", "tandem2", "tandem3"}, servers
    clients.call("start", rate=5)
    wait_for(lambda: sent_total(clients) >= 30, "edits before the drain")
    code = cl.sigterm(1)
    assert code == 0, tail(cl.servers[1].log())
    orphans = [i for i, name in servers.items() if name == "tandem2"]
    for i in orphans:
        closes = clients.call("waitClose", client=i, codes=[1012])["closes"]
        assert closes[0]["code"] == 1012, closes
    clients.call("waitServerChange", clients=orphans, **{"from": servers}, timeout=60)
    sent = sent_total(clients)
    wait_for(lambda: sent_total(clients) >= sent + 30, "edits after the drain")
    clients.call("stop")
    clients.call("converge", timeout=120)
    for i in ids:
        assert_all_once(clients, i)
    # Nobody else was disturbed.
    others = [c for c in clients.state() if c["index"] in ids and c["index"] not in orphans]
    assert all(c["closes"] == [] for c in others), others
    fresh_look(cl, clients, owner, on_each=True)


def test_metrics_parse_on_every_process(cl: Cluster, owner: str, clients: NodeClients) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    ids = clients.open([owner] * 3)
    servers = clients.synced(ids)
    assert set(servers.values()) == {"tandem1", "tandem2", "tandem3"}, servers
    clients.call("type", count=2)
    clients.call("converge")

    def count(i: int, family: str) -> float:
        return cl.value(i, family, f"{family}_count")

    # Each process logged its own client's edits and applied the others' from Redis.
    wait_for(
        lambda: all(count(i, "tandem_commit_seconds") > 0 for i in cl.alive()),
        "every process's commits in tandem_commit_seconds",
    )
    wait_for(
        lambda: all(count(i, "tandem_fanout_lag_seconds") > 0 for i in cl.alive()),
        "every process's applied batches in tandem_fanout_lag_seconds",
    )
    for i in cl.alive():
        families = {f.name: f for f in text_string_to_metric_families(cl.metrics_text(i))}
        for name in (
            "tandem_open_connections",
            "tandem_open_rooms",
            "tandem_updates_applied",
            "tandem_event_loop_lag_seconds",
            "tandem_commit_seconds",
            "tandem_fanout_lag_seconds",
            "tandem_worker_lag_seconds",
            "tandem_outbox_depth",
        ):
            assert name in families, (i, name, sorted(families))
