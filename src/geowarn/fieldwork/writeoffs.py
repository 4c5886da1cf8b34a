"""Write-offs (核销): a site leaves the register only through a recorded, county-approved workflow.

1. The township applies with the basis (treatment finished / relocation done) and the evidence. If the
   site is still ``under_treatment`` (or ``registered`` for a relocation) the application first moves it
   to ``treated`` (``relocated``) through the site lifecycle, with the same evidence.
2. The county (a user whose unit is a county or above) approves: the site becomes ``written_off``
   through the lifecycle (``POST /api/sites/{id}/status`` — the same function, so the same transition
   rules, history row and audit entry), or rejects: the site keeps its status.

Annual targets (seed 003: 完成现有在册的地质灾害隐患点10%核销工作) are set per township or default
to ``Settings.write_off_target_ratio`` of the sites on the register at the start of the year.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from geowarn.admin.models import AdminUnit
from geowarn.api.routes.site_lifecycle import change_status
from geowarn.api.schemas.sites import StatusChangeIn
from geowarn.api.scoping import check_unit, get_scoped
from geowarn.auth.models import User
from geowarn.auth.scope import unit_filter
from geowarn.errors import Conflict, InvalidInput, InvalidTransition, PermissionDenied
from geowarn.fieldwork.domain import WRITE_OFF_BASIS_ZH, WriteOffBasis, write_off_target
from geowarn.fieldwork.models import WriteOff, WriteOffTarget
from geowarn.fieldwork.schemas import DecisionIn, WriteOffIn
from geowarn.inventory.domain import SiteStatus
from geowarn.inventory.models import HazardSite, SiteStatusChange

#: The status a basis leads to, and the status it may be reached from in the same step.
_BASIS = {
    WriteOffBasis.TREATMENT: (SiteStatus.TREATED, SiteStatus.UNDER_TREATMENT),
    WriteOffBasis.RELOCATION: (SiteStatus.RELOCATED, SiteStatus.REGISTERED),
}


def _move(
    session: Session, user: User, site: HazardSite, to: SiteStatus, reason: str, evidence: str, on: dt.date
) -> None:
    change_status(
        site.id,
        StatusChangeIn(to_status=to, reason=reason, evidence=evidence, effective_on=on, version=None),
        session,
        user,
    )


def apply(session: Session, user: User, body: WriteOffIn) -> WriteOff:
    site = get_scoped(session, HazardSite, body.site_id, user, for_update=True)
    pending = session.scalar(select(WriteOff.id).where(WriteOff.site_id == site.id, WriteOff.status == "applied"))
    if pending is not None:
        raise Conflict(f"site {site.id} has a pending write-off {pending}", message_zh="该隐患点已有待审批的核销申请")
    done, before = _BASIS[body.basis]
    basis_zh = WRITE_OFF_BASIS_ZH[body.basis]
    if site.status == before.value:
        _move(session, user, site, done, f"{basis_zh}，申请核销", body.evidence, body.effective_on)
    elif site.status != done.value:
        raise InvalidTransition(
            f"a site that is {site.status} cannot be written off for {body.basis.value}",
            message_zh=f"隐患点当前状态不能以“{basis_zh}”申请核销",
        )
    row = WriteOff(
        site_id=site.id,
        unit_code=site.unit_code,
        basis=body.basis.value,
        evidence=body.evidence,
        applied_by=user.username,
    )
    session.add(row)
    session.flush()
    return row


def decide(session: Session, user: User, write_off_id: int, body: DecisionIn) -> WriteOff:
    """The county's decision; approval writes the site off through the lifecycle."""
    if len(user.unit_code) > 6:
        raise PermissionDenied("write-offs are approved by the county", message_zh="隐患点核销须由县级审批")
    row = get_scoped(session, WriteOff, write_off_id, user, for_update=True)
    if row.status != "applied":
        raise Conflict(f"write-off {row.id} is already {row.status}", message_zh="该核销申请已处理")
    if not body.approve and not body.comment:
        raise InvalidInput("a rejection needs a comment", message_zh="退回核销申请须说明理由")
    site = get_scoped(session, HazardSite, row.site_id, user, for_update=True)
    if body.approve:
        basis_zh = WRITE_OFF_BASIS_ZH[WriteOffBasis(row.basis)]
        reason = f"县级审批核销（{basis_zh}）" + (f"：{body.comment}" if body.comment else "")
        _move(session, user, site, SiteStatus.WRITTEN_OFF, reason, row.evidence, body.effective_on)
    row.status = "approved" if body.approve else "rejected"
    row.decided_by = user.username
    row.decided_at = dt.datetime.now(dt.UTC)
    row.decided_on = body.effective_on
    row.comment = body.comment
    session.flush()
    return row


