"""Administrative units, users, tokens, the audit log, import batches and health."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from geowarn.api.schemas.common import GeoJSONOut, Input, Public, Timestamps, UnitCode, UtcDatetime
from geowarn.auth.roles import Role

# --- units ------------------------------------------------------------------------------------


class UnitNode(BaseModel):
    code: str
    name: str
    level: str
    parent_code: str | None = None
    children: list[UnitNode] = Field(default_factory=list)


class UnitPublic(Public):
    code: str
    name: str
    level: str
    parent_code: str | None = None
    boundary: GeoJSONOut = Field(default=None, description="GeoJSON MultiPolygon, when asked for")


class UnitCreate(Input):
    code: UnitCode
    name: str = Field(min_length=1, max_length=100)
    boundary: dict[str, Any] | None = None


class UnitUpdate(Input):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    boundary: dict[str, Any] | None = None


# --- auth, users and tokens -------------------------------------------------------------------


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_at: UtcDatetime | None = None


class UserPublic(Public, Timestamps):
    id: int
    username: str
    display_name: str | None = None
    role: str
    unit_code: str
    person_id: int | None = None
    active: bool
    last_login_at: UtcDatetime | None = None


class Me(UserPublic):
    permissions: list[str]


class UserCreate(Input):
    username: str = Field(min_length=1, max_length=64, pattern=r"^[\w.\-@]+$")
    password: str = Field(min_length=1, max_length=200)
    role: Role
    unit_code: UnitCode
    display_name: str | None = Field(default=None, max_length=64)
    person_id: int | None = None


class UserUpdate(Input):
    display_name: str | None = Field(default=None, max_length=64)
    role: Role | None = None
    unit_code: UnitCode | None = None
    person_id: int | None = None
    active: bool | None = None
    password: str | None = Field(default=None, min_length=1, max_length=200)


class ApiTokenCreate(Input):
    name: str = Field(min_length=1, max_length=64)
    expires_at: UtcDatetime | None = Field(default=None, description="omit for a token that does not expire")


class ApiTokenPublic(Public):
    id: int
    user_id: int
    name: str
    created_at: UtcDatetime
    expires_at: UtcDatetime | None = None
    last_used_at: UtcDatetime | None = None
    revoked: bool


class ApiTokenIssued(ApiTokenPublic):
    token: str = Field(description="shown once; only its SHA-256 is stored")


# --- import batches ---------------------------------------------------------------------------


class ImportBatchPublic(Public):
    id: int
    at: UtcDatetime
    actor: str
    kind: str
    filename: str
    sha256: str
    file_format: str
    source_crs: str | None = None
    unit_code: str | None = None
    rows_total: int
    rows_created: int
    rows_updated: int
    rows_unchanged: int
    rows_rejected: int
    status: str
    summary: str | None = None


class ImportRejectionPublic(Public):
    id: int
    batch_id: int
    row: int
    field: str
    reason: str
    raw: dict[str, Any]


# --- health -----------------------------------------------------------------------------------


class Health(BaseModel):
    status: str
    backend: str
    version: str
    migration: str | None
