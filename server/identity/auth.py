"""Who is asking: passwords, signed session cookies, API tokens and CSRF tokens.

Every credential is signed with its own purpose (an itsdangerous salt), so a token made for
one use is rejected by every other; each also has a database row, so it can be revoked.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import anyio
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer
from sqlalchemy.orm import Session

import persistence
from server.store import Store

from .identity import Identity

SESSION_COOKIE = "tandem_session"
TOKEN_PREFIX = "tdm_"
DEFAULT_TOKEN_DAYS = 365
# A token is a password that never changes: two years is as long as one may live.
MAX_TOKEN_DAYS = 730

_hasher = PasswordHasher()
# A real hash to verify against when the email is unknown, so timing does not reveal accounts:
# of a random password nobody kept, with the hasher's parameters (a test checks they match).
# Written out rather than computed at import, which cost argon2's 64 MiB at every start.
DUMMY_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$Ol1mPYuxM7SczWtjhQperA"
    "$6smJyHuombNXuCM8chOpY2l/y5o7lGGQZzxWdRNSF7o"
)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class Credentials:
    """What came with a request: at most one of these is used, in this order."""

    bearer: str | None = None
    query_token: str | None = None
    cookie: str | None = None


class Auth:
    def __init__(
        self, secret_key: str, store: Store, *, session_days: int, max_hashes: int = 2
    ) -> None:
        self._secret = secret_key
        self._store = store
        self.session_days = session_days
        # Each argon2 hash takes 64 MiB while it runs: concurrent sign-ins would add up to
        # gigabytes. Past this many at once they wait (off the event loop) for a turn.
        self._hashing = anyio.CapacityLimiter(max_hashes)
        self._sessions = URLSafeTimedSerializer(secret_key, salt="tandem.session")
        self._tokens = URLSafeSerializer(secret_key, salt="tandem.api-token")

    # Passwords, hashed and checked in worker threads, a bounded number at once

    async def hash_password(self, password: str) -> str:
        return await anyio.to_thread.run_sync(hash_password, password, limiter=self._hashing)

    async def verify_password(self, password_hash: str | None, password: str) -> bool:
        return await anyio.to_thread.run_sync(
            verify_password, password_hash, password, limiter=self._hashing
        )

    # Browser sessions

    async def start_session(self, user_id: int) -> str:
        """Create a session row and return the signed cookie value."""
        sid = secrets.token_urlsafe(32)
        expires = datetime.now(UTC) + timedelta(days=self.session_days)
        await self._store.run(
            lambda s: persistence.create_session(
                session=s, session_id=sid, user_id=user_id, expires_at=expires
            )
        )
        return self._sessions.dumps(sid)

    def session_id(self, cookie: str | None) -> str | None:
        if not cookie:
            return None
        try:
            sid = self._sessions.loads(cookie, max_age=self.session_days * 86400)
        except (BadSignature, SignatureExpired):
            return None
        return sid if isinstance(sid, str) else None

    async def end_session(self, cookie: str | None) -> None:
        sid = self.session_id(cookie)
        if sid:
            await self._store.run(lambda s: persistence.revoke_session(session=s, session_id=sid))

    def csrf_token(self, cookie: str | None) -> str:
        sid = self.session_id(cookie) or ""
        return hmac.new(self._secret.encode(), b"csrf:" + sid.encode(), hashlib.sha256).hexdigest()

    def check_csrf(self, cookie: str | None, presented: str | None) -> bool:
        return bool(presented) and hmac.compare_digest(self.csrf_token(cookie), presented or "")

    # API tokens

    async def create_token(
        self, user_id: int, *, label: str | None = None, days: int | None = None
    ) -> tuple[str, persistence.TokenRecord]:
        days = DEFAULT_TOKEN_DAYS if days is None else days
        # "days or DEFAULT" once turned 0 into a year and let -1 make a token that was expired
        # yet listed as active.
        if not 1 <= days <= MAX_TOKEN_DAYS:
            raise ValueError(f"days must be from 1 to {MAX_TOKEN_DAYS}")
        token_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(24)
        # Every token expires: a year unless asked otherwise.
        expires = datetime.now(UTC) + timedelta(days=days)
        record = await self._store.run(
            lambda s: persistence.create_token(
                session=s,
                token_id=token_id,
                user_id=user_id,
                secret_hash=hashlib.sha256(secret.encode()).hexdigest(),
                label=label,
                expires_at=expires,
            )
        )
        return TOKEN_PREFIX + self._tokens.dumps([token_id, secret]), record

    def _parse_token(self, token: str) -> tuple[str, str] | None:
        if not token.startswith(TOKEN_PREFIX):
            return None
        try:
            value = self._tokens.loads(token[len(TOKEN_PREFIX) :])
        except BadSignature:
            return None
        if not (
            isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)
        ):
            return None
        return value[0], value[1]

    # Resolving a caller

    async def identify(self, creds: Credentials) -> Identity | None:
        """The caller's identity, or None if no credential is valid."""
        token = creds.bearer or creds.query_token
        if token:
            return await self._identify_token(token)
        sid = self.session_id(creds.cookie)
        if sid is None:
            return None
        user = await self._store.run(lambda s: persistence.session_user(session=s, session_id=sid))
        return None if user is None else _account(user, "session", sid)

    async def _identify_token(self, token: str) -> Identity | None:
        parsed = self._parse_token(token)
        if parsed is None:
            return None
        token_id, secret = parsed

        def check(s: Session) -> persistence.UserRecord | None:
            found = persistence.token_secret(session=s, token_id=token_id)
            if found is None:
                return None
            record, secret_hash = found
            digest = hashlib.sha256(secret.encode()).hexdigest()
            if not hmac.compare_digest(digest, secret_hash) or record.revoked_at is not None:
                return None
            if record.expires_at is not None and record.expires_at <= datetime.now(UTC):
                return None
            user = persistence.get_user(session=s, user_id=record.user_id)
            if user is None or user.deactivated_at is not None:
                return None
            persistence.touch_token(session=s, token_id=token_id)
            return user

        user = await self._store.run(check)
        return None if user is None else _account(user, "token", token_id)


def _account(user: persistence.UserRecord, via: str, credential_id: str) -> Identity:
    """A signed-in account's identity, by session or by API token."""
    return Identity(
        user.id,
        user.name,
        user.email,
        via,
        credential_id,
        workspace_owner=user.is_owner,
        staff=user.is_staff,
    )
