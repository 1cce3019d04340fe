"""Workspace templates: plan content saved to start new plans from."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import PlanTemplate
from .records import now, utc


@dataclass(frozen=True)
class TemplateRecord:
    id: str
    name: str
    description: str
    content: dict[str, Any]
    created_by: int | None
    created_at: datetime


def _record(row: PlanTemplate) -> TemplateRecord:
    return TemplateRecord(
        id=row.id,
        name=row.name,
        description=row.description,
        content=row.content,
        created_by=row.created_by,
        created_at=utc(row.created_at),
    )


def create_template(
    *,
    session: Session,
    name: str,
    description: str,
    content: dict[str, Any],
    created_by: int | None,
) -> TemplateRecord:
    row = PlanTemplate(
        id="w_" + secrets.token_urlsafe(9),
        name=name,
        description=description,
        content=content,
        created_by=created_by,
        created_at=now(),
    )
    session.add(row)
    session.flush()
    return _record(row)


def get_template(*, session: Session, template_id: str) -> TemplateRecord | None:
    row = session.get(PlanTemplate, template_id)
    return _record(row) if row else None


def list_templates(*, session: Session) -> list[TemplateRecord]:
    rows = session.scalars(select(PlanTemplate).order_by(PlanTemplate.name, PlanTemplate.id))
    return [_record(r) for r in rows.all()]
