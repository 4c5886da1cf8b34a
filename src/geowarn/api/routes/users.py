"""``/api/users`` and ``/api/tokens``: accounts and integration tokens, managed by administrators.

An administrator sees and manages users of their own unit and below only, and never gives a role
above their own (``auth.service.check_can_manage``). Users are deactivated, not deleted; tokens
are revoked, not deleted.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from geowarn.api.deps import Admin, CurrentUser, ReadSession, WriteSession
from geowarn.api.schemas.admin import ApiTokenCreate, ApiTokenIssued, ApiTokenPublic, UserCreate, UserPublic, UserUpdate
from geowarn.api.schemas.common import Page
from geowarn.api.scoping import check_ref, check_unit, get_scoped, not_found, page, scope_filter
from geowarn.audit.hook import record
from geowarn.auth import tokens
from geowarn.auth.models import ApiToken, User
from geowarn.auth.roles import Permission, Role, has_permission
from geowarn.auth.scope import in_scope
from geowarn.auth.service import check_can_manage, create_user, parse_role, set_password
from geowarn.db import utcnow
from geowarn.errors import InvalidInput
from geowarn.inventory.models import Person

router = APIRouter(tags=["users"])


@router.get("/users", response_model=Page[UserPublic])
def list_users(
    session: ReadSession,
    user: Admin,
    role: Role | None = None,
    active: bool | None = None,
    q: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[UserPublic]:
    stmt = select(User).where(scope_filter(User, user)).order_by(User.username)
    if role is not None:
        stmt = stmt.where(User.role == role.value)
    if active is not None:
        stmt = stmt.where(User.active == active)
    if q:
        stmt = stmt.where(User.username.icontains(q, autoescape=True) | User.display_name.icontains(q, autoescape=True))
    rows, total = page(session, stmt, limit, offset)
    return Page[UserPublic](items=[UserPublic.model_validate(u) for u in rows], total=total, limit=limit, offset=offset)


@router.get("/users/{user_id}", response_model=UserPublic)
def get_user(user_id: int, session: ReadSession, user: Admin) -> UserPublic:
    return UserPublic.model_validate(get_scoped(session, User, user_id, user))


@router.post("/users", response_model=UserPublic, status_code=status.HTTP_201_CREATED)
def add_user(body: UserCreate, session: WriteSession, user: Admin) -> UserPublic:
    check_unit(session, user, body.unit_code)
    check_ref(session, Person, body.person_id, user, "person_id")
    created = create_user(
        session,
        body.username,
        body.password,
        body.role.value,
        body.unit_code,
        display_name=body.display_name,
        person_id=body.person_id,
        created_by=user,
    )
    return UserPublic.model_validate(created)


@router.patch("/users/{user_id}", response_model=UserPublic)
def update_user(user_id: int, body: UserUpdate, session: WriteSession, user: Admin) -> UserPublic:
    target = get_scoped(session, User, user_id, user, for_update=True)
    data = body.model_dump(exclude_unset=True)
    if target.id == user.id and (data.get("active") is False or data.get("role") not in (None, user.role)):
        raise InvalidInput("you cannot deactivate or demote yourself", message_zh="不能停用自己的账号或降低自己的角色")
    check_can_manage(user, target.unit_code, parse_role(target.role))
    new_unit = data.get("unit_code") or target.unit_code
    new_role = parse_role(data.get("role") or target.role)
    if new_unit != target.unit_code:
        check_unit(session, user, new_unit)
    check_can_manage(user, new_unit, new_role)
    check_ref(session, Person, data.get("person_id"), user, "person_id")
    for key in ("display_name", "person_id"):
        if key in data:
            setattr(target, key, data[key])
    target.unit_code, target.role = new_unit, new_role.value
    if data.get("password"):
        set_password(target, data["password"])
    if data.get("active") is not None:
        target.active = data["active"]
        if not target.active:
            tokens.revoke_all(session, target.id)
    session.flush()
    return UserPublic.model_validate(target)


@router.get("/users/{user_id}/tokens", response_model=list[ApiTokenPublic])
def list_tokens(user_id: int, session: ReadSession, user: Admin) -> list[ApiTokenPublic]:
    target = get_scoped(session, User, user_id, user)
    rows = session.scalars(select(ApiToken).where(ApiToken.user_id == target.id).order_by(ApiToken.id))
    return [ApiTokenPublic.model_validate(t) for t in rows]


@router.post("/users/{user_id}/tokens", response_model=ApiTokenIssued, status_code=status.HTTP_201_CREATED)
def add_token(user_id: int, body: ApiTokenCreate, session: WriteSession, user: Admin) -> ApiTokenIssued:
    """A named token for an integration; the secret is in this response only."""
    target = get_scoped(session, User, user_id, user)
    check_can_manage(user, target.unit_code, parse_role(target.role))
    expires = tokens.as_utc(body.expires_at)
    if expires is not None and expires <= utcnow():
        raise InvalidInput("expires_at lies in the past", message_zh="过期时间不能早于现在")
    issued = tokens.issue_token(session, target, name=body.name, expires_at=expires)
    record(
        session,
        "create",
        "api_token",
        str(issued.record.id),
        target.unit_code,
        {"user_id": target.id, "name": body.name, "expires_at": expires.isoformat() if expires else None},
    )
    return ApiTokenIssued(**ApiTokenPublic.model_validate(issued.record).model_dump(), token=issued.secret)


def _token_in_reach(session: Session, token_id: int, user: User) -> ApiToken:
    token = session.get(ApiToken, token_id)
    if token is None:
        raise not_found("api_token", token_id)
    if token.user_id == user.id:
        return token
    if has_permission(user.role, Permission.MANAGE_USERS) and in_scope(user.unit_code, token.user.unit_code):
        return token
    raise not_found("api_token", token_id)


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_token(token_id: int, session: WriteSession, user: CurrentUser) -> None:
    """Revoke a token: one's own, or one of a user an administrator manages."""
    token = _token_in_reach(session, token_id, user)
    tokens.revoke(session, token.id)
    record(session, "revoke", "api_token", str(token.id), token.user.unit_code, {"user_id": token.user_id})
