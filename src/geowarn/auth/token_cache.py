"""A short-lived in-process cache of verified bearer tokens: token → (token id, user snapshot).

Every API request presents a token; without this cache each one costs two queries (the token, then
its user) before the route runs, a third of a map request's time. A verified token is kept for
``Settings.token_cache_seconds`` (5 s by default; 0 turns the cache off). What it means for security:

* **Expiry is exact**: the token's ``expires_at`` is kept with the entry and checked on every hit.
* **Revocation and user changes in this process are immediate**: ``tokens.revoke``/``revoke_all`` and
  any ORM update or delete of a ``User`` (role, unit, ``active``, password) drop the entries at once,
  and again when the transaction commits (so a request that re-read the old row meanwhile cannot keep it).
* **In other processes** (several ``geowarn serve --workers``, a CLI command) a revoked token or a
  changed user is served from the cache for at most ``token_cache_seconds`` more.

Entries are keyed by the database URL and the token's SHA-256, never by user or unit: a token is only
ever answered with its own user. Each hit gets its own detached ``User`` copy, as a database lookup did.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session, make_transient_to_detached, object_session

from geowarn.auth.models import User

#: Entries kept at most (one per live token in use); past it, stale entries go, then all.
MAX_ENTRIES = 10_000
_PENDING = "geowarn.token_cache.users"  # Session.info key: users to drop again after commit


@dataclass(frozen=True, slots=True)
class CachedToken:
    token_id: int
    user_id: int
    user_values: dict[str, Any]
    expires_at: dt.datetime | None  # aware UTC, checked on every hit
    deadline: float  # clock() after which the entry is looked up again

    def user(self) -> User:
        """A fresh detached copy of the user (callers may keep or attach it, as before the cache)."""
        copy = User(**self.user_values)
        make_transient_to_detached(copy)
        return copy


class TokenCache:
    """Verified tokens of one process; ``clock`` is monotonic seconds (injectable for tests)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_entries: int = MAX_ENTRIES) -> None:
        self.clock = clock
        self.max_entries = max_entries
        self._entries: dict[tuple[str, str], CachedToken] = {}
        self._lock = threading.Lock()
        #: Moves on every drop: an entry read from the database before a drop is not stored after it.
        self.generation = 0

    def get(self, db_key: str, token_hash: str, now: dt.datetime) -> CachedToken | None:
        """The live entry of the token, or None (absent, older than its TTL, or expired at ``now``)."""
        entry = self._entries.get((db_key, token_hash))
        if entry is None:
            return None
        if entry.deadline <= self.clock() or (entry.expires_at is not None and entry.expires_at <= now):
            self._entries.pop((db_key, token_hash), None)
            return None
        return entry

    def put(
        self,
        db_key: str,
        token_hash: str,
        *,
        token_id: int,
        user: User,
        expires_at: dt.datetime | None,
        ttl_s: float,
        generation: int,
    ) -> None:
        """Store a token verified in the database; skipped when something was dropped since ``generation``
        was read (the row read may predate a revocation)."""
        values = {a.key: getattr(user, a.key) for a in inspect(User).column_attrs}
        entry = CachedToken(token_id, user.id, values, expires_at, self.clock() + ttl_s)
        with self._lock:
            if generation != self.generation:
                return
            if len(self._entries) >= self.max_entries:
                now = self.clock()
                self._entries = {k: e for k, e in self._entries.items() if e.deadline > now}
                if len(self._entries) >= self.max_entries:
                    self._entries.clear()
            self._entries[(db_key, token_hash)] = entry

    def drop_token(self, token_id: int) -> None:
        with self._lock:
            self.generation += 1
            for key in [k for k, e in self._entries.items() if e.token_id == token_id]:
                del self._entries[key]

    def drop_user(self, user_id: int) -> None:
        with self._lock:
            self.generation += 1
            for key in [k for k, e in self._entries.items() if e.user_id == user_id]:
                del self._entries[key]

    def clear(self) -> None:
        with self._lock:
            self.generation += 1
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


#: The process's cache, shared by every app of the process (entries are keyed by database URL).
CACHE = TokenCache()


def forget_token(session: Session, token_id: int) -> None:
    """Drop a token now and again when ``session`` commits (``tokens.revoke`` calls this)."""
    CACHE.drop_token(token_id)
    session.info.setdefault(_PENDING, set()).add(("token", token_id))


def forget_user(session: Session | None, user_id: int) -> None:
    """Drop every token of a user now and again when ``session`` commits."""
    CACHE.drop_user(user_id)
    if session is not None:
        session.info.setdefault(_PENDING, set()).add(("user", user_id))


@event.listens_for(User, "after_update")
@event.listens_for(User, "after_delete")
def _user_changed(_mapper: Any, _conn: Any, target: User) -> None:
    forget_user(object_session(target), target.id)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    for kind, ident in session.info.pop(_PENDING, ()):
        (CACHE.drop_token if kind == "token" else CACHE.drop_user)(ident)


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, _previous: Any) -> None:
    session.info.pop(_PENDING, None)
