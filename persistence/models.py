"""Every table of Tandem. CRDT state is opaque bytes here."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    false,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Stable constraint names so that Alembic migrations are the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    is_owner: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Workspace staff (the vendor's people) or a guest (customer people, invited to plans).
    is_staff: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # A deactivated account cannot sign in; its sessions, tokens and sockets end.
    deactivated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PasswordReset(Base):
    """A single-use password reset link: the signed token names this row."""

    __tablename__ = "password_resets"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Session(Base):
    """A browser sign-in; the cookie carries only its signed id, so sign-out revokes it."""

    __tablename__ = "sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ApiToken(Base):
    """A personal API token; the secret is never stored, only its SHA-256."""

    __tablename__ = "api_tokens"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    label: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Plan(Base):
    __tablename__ = "plans"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    customer: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # An archived plan is read-only and hidden from the list until it is restored.
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


# 64-bit ids on PostgreSQL; on SQLite only INTEGER is an alias of the (already 64-bit) rowid.
LogId = BigInteger().with_variant(Integer(), "sqlite")


class PlanUpdate(Base):
    """The append-only update log: the source of truth for every plan document."""

    __tablename__ = "plan_updates"
    id: Mapped[int] = mapped_column(LogId, primary_key=True, autoincrement=True)
    plan_id: Mapped[str] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    # "plan" is the shared document; "internal" the vendor-only account plan beside it.
    doc: Mapped[str] = mapped_column(String(16), default="plan", server_default="plan")

    __table_args__ = (
        Index("ix_plan_updates_plan_id_id", "plan_id", "id"),
        Index("ix_plan_updates_plan_id_doc_id", "plan_id", "doc", "id"),
    )


class Checkpoint(Base):
    """The merged state of a plan up to and including update ``upto_id``: a shortcut, not a loss."""

    __tablename__ = "checkpoints"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    plan_id: Mapped[str] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"))
    upto_id: Mapped[int] = mapped_column(LogId)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    state: Mapped[bytes] = mapped_column(LargeBinary)
    note: Mapped[str | None] = mapped_column(Text)
    doc: Mapped[str] = mapped_column(String(16), default="plan", server_default="plan")

    __table_args__ = (Index("ix_checkpoints_plan_id_upto_id", "plan_id", "upto_id"),)


# Access: who is in a plan, how outsiders reach it, and what happened.


class PlanMember(Base):
    __tablename__ = "plan_members"
    plan_id: Mapped[str] = mapped_column(
        ForeignKey("plans.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(16))
    side: Mapped[str] = mapped_column(String(16))
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Invite(Base):
    """An emailed, single-use invitation to join a plan; the link carries only its signed id."""

    __tablename__ = "invites"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    plan_id: Mapped[str] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(16))
    side: Mapped[str] = mapped_column(String(16))
    invited_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ShareLink(Base):
    """A stakeholder share link ("share") or a CRM embed URL ("embed") for one plan and role."""

    __tablename__ = "share_links"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    plan_id: Mapped[str] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    role: Mapped[str] = mapped_column(String(16))
    label: Mapped[str | None] = mapped_column(String(200))
    domain: Mapped[str | None] = mapped_column(String(253))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    uses: Mapped[int] = mapped_column(Integer, default=0)
    # Whether its visitors may read the plan's history (timeline, versions, comparisons).
    history: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class EmailCode(Base):
    """A one-time code proving an email address for a domain-locked link; only its hash is kept."""

    __tablename__ = "email_codes"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    link_id: Mapped[str] = mapped_column(ForeignKey("share_links.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320))
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AccessEvent(Base):
    """The access log: who gave, used or took away access (members, links, sign-ins,
    accounts), from where (``access_log``). Not the commitment history (``HistoryEvent``)."""

    __tablename__ = "access_events"
    id: Mapped[int] = mapped_column(LogId, primary_key=True, autoincrement=True)
    plan_id: Mapped[str | None] = mapped_column(
        ForeignKey("plans.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(400))
    subject: Mapped[str | None] = mapped_column(String(400))
    detail: Mapped[str | None] = mapped_column(String(400))
    ip: Mapped[str | None] = mapped_column(String(64))


class OutboxMail(Base):
    """Every email Tandem sends, kept so that it can be retried and seen when SMTP is off."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # The plan a message is about (an invitation, a one-time code): deleted with the plan.
    plan_id: Mapped[str | None] = mapped_column(
        ForeignKey("plans.id", ondelete="CASCADE"), index=True
    )
    to_addr: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(String(400))


