"""The embed view: a plan with minimal chrome for an iframe on a CRM account page.

The signed embed URL (purpose "embed", one plan and one role, expiring, revocable like a share
link) is the credential. Only this view may be framed, and only by TANDEM_EMBED_ALLOWED_ORIGINS.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

import persistence
from server.identity import Rule, visitor_name

from ..cookies import set_visit_cookie
from ..guard import link_identity, rule, usable_link
from ..presenters import editor_context
from ..responses import render, services


@rule(Rule.PUBLIC)  # the signed embed URL is the credential
async def embed_page(request: Request) -> Response:
    svc = services(request)
    link = await usable_link(request, "embed")
    if link is None:
        return render(
            request, "error.html", {"message": "This embed link is not valid any more."}, 404
        )
    # CRMs can put the viewer's name in the URL (e.g. a Salesforce merge field).
    raw = request.query_params.get("name", "")
    name = visitor_name(raw, "CRM viewer")
    identity = await link_identity(request, link.id, link.plan_id, name=name, email=None)
    plan = await svc.store.run(lambda s: persistence.get_plan(session=s, plan_id=link.plan_id))
    if identity is None or plan is None:
        return render(
            request, "error.html", {"message": "This embed link is not valid any more."}, 404
        )
    request.state.identity = identity
    request.state.plan = plan
    response = render(request, "embed.html", editor_context(request, embed=True))
    set_visit_cookie(request, response, link, name, None)
    return response
