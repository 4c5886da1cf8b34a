"""Bearer tokens: ``gw_`` followed by 256 random bits, stored only as their SHA-256.

Two kinds share one table: login tokens (name ``login``, expiring after ``Settings.token_ttl_hours``)
and named, long-lived API tokens for integrations that an administrator creates, with an
optional expiry. A token is revoked, never deleted, so the audit trail keeps its history.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from geowarn.auth import token_cache
from geowarn.auth.models import ApiToken, User
from geowarn.db import Database, utcnow
from geowarn.errors import AuthenticationFailed

PREFIX = "gw_"
LOGIN_TOKEN_NAME = "login"
#: ``last_used_at`` is written at most this often per token (one write, not one per request).
TOUCH_INTERVAL = dt.timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A freshly made token: ``secret`` is shown once and never stored."""

    secret: str
    record: ApiToken


def new_secret() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def issue_token(
    session: Session,
    user: User,
    *,
    name: str = LOGIN_TOKEN_NAME,
    expires_at: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> IssuedToken:
    """Make a token for ``user``; ``expires_at=None`` makes a token that does not expire."""
    secret = new_secret()
    record = ApiToken(
        user_id=user.id,
        token_hash=hash_token(secret),
        name=name[:64],
        created_at=now or utcnow(),
        expires_at=expires_at,
        revoked=False,
    )
    session.add(record)
    session.flush()
    return IssuedToken(secret, record)


def issue_login_token(session: Session, user: User, ttl_hours: int, now: dt.datetime | None = None) -> IssuedToken:
    now = now or utcnow()
    return issue_token(session, user, expires_at=now + dt.timedelta(hours=ttl_hours), now=now)


_INVALID = AuthenticationFailed(
    "invalid, expired or revoked token", message_zh="登录凭证无效、已过期或已注销，请重新登录"
)


def lookup(session: Session, secret: str, now: dt.datetime | None = None) -> ApiToken:
    """The live token record for ``secret`` (its user loaded), or ``AuthenticationFailed``."""
    if not secret.startswith(PREFIX) or len(secret) > 200:
        raise _INVALID
    record = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(secret)))
    if record is None or record.revoked:
        raise _INVALID
    expires = as_utc(record.expires_at)
    if expires is not None and expires <= (now or utcnow()):
        raise _INVALID
    if not record.user.active:
        raise _INVALID
    return record


def verify(
    db: Database, secret: str, *, cache_seconds: float = 0.0, now: dt.datetime | None = None
) -> tuple[int, User]:
    """The token id and a detached copy of the user of a live token, or ``AuthenticationFailed``.

    With ``cache_seconds > 0`` a verified token is reused from ``token_cache.CACHE`` for that long
    (expiry still checked exactly on each use; see that module for what revocation then means).
    The token's ``last_used_at`` is written at most every ``TOUCH_INTERVAL``.
    """
    if not secret.startswith(PREFIX) or len(secret) > 200:
        raise _INVALID
    now = now or utcnow()
    digest = hash_token(secret)
    cache = token_cache.CACHE
    if cache_seconds > 0:
        hit = cache.get(db.url, digest, now)
        if hit is not None:
            return hit.token_id, hit.user()
    generation = cache.generation
    with db.read() as s:
        record = lookup(s, secret, now)
        user = record.user
        token_id, expires, stale = record.id, as_utc(record.expires_at), needs_touch(record, now)
        s.expunge(user)
    if stale:
        with db.write() as w:
            touch(w, token_id, now)
    if cache_seconds > 0:
        cache.put(db.url, digest, token_id=token_id, user=user, expires_at=expires, ttl_s=cache_seconds,
                  generation=generation)  # fmt: skip
    return token_id, user


def needs_touch(record: ApiToken, now: dt.datetime | None = None) -> bool:
    last = as_utc(record.last_used_at)
    return last is None or (now or utcnow()) - last >= TOUCH_INTERVAL


def touch(session: Session, token_id: int, now: dt.datetime | None = None) -> None:
    """Record the use of a token (Core update: no audit noise, no version bump)."""
    session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now or utcnow()))


def revoke(session: Session, token_id: int) -> None:
    """Revoke a token; this process's token cache forgets it at once and again at commit."""
    session.execute(update(ApiToken).where(ApiToken.id == token_id).values(revoked=True))
    token_cache.forget_token(session, token_id)


def revoke_all(session: Session, user_id: int) -> None:
    session.execute(update(ApiToken).where(ApiToken.user_id == user_id).values(revoked=True))
    token_cache.forget_user(session, user_id)
