"""Templates a plan can start from (built in and the workspace's own), and plan creation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

import crdt
import persistence
from crdt import BUILT_IN, assign_ids
from server.store import Store

from .errors import ApiError
from .materialise import Tables


def template_json(t: crdt.templates.Template | persistence.TemplateRecord) -> dict[str, Any]:
    builtin = isinstance(t, crdt.templates.Template)
    return {"id": t.id, "name": t.name, "description": t.description, "builtin": builtin}


# What saving a plan as a workspace template copies, said to whoever saves one: every staff
# member can then start a plan from it.
TEMPLATE_COPIES = (
    "the shared plan's text, headings and tables (risks, key results, contacts and their "
    "rows) and its tasks unticked with their dates; task owners who are people of this plan "
    "(their @mentions) are removed, placeholder owners such as @CSM stay; "
    "not the internal account plan, members, links or history. Every staff member of the "
    "workspace can start a plan from it; guests never see it."
)


async def list_templates(store: Store, *, staff: bool = True) -> list[dict[str, Any]]:
    """Built-in templates, and for staff the workspace's own (they carry plans' content)."""
    if not staff:
        return [template_json(t) for t in BUILT_IN.values()]
    own = await store.run(lambda s: persistence.list_templates(session=s))
    return [template_json(t) for t in BUILT_IN.values()] + [template_json(t) for t in own]


async def template_content(
    store: Store, template_id: Any, *, staff: bool = True
) -> dict[str, Any] | None:
    """The ProseMirror JSON a new plan starts with; 400 naming ``template`` when unknown."""
    if template_id is None or template_id == "":
        return None
    if not isinstance(template_id, str):
        raise ApiError(400, "template must be a template id (a string)", field="template")
    builtin = BUILT_IN.get(template_id)
    if builtin is not None:
        return builtin.build(datetime.now(UTC).date())
    own = await store.run(lambda s: persistence.get_template(session=s, template_id=template_id))
    if own is None or not staff:
        raise ApiError(400, f"no template with id {template_id!r}", field="template")
    return own.content


def initial_update(content: dict[str, Any]) -> bytes:
    doc = crdt.new_doc()
    crdt.write_prosemirror(doc, content)
    assign_ids(doc)
    return doc.get_update()


async def create_plan(
    store: Store, *, title: str, customer: str, user_id: int | None, content: dict[str, Any] | None
) -> persistence.PlanRecord:
    """The plan row and, from a template, its first logged update (the creator's), together."""
    update = initial_update(content) if content is not None else None

    def create(s: Session) -> persistence.PlanRecord:
        plan = persistence.create_plan(
            session=s, title=title, customer=customer, created_by=user_id
        )
        if update is not None:
            persistence.append_updates(session=s, plan_id=plan.id, entries=[(user_id, update)])
        return plan

    return await store.run(create)


#: The name of the first version of a plan created from a template.
FIRST_VERSION = "Created from the template"


async def new_plan(
    store: Store,
    materialiser: Tables,
    *,
    title: str,
    customer: str,
    user_id: int | None,
    content: dict[str, Any] | None,
) -> persistence.PlanRecord:
    """A new plan, as the plan list's form and the API make it: from a template, its tables
    are materialised before this returns, so the first look at the plan shows its tasks."""
    plan = await create_plan(
        store, title=title, customer=customer, user_id=user_id, content=content
    )
    if content is not None:
        await materialiser.flush(plan.id)
        # A plan started from a template names that start, to compare and restore against.
        await store.run(
            lambda s: persistence.create_version(
                session=s,
                plan_id=plan.id,
                name=FIRST_VERSION,
                upto_id=persistence.last_log_id(session=s, plan_id=plan.id),
                created_by=user_id,
            )
        )
    return plan


def _is_mention(node: Any) -> bool:
    """A mention of one of the plan's accounts: it names a person of this plan, and means
    nothing in another. Placeholders (``name:CSM``) and contacts stay."""
    if not (isinstance(node, dict) and node.get("type") == "mention"):
        return False
    attrs = node.get("attrs")
    return not isinstance(attrs, dict) or str(attrs.get("id") or "").startswith("user:")


def _as_template(node: Any) -> Any:
    """A plan's content made reusable: no ids, nothing ticked, none of its people named."""
    if isinstance(node, list):
        return [_as_template(n) for n in node if not _is_mention(n)]
    if not isinstance(node, dict):
        return node
    out = {k: _as_template(v) for k, v in node.items()}
    if node.get("type") in ("taskItem", "tableRow") and isinstance(out.get("attrs"), dict):
        attrs = {k: v for k, v in out["attrs"].items() if k not in ("id", "status")}
        if node["type"] == "taskItem":
            attrs["checked"] = False
        out["attrs"] = attrs
    return out


def reusable_content(doc_json: dict[str, Any]) -> dict[str, Any]:
    content: dict[str, Any] = _as_template(doc_json)  # a dict maps to a dict
    return content