# --- the plan as data: projections of the update log (rebuildable from it) ---------------------


class PlanTask(Base):
    """A task (or milestone) as the plan document last held it."""

    __tablename__ = "plan_tasks"
    plan_id: Mapped[str] = mapped_column(
        ForeignKey("plans.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    owner_ref: Mapped[str | None] = mapped_column(String(200))
    owner_label: Mapped[str | None] = mapped_column(String(200))
    owner_side: Mapped[str | None] = mapped_column(String(16))
    due: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    checked: Mapped[bool] = mapped_column(Boolean)
    milestone: Mapped[bool] = mapped_column(Boolean)
    section: Mapped[list[str]] = mapped_column(JSON)


class PlanKeyResult(Base):
    __tablename__ = "plan_key_results"
    plan_id: Mapped[str] = mapped_column(
        ForeignKey("plans.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    metric: Mapped[str] = mapped_column(Text)
    baseline: Mapped[str] = mapped_column(Text)
    target: Mapped[str] = mapped_column(Text)
    current: Mapped[str] = mapped_column(Text)
    unit: Mapped[str] = mapped_column(Text)
    date: Mapped[str] = mapped_column(Text)
    baseline_value: Mapped[float | None] = mapped_column(Float)
    target_value: Mapped[float | None] = mapped_column(Float)
    current_value: Mapped[float | None] = mapped_column(Float)
    section: Mapped[list[str]] = mapped_column(JSON)


class PlanRisk(Base):
    __tablename__ = "plan_risks"
    plan_id: Mapped[str] = mapped_column(
        ForeignKey("plans.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    risk: Mapped[str] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(Text)
    mitigation: Mapped[str] = mapped_column(Text)
    section: Mapped[list[str]] = mapped_column(JSON)


class PlanContact(Base):
    __tablename__ = "plan_contacts"
    plan_id: Mapped[str] = mapped_column(
        ForeignKey("plans.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(Text)
    email: Mapped[str] = mapped_column(Text)
    side: Mapped[str] = mapped_column(Text)
    section: Mapped[list[str]] = mapped_column(JSON)


class PlanProjection(Base):
    """How far into a plan's update log the tables above (and the commitment history) have got."""

    __tablename__ = "plan_projections"
    plan_id: Mapped[str] = mapped_column(
        ForeignKey("plans.id", ondelete="CASCADE"), primary_key=True
    )
    upto_id: Mapped[int] = mapped_column(LogId)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class HistoryEvent(Base):
    """The commitment history: one change to one task, key result, risk or contact, attributed
    from the update log (``commitment_history``). The table keeps its first name,
    ``audit_events``; the access log is ``access_events`` (``AccessEvent``)."""

    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(LogId, primary_key=True, autoincrement=True)
    plan_id: Mapped[str] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"))
    entity: Mapped[str] = mapped_column(String(16))
    entity_id: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(32))
    old: Mapped[object | None] = mapped_column(JSON)
    new: Mapped[object | None] = mapped_column(JSON)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    update_id: Mapped[int] = mapped_column(LogId)

    __table_args__ = (
        Index("ix_audit_events_plan_id_id", "plan_id", "id"),
        Index("ix_audit_events_plan_id_entity_id", "plan_id", "entity_id"),
    )


class PlanTemplate(Base):
    """A workspace template: a plan's content saved to start new plans from."""

    __tablename__ = "plan_templates"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    content: Mapped[dict[str, object]] = mapped_column(JSON)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PlanStatus(Base):
    """An owner's red/amber/green override of the computed status, with the reason."""

    __tablename__ = "plan_status"
    plan_id: Mapped[str] = mapped_column(
        ForeignKey("plans.id", ondelete="CASCADE"), primary_key=True
    )
    rag: Mapped[str] = mapped_column(String(8))
    reason: Mapped[str] = mapped_column(Text)
    set_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    set_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
