"""Notification preferences: per person (by email address, so that Key contacts without an
account have them too) a time zone and the weekly digest's weekday and hour, and per person,
plan and kind a mode: ``immediate``, ``digest`` (held for the weekly digest) or ``off``.

A mode for plan ``""`` is the person's default for every plan; a plan's own mode wins over it.
``queue_notification`` asks ``notification_mode`` before it writes a row, so every rule (and
every kind added later) obeys the preferences at that one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import DateTime, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from .models import Base
from .records import now

IMMEDIATE, DIGEST, OFF = "immediate", "digest", "off"
MODES = (IMMEDIATE, DIGEST, OFF)
DIGEST_KIND = "digest"  # the weekly digest itself: immediate (on) or off


class NotifySettings(Base):
    __tablename__ = "notification_settings"
    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    time_zone: Mapped[str] = mapped_column(String(64))
    digest_weekday: Mapped[int] = mapped_column(Integer)  # 0 Monday ... 6 Sunday
    digest_hour: Mapped[int] = mapped_column(Integer)  # 0-23, local time
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class NotifyPreference(Base):
    __tablename__ = "notification_preferences"
    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    plan_id: Mapped[str] = mapped_column(String(32), primary_key=True)  # "": every plan
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    mode: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class NotifySettingsRecord:
    email: str
    time_zone: str = "UTC"
    digest_weekday: int = 0
    digest_hour: int = 8


def _email(email: str) -> str:
    return email.strip().lower()


def get_notify_settings(*, session: Session, email: str) -> NotifySettingsRecord:
    """The person's time zone and digest time (the defaults when never set)."""
    row = session.get(NotifySettings, _email(email))
    if row is None:
        return NotifySettingsRecord(_email(email))
    return NotifySettingsRecord(row.email, row.time_zone, row.digest_weekday, row.digest_hour)


def all_notify_settings(*, session: Session) -> dict[str, NotifySettingsRecord]:
    return {
        r.email: NotifySettingsRecord(r.email, r.time_zone, r.digest_weekday, r.digest_hour)
        for r in session.scalars(select(NotifySettings))
    }


def set_notify_settings(
    *,
    session: Session,
    email: str,
    time_zone: str | None = None,
    digest_weekday: int | None = None,
    digest_hour: int | None = None,
) -> NotifySettingsRecord:
    """Change what is given (already validated); the rest stays."""
    key = _email(email)
    row = session.get(NotifySettings, key)
    if row is None:
        d = NotifySettingsRecord(key)
        row = NotifySettings(
            email=key,
            time_zone=d.time_zone,
            digest_weekday=d.digest_weekday,
            digest_hour=d.digest_hour,
            updated_at=now(),
        )
        session.add(row)
    if time_zone is not None:
        row.time_zone = time_zone
    if digest_weekday is not None:
        row.digest_weekday = digest_weekday
    if digest_hour is not None:
        row.digest_hour = digest_hour
    row.updated_at = now()
    session.flush()
    return get_notify_settings(session=session, email=key)


def notification_modes(*, session: Session, email: str) -> dict[tuple[str, str], str]:
    """Every mode the person set, by (plan id or "", kind)."""
    rows = session.scalars(select(NotifyPreference).where(NotifyPreference.email == _email(email)))
    return {(r.plan_id, r.kind): r.mode for r in rows}


def set_notification_mode(
    *, session: Session, email: str, plan_id: str | None, kind: str, mode: str | None
) -> None:
    """Set the mode of ``kind`` about ``plan_id`` (None: the default for every plan); None
    clears it (the plan follows the default again). Turning a kind on again also takes back
    an unsubscribe from exactly that kind there."""
    from .notifications import resubscribe

    key = (_email(email), plan_id or "", kind)
    row = session.get(NotifyPreference, key)
    if mode is None:
        if row is not None:
            session.delete(row)
    elif row is None:
        session.add(
            NotifyPreference(email=key[0], plan_id=key[1], kind=kind, mode=mode, updated_at=now())
        )
    else:
        row.mode, row.updated_at = mode, now()
    if mode in (IMMEDIATE, DIGEST):
        resubscribe(session=session, email=key[0], plan_id=plan_id, kind=kind)
    session.flush()


def notification_mode(*, session: Session, email: str, plan_id: str | None, kind: str) -> str:
    """How ``email`` wants notifications of ``kind`` about ``plan_id``: the plan's own mode,
    else their default for every plan, else immediate."""
    rows = dict(
        session.execute(
            select(NotifyPreference.plan_id, NotifyPreference.mode).where(
                NotifyPreference.email == _email(email),
                NotifyPreference.kind == kind,
                NotifyPreference.plan_id.in_(("", plan_id or "")),
            )
        ).all()
    )
    return rows.get(plan_id or "") or rows.get("") or IMMEDIATE