def set_target(session: Session, user: User, township: str, year: int, target: int) -> WriteOffTarget:
    if len(user.unit_code) > 6:
        raise PermissionDenied("targets are set by the county", message_zh="核销目标由县级下达")
    if len(township) != 9:
        raise InvalidInput("targets are per township", message_zh="核销目标按乡镇（街道）下达")
    check_unit(session, user, township)
    row = session.scalar(
        select(WriteOffTarget).where(WriteOffTarget.unit_code == township, WriteOffTarget.year == year)
    )
    if row is None:
        row = WriteOffTarget(unit_code=township, year=year, target=target, set_by=user.username)
        session.add(row)
    else:
        row.target, row.set_by = target, user.username
    session.flush()
    return row


@dataclass(frozen=True, slots=True)
class Progress:
    code: str
    name: str
    registered_at_start: int
    target: int
    target_set: bool
    written_off: int
    pending: int

    @property
    def percent(self) -> float:
        return round(100 * self.written_off / self.target, 1) if self.target else 100.0


def progress(session: Session, scope_code: str, year: int, ratio: float) -> list[Progress]:
    """Each township's target and write-offs (by the lifecycle's ``written_off`` changes) in ``year``."""
    start, end = dt.date(year, 1, 1), dt.date(year + 1, 1, 1)
    town = func.substr(HazardSite.unit_code, 1, 9)
    off_before = (
        select(SiteStatusChange.site_id)
        .where(SiteStatusChange.to_status == "written_off", SiteStatusChange.effective_on < start)
        .scalar_subquery()
    )
    base: dict[str, int] = dict(
        session.execute(
            select(town, func.count())
            .where(
                unit_filter(HazardSite.unit_code, scope_code),
                or_(HazardSite.registered_on.is_(None), HazardSite.registered_on < start),
                HazardSite.id.not_in(off_before),
            )
            .group_by(town)
        ).all()
    )
    done: dict[str, int] = dict(
        session.execute(
            select(town, func.count(func.distinct(HazardSite.id)))
            .join(SiteStatusChange, SiteStatusChange.site_id == HazardSite.id)
            .where(
                unit_filter(HazardSite.unit_code, scope_code),
                SiteStatusChange.to_status == "written_off",
                and_(SiteStatusChange.effective_on >= start, SiteStatusChange.effective_on < end),
            )
            .group_by(town)
        ).all()
    )
    wtown = func.substr(WriteOff.unit_code, 1, 9)
    pending: dict[str, int] = dict(
        session.execute(
            select(wtown, func.count())
            .where(unit_filter(WriteOff.unit_code, scope_code), WriteOff.status == "applied")
            .group_by(wtown)
        ).all()
    )
    targets = dict(
        session.execute(
            select(WriteOffTarget.unit_code, WriteOffTarget.target).where(
                unit_filter(WriteOffTarget.unit_code, scope_code), WriteOffTarget.year == year
            )
        ).all()
    )
    names = dict(
        session.execute(
            select(AdminUnit.code, AdminUnit.name).where(
                AdminUnit.level == "township", unit_filter(AdminUnit.code, scope_code)
            )
        ).all()
    )
    out = []
    for code in sorted(set(names) | set(base) | set(done)):
        registered = int(base.get(code, 0))
        explicit = targets.get(code)
        out.append(
            Progress(
                code=code,
                name=names.get(code, code),
                registered_at_start=registered,
                target=int(explicit) if explicit is not None else write_off_target(registered, ratio),
                target_set=explicit is not None,
                written_off=int(done.get(code, 0)),
                pending=int(pending.get(code, 0)),
            )
        )
    return out
