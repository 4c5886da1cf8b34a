"""Dependencies of the routes: the database, sessions, the caller and permission checks.

* ``ReadSession``  — a reading session (rolled back at the end).
* ``WriteSession`` — a writing session acting for the caller (``db.write(actor=user)``), so the
  audit log names the user; it commits when the route returns, before the response is sent, so
  a failed commit becomes an error response rather than a lost write.
* ``CurrentUser``  — the user of the ``Authorization: Bearer gw_…`` token (401 otherwise); verified
  tokens are reused for ``Settings.token_cache_seconds`` (``geowarn.auth.token_cache``).
* ``require(Permission.X)`` — 403 unless the caller's role has the permission.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session

from geowarn.auth import tokens
from geowarn.auth.models import User
from geowarn.auth.roles import ROLE_ZH, Permission, Role, has_permission
from geowarn.config import Settings, get_settings
from geowarn.db import Database, get_database
from geowarn.errors import AuthenticationFailed, PermissionDenied

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/auth/token", auto_error=False)


async def get_db(request: Request) -> Database:  # async: no I/O, so no thread hop
    db: Database | None = getattr(request.app.state, "db", None)
    return db if db is not None else get_database()


DbDep = Annotated[Database, Depends(get_db)]


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated caller: the user (detached, read-only) and the token used."""

    user: User
    token_id: int


def app_settings(request: Request) -> Settings:
    settings: Settings | None = getattr(request.app.state, "settings", None)
    return settings if settings is not None else get_settings()


def current_caller(request: Request, db: DbDep, token: Annotated[str | None, Depends(oauth2_scheme)]) -> Caller:
    if not token:
        raise AuthenticationFailed("a bearer token is required", message_zh="请先登录")
    token_id, user = tokens.verify(db, token, cache_seconds=app_settings(request).token_cache_seconds)
    return Caller(user, token_id)


async def current_user(caller: Annotated[Caller, Depends(current_caller)]) -> User:
    return caller.user


CurrentCaller = Annotated[Caller, Depends(current_caller)]
CurrentUser = Annotated[User, Depends(current_user)]


def require(permission: Permission) -> Any:
    """A dependency (``Depends``) giving the current user if their role has ``permission``."""

    async def check(user: CurrentUser) -> User:  # async: a pure check, run without a thread hop
        if not has_permission(user.role, permission):
            try:
                role_zh = ROLE_ZH[Role(user.role)]
            except ValueError:
                role_zh = user.role
            raise PermissionDenied(
                f"the role {user.role!r} lacks the permission {permission.value!r}",
                message_zh=f"角色“{role_zh}”没有此项权限",
            )
        return user

    return Depends(check)


def _read_session(db: DbDep) -> Iterator[Session]:
    with db.read() as s:
        yield s


def _write_session(db: DbDep, user: CurrentUser) -> Iterator[Session]:
    with db.write(actor=user) as s:
        yield s


ReadSession = Annotated[Session, Depends(_read_session, scope="function")]
WriteSession = Annotated[Session, Depends(_write_session, scope="function")]

Reader = Annotated[User, require(Permission.READ)]
Writer = Annotated[User, require(Permission.WRITE)]
Admin = Annotated[User, require(Permission.MANAGE_USERS)]
Auditor = Annotated[User, require(Permission.AUDIT)]


def personal(user: User) -> bool:
    """True when the user may see personal data unmasked."""
    return has_permission(user.role, Permission.PERSONAL_DATA)
