"""Write-offs (核销) with annual targets, register hygiene lists (台账核查) and phone checks.

``/api/fieldwork/write-offs``: a township applies, the county decides; the site moves through its
lifecycle (``/api/sites/{id}/status``) at each step. ``/api/fieldwork/hygiene``: the gaps of the
register per township, as JSON, CSV or XLSX.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, status
from fastapi.responses import Response
from sqlalchemy import select

from geowarn.api.deps import Reader, ReadSession, Writer, WriteSession, personal
from geowarn.api.routes.auth import app_settings
from geowarn.api.schemas.common import Page
from geowarn.api.scoping import get_scoped, page, scope_filter
from geowarn.auth.scope import in_scope, unit_filter
from geowarn.config import Settings
from geowarn.errors import InvalidInput, NotFound
from geowarn.fieldwork import hygiene, writeoffs
from geowarn.fieldwork.domain import CHINA
from geowarn.fieldwork.models import PhoneCheck, WriteOff
from geowarn.fieldwork.schemas import DecisionIn, PhoneCheckIn, TargetIn, WriteOffIn, WriteOffPublic
from geowarn.inventory.models import Person

router = APIRouter(prefix="/fieldwork", tags=["fieldwork: write-offs and register hygiene"])

SettingsDep = Annotated[Settings, Depends(app_settings)]
UnitQuery = Annotated[str | None, Query(pattern=r"^\d{6}(\d{3}(\d{3})?)?$", description="default: your unit")]


def _unit(user_unit: str, unit: str | None) -> str:
    code = unit or user_unit
    if not in_scope(user_unit, code):
        raise NotFound(f"unit {code} not found", message_zh=f"行政区“{code}”不存在")
    return code


@router.post("/write-offs", response_model=WriteOffPublic, status_code=status.HTTP_201_CREATED)
def apply_write_off(body: WriteOffIn, session: WriteSession, user: Writer) -> WriteOff:
    """Apply to write a site off, with the basis and the evidence (治理竣工验收/搬迁安置材料)."""
    return writeoffs.apply(session, user, body)


@router.post("/write-offs/{write_off_id}/decision", response_model=WriteOffPublic)
def decide_write_off(write_off_id: int, body: DecisionIn, session: WriteSession, user: Writer) -> WriteOff:
    """The county approves (the site is written off) or rejects (it keeps its status)."""
    return writeoffs.decide(session, user, write_off_id, body)


@router.get("/write-offs", response_model=Page[WriteOffPublic])
def list_write_offs(
    session: ReadSession,
    user: Reader,
    unit: UnitQuery = None,
    state: Annotated[Literal["applied", "approved", "rejected"] | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[WriteOffPublic]:
    stmt = select(WriteOff).where(
        scope_filter(WriteOff, user), unit_filter(WriteOff.unit_code, _unit(user.unit_code, unit))
    )
    if state:
        stmt = stmt.where(WriteOff.status == state)
    rows, total = page(session, stmt.order_by(WriteOff.applied_at.desc(), WriteOff.id.desc()), limit, offset)
    return Page[WriteOffPublic](
        items=[WriteOffPublic.model_validate(r) for r in rows], total=total, limit=limit, offset=offset
    )


@router.put("/write-off-targets/{code}/{year}")
def put_write_off_target(
    code: Annotated[str, Path(pattern=r"^\d{9}$")],
    year: Annotated[int, Path(ge=2000, le=2100)],
    body: TargetIn,
    session: WriteSession,
    user: Writer,
) -> dict[str, Any]:
    """The county sets a township's write-off target for a year (number of sites)."""
    row = writeoffs.set_target(session, user, code, year, body.target)
    return {"unit_code": row.unit_code, "year": row.year, "target": row.target, "set_by": row.set_by}


@router.get("/write-off-progress")
def write_off_progress(
    session: ReadSession, user: Reader, settings: SettingsDep, year: int | None = None, unit: UnitQuery = None
) -> dict[str, Any]:
    """Each township's target and progress for a year (default: this year)."""
    year = year or dt.datetime.now(CHINA).year
    items = writeoffs.progress(session, _unit(user.unit_code, unit), year, settings.write_off_target_ratio)
    return {
        "year": year,
        "ratio": settings.write_off_target_ratio,
        "townships": [
            {
                "code": p.code,
                "name": p.name,
                "registered_at_start": p.registered_at_start,
                "target": p.target,
                "target_set": p.target_set,
                "written_off": p.written_off,
                "pending": p.pending,
                "percent": p.percent,
            }
            for p in items
        ],
        "total": {
            "target": sum(p.target for p in items),
            "written_off": sum(p.written_off for p in items),
            "pending": sum(p.pending for p in items),
        },
    }


@router.get("/hygiene", response_model=None)
def register_hygiene(
    session: ReadSession,
    user: Reader,
    settings: SettingsDep,
    unit: UnitQuery = None,
    days: Annotated[int | None, Query(ge=1, le=3650, description="idle monitor threshold")] = None,
    format: Literal["json", "csv", "xlsx"] = "json",
) -> Any:
    """The register's gaps per township (台账核查清单), exportable as CSV or XLSX."""
    scope = _unit(user.unit_code, unit)
    items = hygiene.findings(
        session,
        scope,
        dt.datetime.now(dt.UTC),
        idle_days=days or settings.hygiene_patrol_days,
        phone_days=settings.phone_check_days,
        personal=personal(user),
    )
    names = hygiene.township_names(session, scope)
    if format == "csv":
        return Response(
            hygiene.to_csv(items, names),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="hygiene-{scope}.csv"'},
        )
    if format == "xlsx":
        return Response(
            hygiene.to_xlsx(items, names),
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": f'attachment; filename="hygiene-{scope}.xlsx"'},
        )
    counts: dict[str, dict[str, int]] = {}
    for f in items:
        counts.setdefault(f.township, dict.fromkeys(hygiene.KINDS, 0))[f.kind] += 1
    return {
        "unit_code": scope,
        "townships": [{"code": c, "name": names.get(c, ""), **n} for c, n in sorted(counts.items())],
        "items": [
            {
                "township": f.township,
                "kind": f.kind,
                "kind_zh": hygiene.KIND_ZH[f.kind],
                "record": f.record,
                "record_id": f.record_id,
                "label": f.label,
                "detail": f.detail,
            }
            for f in items
        ],
    }


@router.post("/persons/{person_id}/phone-checks", status_code=status.HTTP_201_CREATED)
def check_phone(person_id: int, body: PhoneCheckIn, session: WriteSession, user: Writer) -> dict[str, Any]:
    """Record that the person's current number answered (a call or an SMS reply)."""
    person = get_scoped(session, Person, person_id, user)
    if not person.phone:
        raise InvalidInput("the person has no phone number", message_zh="该人员没有登记联系电话")
    row = PhoneCheck(
        person_id=person.id,
        unit_code=person.unit_code,
        phone=person.phone,
        method=body.method,
        checked_by=user.username,
    )
    session.add(row)
    session.flush()
    return {"id": row.id, "person_id": person.id, "method": row.method, "checked_at": row.checked_at.isoformat()}
