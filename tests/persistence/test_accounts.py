"""People, browser sessions and API tokens, on SQLite and PostgreSQL after migrations."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.orm import Session, sessionmaker

import persistence

Factory = sessionmaker[Session]


def unique_email(domain: str = "example.com") -> str:
    return f"user-{uuid.uuid4().hex[:10]}@{domain}"


def new_user(factory: Factory, email: str | None = None, **kw: object) -> persistence.UserRecord:
    with persistence.transaction(factory) as s:
        return persistence.create_user(
            session=s,
            email=email or unique_email(),
            name=str(kw.get("name", "Casey")),
            password_hash=kw.get("password_hash", "hash"),  # type: ignore[arg-type]
            is_owner=bool(kw.get("is_owner", False)),
        )


# Users


def test_create_user_normalises_the_email(factory: Factory) -> None:
    local = uuid.uuid4().hex[:10]
    user = new_user(factory, f"  Casey.{local}@Vendor.EXAMPLE ", name="Casey CSM", is_owner=True)
    assert user.email == f"casey.{local}@vendor.example"
    assert (user.name, user.is_owner) == ("Casey CSM", True)
    with persistence.transaction(factory) as s:
        assert persistence.get_user(session=s, user_id=user.id) == user


def test_duplicate_email_is_rejected_whatever_its_case(factory: Factory) -> None:
    email = unique_email()
    first = new_user(factory, email)
    for again in (email, email.upper(), f" {email.title()} "):
        with pytest.raises(persistence.DuplicateEmail), persistence.transaction(factory) as s:
            persistence.create_user(session=s, email=again, name="Impostor", password_hash=None)
    with persistence.transaction(factory) as s:
        found = persistence.find_user(session=s, email=email)
    assert found is not None and found[0] == first


def test_duplicate_email_is_a_value_error() -> None:
    # Callers that only know ValueError (form validation) still catch it.
    assert issubclass(persistence.DuplicateEmail, ValueError)


def test_find_user_is_case_insensitive_and_returns_the_hash(factory: Factory) -> None:
    email = unique_email()
    user = new_user(factory, email, password_hash="argon2-hash")
    with persistence.transaction(factory) as s:
        assert persistence.find_user(session=s, email=f"  {email.upper()}  ") == (
            user,
            "argon2-hash",
        )
        assert persistence.find_user(session=s, email=unique_email()) is None
        persistence.set_password_hash(session=s, user_id=user.id, password_hash="new-hash")
    with persistence.transaction(factory) as s:
        assert persistence.find_user(session=s, email=email) == (user, "new-hash")


def test_user_without_a_password(factory: Factory) -> None:
    email = unique_email()
    user = new_user(factory, email, password_hash=None)
    with persistence.transaction(factory) as s:
        assert persistence.find_user(session=s, email=email) == (user, None)


def test_count_get_and_users_by_id(factory: Factory) -> None:
    with persistence.transaction(factory) as s:
        before = persistence.count_users(session=s)
    a, b = new_user(factory), new_user(factory)
    with persistence.transaction(factory) as s:
        assert persistence.count_users(session=s) == before + 2
        assert persistence.get_user(session=s, user_id=b.id + 10_000) is None
        assert persistence.users_by_id(session=s, ids=[]) == {}
        assert persistence.users_by_id(session=s, ids=[a.id, b.id, b.id + 10_000]) == {
            a.id: a,
            b.id: b,
        }


# Browser sessions


def session_user(factory: Factory, sid: str) -> persistence.UserRecord | None:
    with persistence.transaction(factory) as s:
        return persistence.session_user(session=s, session_id=sid)


def start_session(factory: Factory, user_id: int, expires_at: datetime) -> str:
    sid = uuid.uuid4().hex
    with persistence.transaction(factory) as s:
        persistence.create_session(
            session=s, session_id=sid, user_id=user_id, expires_at=expires_at
        )
    return sid


def test_live_session_belongs_to_its_user(factory: Factory) -> None:
    user = new_user(factory)
    sid = start_session(factory, user.id, datetime.now(UTC) + timedelta(days=14))
    assert session_user(factory, sid) == user


def test_unknown_session_is_none(factory: Factory) -> None:
    assert session_user(factory, "no-such-session") is None


def test_expired_session_is_none(factory: Factory) -> None:
    user = new_user(factory)
    sid = start_session(factory, user.id, datetime.now(UTC) - timedelta(seconds=1))
    assert session_user(factory, sid) is None


def test_session_expiry_is_compared_in_utc(factory: Factory) -> None:
    # Expiry given in another time zone: an hour from now is live, an hour ago is not.
    user = new_user(factory)
    tz = timezone(timedelta(hours=-8))
    live = start_session(factory, user.id, datetime.now(tz) + timedelta(hours=1))
    dead = start_session(factory, user.id, datetime.now(tz) - timedelta(hours=1))
    assert session_user(factory, live) == user
    assert session_user(factory, dead) is None


def test_revoked_session_is_none_and_revoking_again_is_harmless(factory: Factory) -> None:
    user = new_user(factory)
    sid = start_session(factory, user.id, datetime.now(UTC) + timedelta(days=1))
    other = start_session(factory, user.id, datetime.now(UTC) + timedelta(days=1))
    for _ in range(2):
        with persistence.transaction(factory) as s:
            persistence.revoke_session(session=s, session_id=sid)
        assert session_user(factory, sid) is None
    # Only that session: the same user's other sign-in still works.
    assert session_user(factory, other) == user


# API tokens


def make_token(
    factory: Factory, user_id: int, *, label: str | None = None, expires_at: datetime | None = None
) -> tuple[persistence.TokenRecord, str]:
    secret_hash = hashlib.sha256(uuid.uuid4().bytes).hexdigest()
    with persistence.transaction(factory) as s:
        record = persistence.create_token(
            session=s,
            token_id=uuid.uuid4().hex[:16],
            user_id=user_id,
            secret_hash=secret_hash,
            label=label,
            expires_at=expires_at,
        )
    return record, secret_hash


def test_token_is_stored_with_its_hash(factory: Factory) -> None:
    user = new_user(factory)
    expires = datetime.now(UTC) + timedelta(days=30)
    record, secret_hash = make_token(factory, user.id, label="CI", expires_at=expires)
    assert (record.user_id, record.label, record.revoked_at, record.last_used_at) == (
        user.id,
        "CI",
        None,
        None,
    )
    assert record.expires_at == expires
    with persistence.transaction(factory) as s:
        assert persistence.token_secret(session=s, token_id=record.id) == (record, secret_hash)
        assert persistence.token_secret(session=s, token_id="nope") is None


def test_token_times_are_aware_utc(factory: Factory) -> None:
    user = new_user(factory)
    record, _ = make_token(factory, user.id, expires_at=datetime.now(UTC) + timedelta(days=1))
    with persistence.transaction(factory) as s:
        persistence.touch_token(session=s, token_id=record.id)
        persistence.revoke_token(session=s, token_id=record.id)
    with persistence.transaction(factory) as s:
        found = persistence.token_secret(session=s, token_id=record.id)
    assert found is not None
    stored = found[0]
    for at in (stored.created_at, stored.expires_at, stored.revoked_at, stored.last_used_at):
        assert at is not None and at.utcoffset() == timedelta(0)


def test_token_expiry_in_another_time_zone_reads_back_as_the_same_instant(factory: Factory) -> None:
    user = new_user(factory)
    expires = datetime.now(timezone(timedelta(hours=5, minutes=30))) + timedelta(hours=1)
    record, _ = make_token(factory, user.id, expires_at=expires)
    with persistence.transaction(factory) as s:
        found = persistence.token_secret(session=s, token_id=record.id)
    assert found is not None and found[0].expires_at == expires


def test_touch_token_records_last_use(factory: Factory) -> None:
    user = new_user(factory)
    record, _ = make_token(factory, user.id)
    before = datetime.now(UTC)
    with persistence.transaction(factory) as s:
        persistence.touch_token(session=s, token_id=record.id)
    with persistence.transaction(factory) as s:
        found = persistence.token_secret(session=s, token_id=record.id)
    assert found is not None
    assert found[0].last_used_at is not None and found[0].last_used_at >= before


def test_revoke_token_once(factory: Factory) -> None:
    user = new_user(factory)
    record, _ = make_token(factory, user.id)
    with persistence.transaction(factory) as s:
        assert persistence.revoke_token(session=s, token_id=record.id) is True
    with persistence.transaction(factory) as s:
        found = persistence.token_secret(session=s, token_id=record.id)
        first_revoked_at = found[0].revoked_at if found else None
        assert first_revoked_at is not None
        # Already revoked or unknown: nothing to do, and the first revocation time stays.
        assert persistence.revoke_token(session=s, token_id=record.id) is False
        assert persistence.revoke_token(session=s, token_id="no-such-token") is False
    with persistence.transaction(factory) as s:
        found = persistence.token_secret(session=s, token_id=record.id)
    assert found is not None and found[0].revoked_at == first_revoked_at


def test_list_tokens_is_the_users_own_oldest_first_revoked_included(factory: Factory) -> None:
    user, someone_else = new_user(factory), new_user(factory)
    first, _ = make_token(factory, user.id, label="first")
    make_token(factory, someone_else.id, label="not mine")
    second, _ = make_token(factory, user.id, label="second")
    with persistence.transaction(factory) as s:
        persistence.revoke_token(session=s, token_id=first.id)
    with persistence.transaction(factory) as s:
        listed = persistence.list_tokens(session=s, user_id=user.id)
        assert persistence.list_tokens(session=s, user_id=user.id + 10_000) == []
    assert [(t.id, t.label) for t in listed] == [(first.id, "first"), (second.id, "second")]
    assert listed[0].revoked_at is not None and listed[1].revoked_at is None
