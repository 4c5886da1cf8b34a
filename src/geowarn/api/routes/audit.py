"""``GET /api/audit``: the audit log of the caller's unit and below (permission ``audit``)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from geowarn.api.deps import Auditor, ReadSession
from geowarn.api.schemas.common import Page
from geowarn.api.schemas.sites import AuditEntryPublic
from geowarn.api.scoping import page, scope_filter
from geowarn.audit.models import AuditEntry
from geowarn.auth.tokens import as_utc

router = APIRouter(tags=["audit"])


@router.get("/audit", response_model=Page[AuditEntryPublic])
def audit_log(
    session: ReadSession,
    user: Auditor,
    entity: Annotated[str | None, Query(max_length=40, description="table name, e.g. hazard_site")] = None,
    entity_id: Annotated[str | None, Query(max_length=64)] = None,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=16)] = None,
    since: dt.datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[AuditEntryPublic]:
    """Entries whose unit lies in the caller's scope, newest first."""
    stmt = select(AuditEntry).where(scope_filter(AuditEntry, user)).order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    if entity:
        stmt = stmt.where(AuditEntry.entity == entity)
    if entity_id:
        stmt = stmt.where(AuditEntry.entity_id == entity_id)
    if actor:
        stmt = stmt.where(AuditEntry.actor == actor)
    if action:
        stmt = stmt.where(AuditEntry.action == action)
    if since is not None:
        stmt = stmt.where(AuditEntry.at >= as_utc(since))
    rows, total = page(session, stmt, limit, offset)
    return Page[AuditEntryPublic](
        items=[AuditEntryPublic.model_validate(e) for e in rows], total=total, limit=limit, offset=offset
    )
