"""Who a task's owner is, when they can be reached: a plan member, or a Key contacts row with an
email. Plain lookups inside one session; no Starlette, no rooms."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

import persistence


@dataclass(frozen=True)
class Person:
    ref: str  # the owner reference the document uses: user:<id> or contact:<row id>
    email: str
    name: str
    user_id: int | None = None


def task_of(s: Session, plan_id: str, task_id: str) -> dict[str, Any] | None:
    """The task's row, with ``wording``: its text without its owner's chip."""
    rows = persistence.list_tasks(session=s, plan_id=plan_id)
    row = next((r for r in rows if r["id"] == task_id), None)
    if row is None:
        return None
    text, label = row["text"], row.get("owner_label")
    if label:
        text = text.replace(f"@{label}", " ", 1)
    return {**row, "wording": " ".join(text.split())}


def reachable(s: Session, plan_id: str, ref: str | None) -> Person | None:
    """The person ``ref`` names, if they are in the plan and have an email address."""
    if not ref:
        return None
    if ref.startswith("user:"):
        try:
            user_id = int(ref[5:])
        except ValueError:
            return None
        member = persistence.get_member(session=s, plan_id=plan_id, user_id=user_id)
        if member is None:
            return None
        return Person(ref, member.email, member.name, member.user_id)
    if ref.startswith("contact:"):
        row_id = ref[8:]
        for row in persistence.list_rows(session=s, plan_id=plan_id, table="contacts"):
            email = (row.get("email") or "").strip()
            if row["id"] == row_id and "@" in email and " " not in email:
                return Person(ref, email.lower(), (row.get("name") or email).strip())
    return None


def owners(s: Session, plan_id: str) -> list[Person]:
    return [
        Person(f"user:{m.user_id}", m.email, m.name, m.user_id)
        for m in persistence.list_members(session=s, plan_id=plan_id)
        if m.role == "owner"
    ]


def everyone(s: Session, plan_id: str) -> list[Person]:
    return [
        Person(f"user:{m.user_id}", m.email, m.name, m.user_id)
        for m in persistence.list_members(session=s, plan_id=plan_id)
    ]


def name_of(s: Session, user_id: int | None) -> str | None:
    if user_id is None:
        return None
    user = persistence.get_user(session=s, user_id=user_id)
    return user.name if user else None
