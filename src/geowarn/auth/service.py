"""Users: creation under the scoping rules, login, token resolution.

* Password policy: at least 10 characters and not digits only.
* Login never tells whether a username exists: every failure gives the same message and an
  unknown user costs one Argon2 verification like a known one.
* After :data:`LOCKOUT_FAILURES` failures within :data:`LOCKOUT_WINDOW` (since the last success)
  an account refuses logins until the window has passed.
* Every login attempt is written to the audit log (action ``login``), never with the password.
* An administrator creates users only in their own unit or below and never with a role above
  their own (:func:`check_can_manage`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from geowarn.admin.codes import is_valid_code
from geowarn.audit.hook import record
from geowarn.audit.models import AuditEntry
from geowarn.auth import passwords, tokens
from geowarn.auth.models import User
from geowarn.auth.roles import Permission, Role, has_permission
from geowarn.auth.scope import in_scope
from geowarn.db import utcnow
from geowarn.errors import AuthenticationFailed, Conflict, InvalidInput, PermissionDenied

MIN_PASSWORD_LENGTH = 10
LOCKOUT_FAILURES = 10
LOCKOUT_WINDOW = dt.timedelta(minutes=15)

#: Order of roles for "never above their own".
ROLE_RANK: dict[Role, int] = {
    Role.VIEWER: 0,
    Role.MONITOR: 1,
    Role.WEATHER: 1,
    Role.OPERATOR: 2,
    Role.ADMINISTRATOR: 3,
}

LOGIN_FAILED_MESSAGE = "invalid username or password, or too many attempts"
LOGIN_FAILED_ZH = "用户名或密码错误（连续失败过多时请15分钟后再试）"


def check_password_policy(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            f"password must have at least {MIN_PASSWORD_LENGTH} characters",
            message_zh=f"密码至少需要{MIN_PASSWORD_LENGTH}个字符",
        )
    if password.isdigit():
        raise InvalidInput("password must not be digits only", message_zh="密码不能全部是数字")


def parse_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise InvalidInput(f"unknown role {role!r}", message_zh=f"未知角色：{role}") from None


def check_can_manage(actor: User | None, unit_code: str, role: Role) -> None:
    """Refuse when ``actor`` may not give ``role`` in ``unit_code`` (None = the system, always may)."""
    if actor is None:
        return
    if not has_permission(actor.role, Permission.MANAGE_USERS):
        raise PermissionDenied("managing users needs the administrator role", message_zh="只有管理员可以管理用户")
    if not in_scope(actor.unit_code, unit_code):
        raise PermissionDenied(
            "users can only be managed in your own unit or below", message_zh="只能管理本单位及下级单位的用户"
        )
    if ROLE_RANK[role] > ROLE_RANK[parse_role(actor.role)]:
        raise PermissionDenied("cannot give a role above your own", message_zh="不能授予高于自身的角色")


def create_user(
    session: Session,
    username: str,
    password: str,
    role: str,
    unit_code: str,
    *,
    display_name: str | None = None,
    person_id: int | None = None,
    created_by: User | None = None,
) -> User:
    """Create an active user; ``created_by`` (an administrator) is held to the scoping rules."""
    username = username.strip()
    if not username or len(username) > 64:
        raise InvalidInput("username must have 1 to 64 characters", message_zh="用户名长度应为1至64个字符")
    if not is_valid_code(unit_code):
        raise InvalidInput(f"not an administrative code: {unit_code!r}", message_zh=f"行政区划代码无效：{unit_code}")
    r = parse_role(role)
    check_can_manage(created_by, unit_code, r)
    check_password_policy(password)
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"username {username!r} is taken", message_zh=f"用户名已存在：{username}")
    user = User(
        username=username,
        display_name=display_name,
        password_hash=passwords.hash_password(password),
        role=r.value,
        unit_code=unit_code,
        person_id=person_id,
        active=True,
    )
    session.add(user)
    session.flush()
    return user


def set_password(user: User, password: str) -> None:
    check_password_policy(password)
    user.password_hash = passwords.hash_password(password)


def _locked(session: Session, user: User, now: dt.datetime) -> bool:
    """True after LOCKOUT_FAILURES failures in the window with no success in between."""
    rows = session.scalars(
        select(AuditEntry.changes)
        .where(
            AuditEntry.action == "login",
            AuditEntry.entity == "app_user",
            AuditEntry.entity_id == str(user.id),
            AuditEntry.at >= now - LOCKOUT_WINDOW,
        )
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
        .limit(LOCKOUT_FAILURES)
    ).all()
    failures = 0
    for changes in rows:
        if (changes or {}).get("outcome") != "failure":
            break
        failures += 1
    return failures >= LOCKOUT_FAILURES


def _record_attempt(session: Session, user: User | None, username: str, outcome: str, reason: str | None) -> None:
    changes: dict[str, Any] = {"username": username[:64], "outcome": outcome}
    if reason:
        changes["reason"] = reason
    previous = session.info.get("actor")
    session.info["actor"] = user if user is not None and outcome == "success" else "anonymous"
    try:
        record(
            session,
            "login",
            "app_user",
            str(user.id) if user is not None else None,
            user.unit_code if user is not None else None,
            changes,
        )
    finally:
        session.info["actor"] = previous


def check_credentials(session: Session, username: str, password: str, now: dt.datetime | None = None) -> User | None:
    """The user for these credentials or None; the attempt is recorded (not committed)."""
    now = now or utcnow()
    user = session.scalar(select(User).where(User.username == username.strip()))
    if user is None:
        passwords.burn_verification_time(password)
        _record_attempt(session, None, username, "failure", "unknown_user")
        return None
    if _locked(session, user, now):
        passwords.burn_verification_time(password)
        _record_attempt(session, user, username, "failure", "locked")
        return None
    if not passwords.verify_password(user.password_hash, password):
        _record_attempt(session, user, username, "failure", "wrong_password")
        return None
    if not user.active:
        _record_attempt(session, user, username, "failure", "inactive")
        return None
    session.info["actor"] = user  # from here on the session acts for the user who logged in
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    session.execute(update(User).where(User.id == user.id).values(last_login_at=now))
    _record_attempt(session, user, username, "success", None)
    return user


def authenticate(session: Session, username: str, password: str, now: dt.datetime | None = None) -> User:
    """The user for these credentials, or ``AuthenticationFailed``.

    ``session`` must be a writing session. A failure is committed before the error is raised, so
    the record of the attempt (and the lockout count) survives the caller's rollback.
    """
    user = check_credentials(session, username, password, now)
    if user is None:
        session.commit()
        raise AuthenticationFailed(LOGIN_FAILED_MESSAGE, message_zh=LOGIN_FAILED_ZH)
    return user


def resolve_token(session: Session, token: str, now: dt.datetime | None = None) -> User:
    """The active user a live bearer token belongs to, or ``AuthenticationFailed``."""
    return tokens.lookup(session, token, now).user
