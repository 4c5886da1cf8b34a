"""Login (OAuth2 password form → bearer token), the caller's profile, logout."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from fastapi.security import OAuth2PasswordRequestForm

from geowarn.api.deps import CurrentCaller, DbDep
from geowarn.api.schemas.admin import Me, TokenResponse, UserPublic
from geowarn.audit.hook import record
from geowarn.auth import tokens
from geowarn.auth.roles import ROLE_PERMISSIONS, Role
from geowarn.auth.service import authenticate
from geowarn.config import Settings, get_settings

router = APIRouter(prefix="/auth", tags=["auth"])


def app_settings(request: Request) -> Settings:
    settings: Settings | None = getattr(request.app.state, "settings", None)
    return settings if settings is not None else get_settings()


@router.post("/token", response_model=TokenResponse)
def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    db: DbDep,
    settings: Annotated[Settings, Depends(app_settings)],
) -> TokenResponse:
    """Exchange username and password for a bearer token valid ``token_ttl_hours``."""
    with db.write() as s:
        user = authenticate(s, form.username, form.password)
        issued = tokens.issue_login_token(s, user, settings.token_ttl_hours)
        expires_at = issued.record.expires_at
    return TokenResponse(access_token=issued.secret, expires_at=expires_at)


@router.get("/me", response_model=Me)
def me(caller: CurrentCaller) -> Me:
    user = caller.user
    perms = sorted(p.value for p in ROLE_PERMISSIONS.get(Role(user.role), frozenset()))
    return Me(**UserPublic.model_validate(user).model_dump(), permissions=perms)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(caller: CurrentCaller, db: DbDep) -> None:
    """Revoke the token this request was made with."""
    with db.write(actor=caller.user) as s:
        tokens.revoke(s, caller.token_id)
        record(s, "logout", "app_user", str(caller.user.id), caller.user.unit_code, {"token_id": caller.token_id})
