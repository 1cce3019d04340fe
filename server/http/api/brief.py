"""The handover brief of a plan, as a page (HTML), Markdown or PDF.

The figures come from ``server.plan.read_brief``; the internal account plan is read, and passed
on, only for a vendor-side reader, so nothing of it can reach anyone else's copy in any
format. The PDF is WeasyPrint's layout of the same HTML with a print stylesheet
(``server/templates/brief-print.css``), made in a worker thread, a bounded number at a time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

import crdt
from crdt import safe_href
from server import plan as domain
from server.identity import Rule, allowed, plan_nav
from server.live import room_key
from server.plan import ApiError

from ..guard import identity_of, plan_of, rule
from ..responses import TEMPLATES, render, services

FORMATS = ("html", "markdown", "pdf")
PRINT_CSS = TEMPLATES / "brief-print.css"
# PDFs laid out at once, per process: each takes a core and tens of MB while it lasts.
MAX_CONCURRENT_PDFS = 2
_pdf_limiter: anyio.CapacityLimiter | None = None


def _limiter() -> anyio.CapacityLimiter:
    global _pdf_limiter
    if _pdf_limiter is None:  # made on the event loop that uses it
        _pdf_limiter = anyio.CapacityLimiter(MAX_CONCURRENT_PDFS)
    return _pdf_limiter


def _no_fetching(url: str, *_args: Any, **_kwargs: Any) -> dict[str, Any]:
    """WeasyPrint's URL fetcher: the brief needs nothing from outside (its stylesheet is given
    directly), and user content must not make the server fetch anything."""
    raise ValueError(f"the brief's PDF fetches nothing ({url[:40]!r})")


def render_pdf(html: str, stylesheet: Path = PRINT_CSS) -> bytes:
    """The PDF of ``html`` (blocking: run it in a worker thread)."""
    # Imported on first use: it loads Pango, which no other route needs.
    import weasyprint  # type: ignore[import-untyped]  # WeasyPrint ships no type hints

    document = weasyprint.HTML(string=html, url_fetcher=_no_fetching)
    pdf: bytes = document.write_pdf(stylesheets=[weasyprint.CSS(filename=str(stylesheet))])
    return pdf


def _filename(title: str, ext: str) -> str:
    """A Content-Disposition value naming the download after the plan, safe for any title."""
    ascii_name = "".join(c if c.isalnum() or c in "-_" else "-" for c in title)[:60].strip("-")
    plain = f"handover-brief-{ascii_name or 'plan'}.{ext}"
    plain = plain.encode("ascii", "replace").decode().replace("?", "-")
    full = quote(f"Handover brief - {title}.{ext}")
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{full}"


@rule(Rule.PLAN_HISTORY)
async def get_brief(request: Request) -> Response:
    fmt = request.query_params.get("format", "html")
    if fmt not in FORMATS:
        raise ApiError(400, f"format must be one of {', '.join(FORMATS)}", field="format")
    identity = identity_of(request)
    plan = plan_of(request)
    svc = services(request)
    # The tables as of the last edit, not of the materialiser's next quiet moment.
    await svc.materialiser.flush(plan.id)
    document = crdt.to_prosemirror(crdt.doc_from_updates([await svc.rooms.snapshot(plan.id)]))
    internal = internal_markdown = None
    vendor = allowed(Rule.PLAN_VENDOR, identity)
    if vendor:
        state = await svc.rooms.snapshot(room_key(plan.id, "internal"))
        inner = crdt.doc_from_updates([state])
        internal, internal_markdown = crdt.to_prosemirror(inner), crdt.to_markdown(inner)
    brief = await domain.read_brief(
        svc.store,
        plan,
        document=document,
        today=datetime.now(UTC).date(),
        internal=internal,
        internal_markdown=internal_markdown,
    )
    if fmt == "markdown":
        text = await anyio.to_thread.run_sync(domain.brief_markdown, brief)
        return PlainTextResponse(
            text,
            media_type="text/markdown; charset=utf-8",
            headers={
                "content-disposition": _filename(plan.title, "md"),
                "cache-control": "no-store",
            },
        )
    context: dict[str, Any] = {
        "user": identity,
        "plan": plan,
        "b": brief,
        "safe_href": safe_href,
        "active": "brief",
        "generated": datetime.now(UTC),
        **plan_nav(identity),
    }
    if fmt == "html":
        return render(request, "brief.html", context)
    template = svc.templates.env.get_template("brief_pdf.html")

    def layout() -> bytes:
        return render_pdf(template.render(context))

    pdf = await anyio.to_thread.run_sync(layout, limiter=_limiter())
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"content-disposition": _filename(plan.title, "pdf"), "cache-control": "no-store"},
    )
