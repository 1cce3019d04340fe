"""The handover brief over a real server: each format, read by a vendor member and by a
customer member, built from a plan edited the way people edit it (live Yjs clients, the task
API), with a marker typed into the internal account plan that must reach the vendor's copy
and no format of the customer's."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from pycrdt import Doc, XmlElement, XmlText
from pypdf import PdfReader

import crdt
from tests.support.access import api as client
from tests.support.access import invite_and_join
from tests.support.servers import Server
from tests.support.yclient import connect, fragment

pytestmark = pytest.mark.anyio

MARKER = "ZEBRA-7731 renewal lever: discount cap 12%"
XSS = (
    '<script>alert("brief")</script><img src=x onerror=alert(2)> **bold?** [x](javascript:alert(3))'
)


def _t(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def _p(*parts: dict[str, Any] | str) -> dict[str, Any]:
    return {"type": "paragraph", "content": [_t(x) if isinstance(x, str) else x for x in parts]}


def _h(level: int, text: str) -> dict[str, Any]:
    return {"type": "heading", "attrs": {"level": level}, "content": [_t(text)]}


def _task(text: str, due: str, owner: str, side: str, task_id: str) -> dict[str, Any]:
    return {
        "type": "taskItem",
        "attrs": {"checked": False, "id": task_id},
        "content": [
            _p(
                text + " ",
                {"type": "mention", "attrs": {"id": f"name:{owner}", "label": owner, "side": side}},
                " ",
                {"type": "dueDate", "attrs": {"date": due}},
            )
        ],
    }


def _table(header: list[str], *rows: tuple[str, list[str]]) -> dict[str, Any]:
    def cell(kind: str, text: str) -> dict[str, Any]:
        return {"type": kind, "content": [_p(text)] if text else [{"type": "paragraph"}]}

    def row(row_id: str, cells: list[str]) -> dict[str, Any]:
        content = [cell("tableCell", c) for c in cells]
        return {"type": "tableRow", "attrs": {"id": row_id}, "content": content}

    return {
        "type": "table",
        "content": [
            {"type": "tableRow", "content": [cell("tableHeader", c) for c in header]},
            *(row(i, r) for i, r in rows),
        ],
    }


def plan_content(today: datetime, current: str) -> dict[str, Any]:
    day = lambda n: (today + timedelta(days=n)).date().isoformat()  # noqa: E731
    return {
        "type": "doc",
        "content": [
            _h(1, "Joint success plan"),
            _h(2, "Objectives"),
            _p("Cut onboarding time in half. " + XSS),
            _h(2, "Key contacts"),
            _table(
                ["Name", "Role", "Email", "Side"],
                ("r_contact01", ["Dana Diaz", "Executive sponsor", "dana@acme.test", "customer"]),
                ("r_contact02", ["Casey CSM", "CSM", "csm@vendor.example", "vendor"]),
            ),
            _h(2, "Key results"),
            _table(
                ["Metric", "Baseline", "Target", "Current", "Date"],
                ("r_kr00000001", ["Weekly active users", "100", "500", current, day(60)]),
            ),
            _h(2, "Milestones"),
            {
                "type": "taskList",
                "content": [
                    _task("Kick-off held", day(-20), "Casey CSM", "vendor", "t_mkickoff1"),
                    _task("Go-live", day(-3), "Dana Diaz", "customer", "t_mgolive01"),
                ],
            },
            _h(2, "Actions"),
            {
                "type": "taskList",
                "content": [
                    _task("Send SSO metadata", day(-5), "Dana Diaz", "customer", "t_sso000001"),
                    _task("Configure workspace", day(4), "Casey CSM", "vendor", "t_config0001"),
                ],
            },
            _h(2, "Risks"),
            _table(
                ["Risk", "Severity", "Owner", "Mitigation"],
                ("r_risk000001", ["Champion leaves", "medium", "Casey CSM", "Second champion"]),
            ),
        ],
    }


def get(c: httpx.Client, path: str) -> httpx.Response:
    # Generous: the first PDF of a process loads WeasyPrint and its fonts, on a busy machine.
    r = c.get(path, timeout=60)
    assert r.status_code == 200, r.text
    return r


def pdf_text(data: bytes) -> str:
    reader = PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() or "" for page in reader.pages)


@pytest.fixture
def opened() -> Iterator[list[httpx.Client]]:
    """HTTP clients a test opens, closed after it."""
    made: list[httpx.Client] = []
    yield made
    for c in made:
        c.close()


def keep(opened: list[httpx.Client], c: httpx.Client) -> httpx.Client:
    opened.append(c)
    return c


async def until(fn: Any, timeout: float = 15.0) -> Any:
    with anyio.fail_after(timeout):
        while not (value := fn()):
            await anyio.sleep(0.1)
        return value


async def test_each_format_for_vendor_and_customer_keeps_the_internal_plan_vendor_only(
    server: Server, token: str, tmp_path: Path, opened: list[httpx.Client]
) -> None:
    plan_id = server.create_plan(token, "Acme rollout", "Acme Corp")
    owner = keep(opened, client(server, token))
    invite_and_join(
        server, owner, plan_id, "robin@customer.example", "Robin Customer", "editor", "customer"
    )
    robin = keep(opened, client(server, server.create_token("robin@customer.example")))
    now = datetime.now(UTC)

    robin_token = server.create_token("robin@customer.example")
    key_result = lambda: get(owner, f"/api/plans/{plan_id}/key-results").json()["key_results"]  # noqa: E731
    async with (
        connect(server.ws, plan_id, token) as (doc, _),
        connect(server.ws, plan_id, robin_token) as (robin_doc, _),
    ):
        crdt.write_prosemirror(doc, plan_content(now, "150"))
        await until(lambda: len(get(owner, f"/api/plans/{plan_id}/tasks").json()["tasks"]) == 4)
        # The key result moves twice, as each side updates it over the weeks.
        await until(lambda: "Weekly active users" in crdt.to_markdown(robin_doc))
        crdt.write_prosemirror(robin_doc, plan_content(now, "220"))
        await until(lambda: key_result()[0]["current"] == "220")
        await until(lambda: "220" in crdt.to_markdown(doc))
        crdt.write_prosemirror(doc, plan_content(now, "310"))
        await until(lambda: key_result()[0]["current"] == "310")
    # Commitments kept and broken, through the task API (audited as their authors).
    patch = lambda c, task, body: c.patch(f"/api/plans/{plan_id}/tasks/{task}", json=body)  # noqa: E731
    assert patch(owner, "t_mkickoff1", {"status": "done"}).status_code == 200
    later = (now + timedelta(days=10)).date().isoformat()
    assert patch(robin, "t_mgolive01", {"due": later}).status_code == 200
    assert patch(owner, "t_config0001", {"status": "done"}).status_code == 200

    internal = Doc()
    async with connect(server.ws, f"{plan_id}/internal", token, internal) as (idoc, _):
        fragment(idoc).children.append(XmlElement("paragraph", {}, [XmlText(MARKER)]))
        await until(
            lambda: (
                MARKER in get(owner, f"/api/plans/{plan_id}/internal/document?format=markdown").text
            )
        )

    reason = "Sponsor <b>left</b>; see *notes*"
    status = owner.put(f"/api/plans/{plan_id}/status", json={"rag": "amber", "reason": reason})
    assert status.status_code == 200, status.text

    # A vendor-side editor (not an owner) gets the internal plan too: it goes by side.
    invite_and_join(
        server, owner, plan_id, "vera@vendor.example", "Vera Vendor", "editor", "vendor"
    )
    vera = keep(opened, client(server, server.create_token("vera@vendor.example")))
    assert MARKER in get(vera, f"/api/plans/{plan_id}/brief?format=markdown").text

    out = Path(os.environ.get("TANDEM_BRIEF_OUT", tmp_path))
    copies: dict[str, dict[str, str]] = {}
    for who, c in (("vendor", owner), ("customer", robin)):
        html = get(c, f"/api/plans/{plan_id}/brief?format=html")
        assert html.headers["content-type"].startswith("text/html")
        md = get(c, f"/api/plans/{plan_id}/brief?format=markdown")
        assert md.headers["content-type"].startswith("text/markdown")
        assert "attachment" in md.headers["content-disposition"]
        pdf = get(c, f"/api/plans/{plan_id}/brief?format=pdf")
        assert pdf.headers["content-type"] == "application/pdf"
        assert pdf.content.startswith(b"%PDF-")
        (out / f"brief-{who}.pdf").write_bytes(pdf.content)
        (out / f"brief-{who}.html").write_text(html.text)
        (out / f"brief-{who}.md").write_text(md.text)
        copies[who] = {"html": html.text, "markdown": md.text, "pdf": pdf_text(pdf.content)}

    # The marker typed into the internal plan: in every format of the vendor's copy...
    for fmt, text in copies["vendor"].items():
        assert "ZEBRA-7731" in text, fmt
        assert "Internal account plan" in text, fmt
    # ...and nowhere in the customer's, nor the section that would hold it.
    for fmt, text in copies["customer"].items():
        assert "ZEBRA-7731" not in text, fmt
        assert "discount cap" not in text, fmt
        assert "Internal account plan" not in text, fmt

    for who, copy in copies.items():
        # Content both see: objectives, contacts, the key result's trend, milestones, reliability.
        for fmt, text in copy.items():
            flat = " ".join(text.split())
            assert "Cut onboarding time in half" in flat, (who, fmt)
            assert "Dana Diaz" in flat and "Executive sponsor" in flat, (who, fmt)
            assert "Weekly active users" in flat, (who, fmt)
            assert "improving" in flat, (who, fmt)
            assert "Go-live" in flat and "Kick-off held" in flat, (who, fmt)
        assert "150 → 220 → 310" in copy["markdown"]
        # Go-live slipped once, by 13 days, and is still open: upcoming now, not missed.
        lines = copy["markdown"].splitlines()
        go_live = next(line for line in lines if "| Go-live |" in line)
        assert "| upcoming |" in go_live and "| 1 | 13 |" in go_live, go_live
        kickoff = next(line for line in lines if "| Kick-off held |" in line)
        assert "| met late |" in kickoff, kickoff
        # Customer side: SSO metadata 5 days late and open; vendor: one kept, one late.
        assert "| Customer | 0% | 0 | 1 (1) |" in copy["markdown"]
        assert "| Vendor | 50% | 1 | 1 (0) |" in copy["markdown"]

    # User text is text: escaped in the page, inert in Markdown, plain text in the PDF.
    for who, copy in copies.items():
        html = copy["html"]
        assert "<script>alert" not in html and "<img src=x" not in html
        assert "&lt;script&gt;alert(&#34;brief&#34;)&lt;/script&gt;" in html
        assert 'href="javascript' not in html
        md = copy["markdown"]
        assert "Status set to amber: Sponsor \\<b\\>left\\</b\\>; see \\*notes\\*" in md
        assert "Sponsor &lt;b&gt;left&lt;/b&gt;; see *notes*" in html
        assert "\\<script>" in md and "\\*\\*bold?\\*\\*" in md and "\\[x\\]" in md
        assert '<script>alert("brief")</script><img src=x onerror=alert(2)>' in copy["pdf"]
        reader = PdfReader(out / f"brief-{who}.pdf")
        # Real fonts, embedded: DejaVu Sans (subsets), not a viewer's fallback.
        fonts = {
            str(f.get_object()["/BaseFont"]).split("+")[-1]
            for page in reader.pages
            for f in page["/Resources"]["/Font"].values()
        }
        assert "DejaVu-Sans" in fonts and "DejaVu-Sans-Bold" in fonts, fonts
        root = reader.trailer["/Root"]
        assert "/OpenAction" not in root and "/AA" not in root
        assert "/JavaScript" not in root.get("/Names", {})
        for page in reader.pages:
            for annot in page.get("/Annots") or []:
                uri = annot.get_object().get("/A", {}).get("/URI")
                assert uri is None or str(uri).startswith(("http", "mailto:", "#")), uri


async def test_bad_format_and_who_may_read_it(
    server: Server, token: str, opened: list[httpx.Client]
) -> None:
    plan_id = server.create_plan(token)
    owner = keep(opened, client(server, token))
    r = owner.get(f"/api/plans/{plan_id}/brief?format=docx")
    assert r.status_code == 400
    assert r.json() == {"error": "format must be one of html, markdown, pdf", "field": "format"}
    # A share-link visitor has no brief: the link gives no history.
    link = owner.post(f"/api/plans/{plan_id}/links", json={"role": "viewer"}).json()
    visitor = keep(opened, httpx.Client(base_url=server.http, follow_redirects=False))
    path = "/" + link["url"].split("://", 1)[1].split("/", 1)[1]
    assert visitor.post(path, data={"step": "name", "name": "Lee"}).status_code == 303
    refused = visitor.get(f"/api/plans/{plan_id}/brief?format=markdown")
    assert refused.status_code == 403
    assert "does not show the plan's history" in refused.json()["error"]
    # The plan's page offers the brief to members, not to the visitor.
    assert (
        f"/api/plans/{plan_id}/brief?format=html"
        not in visitor.get(f"/plans/{plan_id}/history").text
    )
    # A link created with history shows it the brief, the customer's copy.
    link = owner.post(
        f"/api/plans/{plan_id}/links", json={"role": "viewer", "history": True}
    ).json()
    reader = keep(opened, httpx.Client(base_url=server.http, follow_redirects=False))
    path = "/" + link["url"].split("://", 1)[1].split("/", 1)[1]
    assert reader.post(path, data={"step": "name", "name": "Kim"}).status_code == 303
    shown = reader.get(f"/api/plans/{plan_id}/brief?format=markdown")
    assert shown.status_code == 200, shown.text
    assert "vendor only" not in shown.text.lower()
    assert f"/api/plans/{plan_id}/brief?format=html" in reader.get(f"/plans/{plan_id}/history").text


async def test_pdfs_render_off_the_event_loop(server: Server, token: str) -> None:
    """Several PDFs at once all arrive, and the server answers other requests meanwhile: the
    layout runs in worker threads (two at a time), never on the event loop."""
    plan_id = server.create_plan(token)
    headers = {"Authorization": f"Bearer {token}"}
    done: list[tuple[str, float]] = []
    async with httpx.AsyncClient(base_url=server.http, headers=headers, timeout=120) as c:

        async def pdf() -> None:
            r = await c.get(f"/api/plans/{plan_id}/brief?format=pdf")
            assert r.status_code == 200 and r.content.startswith(b"%PDF-"), r.text
            done.append(("pdf", anyio.current_time()))

        async def health() -> None:
            # Once the PDFs are under way, the liveness probe still answers at once.
            await anyio.sleep(0.3)
            r = await c.get("/healthz")
            assert r.status_code == 200
            done.append(("health", anyio.current_time()))

        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(pdf)
            tg.start_soon(health)
    kinds = [k for k, _ in sorted(done, key=lambda d: d[1])]
    assert kinds.count("pdf") == 5
    assert kinds.index("health") < 4, kinds  # not stuck behind the PDFs
