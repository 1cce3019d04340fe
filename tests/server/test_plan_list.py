"""The plan list a CSM works from, against the real server: figures per plan, search, filters,
sorting, clear 400s, the page without JavaScript, and no room loaded to list plans."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.support.access import sign_in
from tests.support.servers import Database, Server


@dataclass
class Listing:
    server: Server
    csm: httpx.Client  # the workspace owner: sees every plan
    other: httpx.Client  # a second CSM: sees only the plans they are in
    plans: dict[str, str]


def ok(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r.json()


@pytest.fixture(scope="module")
def listing(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Listing]:
    tmp = tmp_path_factory.mktemp(f"list-{backend}")
    db = Database(backend, tmp, at_head=True)
    srv = Server(data_dir=tmp, database_url=db.url).start()
    try:
        srv.create_user("csm@vendor.example", "Casey CSM")
        srv.create_user("pat@vendor.example", "Pat Other")
        headers = {"Authorization": f"Bearer {srv.create_token('csm@vendor.example')}"}
        other_headers = {"Authorization": f"Bearer {srv.create_token('pat@vendor.example')}"}
        csm = httpx.Client(base_url=srv.http, headers=headers, timeout=20)
        other = httpx.Client(base_url=srv.http, headers=other_headers, timeout=20)

        def plan(client: httpx.Client, title: str, customer: str, **extra: Any) -> str:
            body = {"title": title, "customer": customer, **extra}
            return ok(client.post("/api/plans", json=body), 201)["id"]

        plans = {
            "alpha": plan(csm, "Alpha rollout", "Acme Corp", template="onboarding-roadmap"),
            "beta": plan(csm, "Beta pilot", "Globex"),
            "gamma": plan(csm, "Gamma renewal", "Acme Corp"),
            "delta": plan(other, "Delta expansion", "Initech"),
        }
        # Alpha: a customer task and a milestone long overdue -> red.
        tasks = ok(csm.get(f"/api/plans/{plans['alpha']}/tasks"))["tasks"]
        task = next(t for t in tasks if not t["milestone"])
        milestone = next(t for t in tasks if t["milestone"])
        owner = {"id": "name:Cora", "label": "Cora", "side": "customer"}
        url = f"/api/plans/{plans['alpha']}/tasks"
        ok(csm.patch(f"{url}/{task['id']}", json={"due": "2020-01-01", "owner": owner}))
        ok(csm.patch(f"{url}/{milestone['id']}", json={"due": "2020-01-02"}))
        ok(csm.patch(f"/api/plans/{plans['gamma']}", json={"archived": True}))
        yield Listing(srv, csm, other, plans)
        csm.close()
        other.close()
    finally:
        srv.stop()
        db.drop()


def ids(listing: Listing, client: httpx.Client | None = None, **params: str) -> list[str]:
    found = ok((client or listing.csm).get("/api/plans", params=params))["plans"]
    names = {v: k for k, v in listing.plans.items()}
    return [names[p["id"]] for p in found]


def test_items_carry_status_progress_overdue_and_next_milestone(listing: Listing) -> None:
    plans = {p["id"]: p for p in ok(listing.csm.get("/api/plans"))["plans"]}
    alpha, beta = plans[listing.plans["alpha"]], plans[listing.plans["beta"]]
    assert alpha["status"]["rag"] == "red" and alpha["status"]["reasons"]
    assert alpha["overdue"]["customer"] == 1 and alpha["overdue"]["total"] >= 2
    assert alpha["progress"]["total"] > 0 and alpha["progress"]["done"] == 0
    assert alpha["progress"]["percent"] == 0
    assert alpha["next_milestone"]["due"] == "2020-01-02"
    assert alpha["next_milestone"]["verdict"] == "overdue"
    assert beta["status"]["rag"] == "green"
    assert beta["progress"] == {
        "done": 0,
        "total": 0,
        "percent": None,
        "milestones": {"done": 0, "total": 0},
    }
    # "unknown": tasks owned by a bare name, whose side nobody said (the summary counts them).
    assert beta["overdue"] == {
        "vendor": 0,
        "customer": 0,
        "unknown": 0,
        "unassigned": 0,
        "total": 0,
    }
    assert beta["next_milestone"] is None and beta["archived"] is False


def test_search_filters_and_visibility(listing: Listing) -> None:
    # Archived plans are hidden unless asked for; other people's plans never show.
    assert sorted(ids(listing)) == ["alpha", "beta", "delta"]  # the workspace owner sees all
    assert ids(listing, listing.other) == ["delta"]
    assert ids(listing, q="acme") == ["alpha"]
    assert ids(listing, q="ALPHA") == ["alpha"]
    assert ids(listing, q="pilot") == ["beta"]
    assert ids(listing, q="%") == []  # a LIKE wildcard is a literal character
    assert ids(listing, customer="acme corp") == ["alpha"]
    assert ids(listing, customer="Acme") == []  # the customer filter is exact
    assert ids(listing, status="red") == ["alpha"]
    assert sorted(ids(listing, status="green")) == ["beta", "delta"]
    assert ids(listing, archived="true") == ["gamma"]
    assert sorted(ids(listing, archived="all")) == ["alpha", "beta", "delta", "gamma"]
    assert sorted(ids(listing, mine="true")) == ["alpha", "beta"]
    assert ids(listing, listing.other, mine="true") == ["delta"]
    assert ids(listing, q="", status="") == ids(listing)  # a GET form's empty fields


def test_sorting(listing: Listing) -> None:
    assert ids(listing, sort="title") == ["alpha", "beta", "delta"]
    assert ids(listing, sort="customer") == ["alpha", "beta", "delta"]
    assert ids(listing, sort="status")[0] == "alpha"
    assert ids(listing, sort="overdue")[0] == "alpha"
    assert ids(listing, sort="next_milestone")[0] == "alpha"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "purple"}, "status"),
        ({"sort": "random"}, "sort"),
        ({"archived": "maybe"}, "archived"),
        ({"mine": "1"}, "mine"),
        ({"owner": "me"}, "owner"),
        ({"q": "x" * 201}, "q"),
        ({"customer": "x" * 201}, "customer"),
    ],
)
def test_bad_parameters_answer_400_naming_them(
    listing: Listing, params: dict[str, str], field: str
) -> None:
    r = listing.csm.get("/api/plans", params=params)
    assert r.status_code == 400, r.text
    assert r.json()["field"] == field and field in r.json()["error"]


def test_listing_loads_no_room(listing: Listing) -> None:
    # The figures come from the materialised tables: listing opens no plan's document.
    listing.server.stop()
    listing.server.start()
    before = listing.server.log().count(" loaded (")
    ok(listing.csm.get("/api/plans", params={"archived": "all", "sort": "status"}))
    page = sign_in(listing.server, "csm@vendor.example")
    assert page.client.get("/").status_code == 200
    page.client.close()
    assert listing.server.log().count(" loaded (") == before


def test_the_page_filters_without_javascript(listing: Listing) -> None:
    csm = sign_in(listing.server, "csm@vendor.example")
    try:
        page = csm.client.get("/", params={"q": "alpha"})
        assert page.status_code == 200
        assert "Alpha rollout" in page.text and "Beta pilot" not in page.text
        assert 'data-rag="red"' in page.text and 'value="alpha"' in page.text
        page = csm.client.get("/", params={"q": "nothing like it"})
        assert "No plan matches" in page.text and 'id="list-clear"' in page.text
        page = csm.client.get("/", params={"archived": "true"})
        assert "Gamma renewal" in page.text and "Archived" in page.text
        page = csm.client.get("/", params={"status": "purple"})
        assert page.status_code == 400 and "status must be one of" in page.text
    finally:
        csm.client.close()
    listing.server.create_user("new@vendor.example", "Nova New")
    newcomer = sign_in(listing.server, "new@vendor.example")
    try:
        page = newcomer.client.get("/")
        assert "No plans yet." in page.text and "Create the first one below" in page.text
    finally:
        newcomer.client.close()
