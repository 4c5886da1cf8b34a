"""A site's lifecycle: status transitions (治理、搬迁、核销) and its full history."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter
from sqlalchemy import select

from geowarn.api import site_ops
from geowarn.api.deps import Reader, ReadSession, Writer, WriteSession
from geowarn.api.schemas.sites import (
    AuditEntryPublic,
    SiteDetail,
    SiteHistory,
    SitePublic,
    StatusChangeIn,
    StatusChangePublic,
)
from geowarn.api.scoping import get_scoped, scope_filter
from geowarn.audit.hook import record
from geowarn.audit.models import AuditEntry
from geowarn.errors import InvalidInput, InvalidTransition
from geowarn.inventory.domain import SITE_STATUS_ZH, SITE_TRANSITIONS, SiteStatus
from geowarn.inventory.models import HazardSite, SiteStatusChange

router = APIRouter(prefix="/sites", tags=["sites"])


@router.post("/{site_id}/status", response_model=SiteDetail)
def change_status(site_id: int, body: StatusChangeIn, session: WriteSession, user: Writer) -> SitePublic:
    """Move a site along its lifecycle (``inventory.domain.SITE_TRANSITIONS``); 409 if not allowed."""
    site = get_scoped(session, HazardSite, site_id, user, for_update=True)
    if body.version is not None:
        site_ops.check_version(site, body.version)
    current, target = SiteStatus(site.status), body.to_status
    allowed = SITE_TRANSITIONS[current]
    if target not in allowed:
        names = ", ".join(sorted(a.value for a in allowed)) or "none"
        names_zh = "、".join(SITE_STATUS_ZH[a] for a in sorted(allowed)) or "无"
        raise InvalidTransition(
            f"a site that is {current.value} cannot become {target.value} (allowed: {names})",
            message_zh=f"隐患点当前状态为“{SITE_STATUS_ZH[current]}”，不能变更为“{SITE_STATUS_ZH[target]}”（可变更为：{names_zh}）",
        )
    if body.effective_on > site_ops.today_china() + dt.timedelta(days=1):
        raise InvalidInput("effective_on lies in the future", message_zh="生效日期不能晚于今天")
    if site.status_since is not None and body.effective_on < site.status_since:
        raise InvalidInput(
            f"effective_on precedes the current status's date {site.status_since}",
            message_zh=f"生效日期不能早于当前状态的日期 {site.status_since}",
        )
    site.status_history.append(
        SiteStatusChange(
            from_status=current.value,
            to_status=target.value,
            effective_on=body.effective_on,
            reason=body.reason,
            evidence=body.evidence,
            by_user=user.username,
        )
    )
    site.status = target.value
    site.status_since = body.effective_on
    session.flush()
    record(
        session,
        "transition",
        "hazard_site",
        str(site.id),
        site.unit_code,
        {"status": [current.value, target.value], "effective_on": body.effective_on.isoformat(), "reason": body.reason},
    )
    return site_ops.present(site, user, detail=True)


@router.get("/{site_id}/history", response_model=SiteHistory)
def site_history(site_id: int, session: ReadSession, user: Reader) -> SiteHistory:
    """Every status change of the site and every audit entry about it (within the caller's scope)."""
    site = get_scoped(session, HazardSite, site_id, user)
    changes = session.scalars(
        select(SiteStatusChange)
        .where(SiteStatusChange.site_id == site.id)
        .order_by(SiteStatusChange.at, SiteStatusChange.id)
    ).all()
    entries = session.scalars(
        select(AuditEntry)
        .where(
            AuditEntry.entity == "hazard_site",
            AuditEntry.entity_id == str(site.id),
            scope_filter(AuditEntry, user),
        )
        .order_by(AuditEntry.at, AuditEntry.id)
    ).all()
    return SiteHistory(
        site_id=site.id,
        status_changes=[StatusChangePublic.model_validate(c) for c in changes],
        audit=[AuditEntryPublic.model_validate(e) for e in entries],
    )
