"""Notification preferences as people set them: the kinds they can switch, how each may be
delivered, and the checks on what they send (a time zone is an IANA name zoneinfo knows).

The preferences themselves are stored and obeyed in ``persistence`` (``queue_notification``
asks before it writes a row), so a kind added later obeys them without more code here; it only
needs a label in ``KINDS`` to be settable.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import persistence

DIGEST = "digest"
# Every kind a person can switch, in the order the pages show them, as they name them.
KINDS = {
    "assigned": "Tasks assigned to you",
    "mentioned": "Mentions of you",
    "due_soon": "Reminders before a due date",
    "overdue": "Reminders of overdue tasks",
    "escalation": "Escalations of overdue tasks",
    "completed": "Tasks and milestones done",
    "kr_moved": "Key results that moved",
    "risk_high": "Risks raised to high",
}
MODES = {
    "immediate": "At once",
    "digest": "In the weekly digest",
    "off": "Off",
}
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class BadPreference(ValueError):
    """What is wrong with the preferences someone sent, in words for them."""


@cache
def zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def zone(name: object) -> ZoneInfo:
    """The zone an IANA name names (one of zoneinfo's, not a path to a file beside them)."""
    if not isinstance(name, str) or not name.strip() or len(name) > 64:
        raise BadPreference("time_zone must be an IANA time zone name, such as Europe/Berlin")
    name = name.strip()
    try:
        if name not in zone_names():
            raise ZoneInfoNotFoundError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadPreference(
            f"unknown time zone {name!r}: use an IANA name, such as Europe/Berlin"
        ) from None


@dataclass(frozen=True)
class SettingsChange:
    time_zone: str | None = None
    digest_weekday: int | None = None
    digest_hour: int | None = None
    digest: bool | None = None  # the weekly digest on or off


def _int(value: object, name: str, low: int, high: int) -> int:
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadPreference(f"{name} must be a whole number from {low} to {high}")
    return value


def weekday(value: object) -> int:
    """0 (Monday) to 6 (Sunday), or a weekday's English name."""
    if isinstance(value, str) and value.strip().capitalize() in WEEKDAYS:
        return WEEKDAYS.index(value.strip().capitalize())
    return _int(value, "digest_weekday", 0, 6)


def settings_change(body: dict[str, Any]) -> SettingsChange:
    """The person-wide part of a body: time zone, digest weekday and hour, digest on or off."""
    tz = body.get("time_zone")
    digest = body.get("digest")
    if digest is not None and not isinstance(digest, bool):
        raise BadPreference("digest must be true or false")
    return SettingsChange(
        time_zone=zone(tz).key if tz is not None else None,
        digest_weekday=weekday(body["digest_weekday"]) if "digest_weekday" in body else None,
        digest_hour=_int(body["digest_hour"], "digest_hour", 0, 23)
        if "digest_hour" in body
        else None,
        digest=digest,
    )


def kinds_change(value: object, *, plan: bool) -> dict[str, str | None]:
    """``{"kind": "immediate" | "digest" | "off"}`` (and, for a plan, ``"default"`` or null:
    as for every plan)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadPreference("kinds must be an object of kind: mode")
    out: dict[str, str | None] = {}
    for kind, mode in value.items():
        if kind not in KINDS:
            raise BadPreference(f"unknown kind {kind!r}: one of {', '.join(KINDS)}")
        if plan and mode in (None, "default"):
            out[kind] = None
        elif mode in MODES:
            out[kind] = mode
        else:
            allowed = ", ".join([*MODES, *(["default"] if plan else [])])
            raise BadPreference(f"unknown mode {mode!r} for {kind}: one of {allowed}")
    return out


# Reading and writing, inside one session


def person_view(s: Any, email: str, plan_ids: list[str]) -> dict[str, Any]:
    """A person's preferences as the API and pages show them: settings, the default mode of
    each kind, and each plan's own modes (None: as the default), with unsubscribes as off."""
    settings = persistence.get_notify_settings(session=s, email=email)
    modes = persistence.notification_modes(session=s, email=email)
    gone = persistence.unsubscribes_of(session=s, email=email)
    everything_off = ("", "") in gone

    def default(kind: str) -> str:
        if everything_off or ("", kind) in gone:
            return "off"
        return modes.get(("", kind), "immediate")

    def of_plan(plan_id: str) -> dict[str, Any]:
        kinds: dict[str, str | None] = {}
        for kind in KINDS:
            if (plan_id, "") in gone or (plan_id, kind) in gone:
                kinds[kind] = "off"
            else:
                kinds[kind] = modes.get((plan_id, kind))
        return {"unsubscribed": (plan_id, "") in gone, "kinds": kinds}

    return {
        "email": settings.email,
        "time_zone": settings.time_zone,
        "digest_weekday": settings.digest_weekday,
        "digest_hour": settings.digest_hour,
        "digest": persistence.digest_wanted(session=s, email=email),
        "unsubscribed": everything_off,
        "kinds": {k: default(k) for k in KINDS},
        "plans": {p: of_plan(p) for p in plan_ids},
    }


def apply(
    s: Any,
    email: str,
    change: SettingsChange,
    kinds: dict[str, str | None],
    *,
    plan_id: str | None,
    subscribe: bool = False,
) -> None:
    """Store what was validated: settings, and kinds for ``plan_id`` (None: every plan).
    ``subscribe`` takes back an unsubscribe from everything about that plan (or from all)."""
    if change.time_zone or change.digest_weekday is not None or change.digest_hour is not None:
        persistence.set_notify_settings(
            session=s,
            email=email,
            time_zone=change.time_zone,
            digest_weekday=change.digest_weekday,
            digest_hour=change.digest_hour,
        )
    if change.digest is not None:
        persistence.set_notification_mode(
            session=s,
            email=email,
            plan_id=None,
            kind=DIGEST,
            mode="immediate" if change.digest else "off",
        )
    if subscribe:
        persistence.resubscribe(session=s, email=email, plan_id=plan_id)
    for kind, mode in kinds.items():
        persistence.set_notification_mode(
            session=s, email=email, plan_id=plan_id, kind=kind, mode=mode
        )
