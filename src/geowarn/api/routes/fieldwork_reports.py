"""``/api/fieldwork/zero-reports`` and ``/api/fieldwork/responses``: the daily zero reports (每日零报告).

A township reports once a day in the flood season (twice during an orange or red response); the
county and province see which townships still owe a report; the reminder list is what the
dissemination channels send.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, status
from sqlalchemy import select

from geowarn.api.deps import Reader, ReadSession, Writer, WriteSession, require
from geowarn.api.routes.auth import app_settings
from geowarn.api.schemas.common import Page
from geowarn.api.scoping import check_unit, page, scope_filter
from geowarn.auth.models import User
from geowarn.auth.roles import Permission
from geowarn.auth.scope import in_scope, unit_filter
from geowarn.config import Settings
from geowarn.errors import InvalidInput, NotFound
from geowarn.fieldwork import zero_reports
from geowarn.fieldwork.domain import CHINA, calendar_from
from geowarn.fieldwork.models import ResponsePeriod, ZeroReport
from geowarn.fieldwork.schemas import (
    MissingTownship,
    ResponseIn,
    ResponsePublic,
    ZeroReportIn,
    ZeroReportPublic,
    ZeroReportStatus,
)

router = APIRouter(prefix="/fieldwork", tags=["fieldwork: zero reports"])

Reporter = Annotated[User, require(Permission.REPORT)]
SettingsDep = Annotated[Settings, Depends(app_settings)]
UnitQuery = Annotated[str | None, Query(pattern=r"^\d{6}(\d{3}(\d{3})?)?$", description="default: your unit")]


def _unit(user: User, unit: str | None) -> str:
    code = unit or user.unit_code
    if not in_scope(user.unit_code, code):
        raise NotFound(f"unit {code} not found", message_zh=f"行政区“{code}”不存在")
    return code


def _today() -> dt.date:
    return dt.datetime.now(CHINA).date()


@router.post("/zero-reports", response_model=ZeroReportPublic, status_code=status.HTTP_201_CREATED)
def post_zero_report(
    body: ZeroReportIn, response: Response, session: WriteSession, user: Reporter, settings: SettingsDep
) -> ZeroReport:
    """A township's report for a day: ``nothing_new`` (零报告) or a summary with its events."""
    report, created = zero_reports.submit(
        session, user, body, calendar_from(settings), settings.response_min_level, dt.datetime.now(dt.UTC)
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return report


@router.get("/zero-reports", response_model=Page[ZeroReportPublic])
def list_zero_reports(
    session: ReadSession,
    user: Reader,
    unit: UnitQuery = None,
    date: dt.date | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[ZeroReportPublic]:
    stmt = select(ZeroReport).where(scope_filter(ZeroReport, user))
    if unit:
        stmt = stmt.where(unit_filter(ZeroReport.unit_code, unit))
    if date:
        stmt = stmt.where(ZeroReport.report_date == date)
    rows, total = page(session, stmt.order_by(ZeroReport.report_date.desc(), ZeroReport.unit_code), limit, offset)
    return Page[ZeroReportPublic](
        items=[ZeroReportPublic.model_validate(r) for r in rows], total=total, limit=limit, offset=offset
    )


@router.get("/zero-reports/status", response_model=ZeroReportStatus)
def zero_report_status(
    session: ReadSession,
    user: Reader,
    settings: SettingsDep,
    unit: UnitQuery = None,
    date: dt.date | None = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 5000,
) -> ZeroReportStatus:
    """Counts for the unit's townships on a day and the townships that still owe reports (缺报乡镇)."""
    day = date or _today()
    state = zero_reports.status(
        session,
        _unit(user, unit),
        day,
        calendar_from(settings),
        settings.response_min_level,
        dt.datetime.now(dt.UTC),
        limit=limit,
    )
    return ZeroReportStatus(
        unit_code=state.unit_code,
        date=state.date,
        in_season=state.in_season,
        townships=state.townships,
        elevated=state.elevated,
        required=state.required,
        reported=state.reported,
        complete=state.complete,
        missing=[MissingTownship.model_validate(m) for m in state.missing],
    )


@router.get("/zero-reports/reminders")
def zero_report_reminders(
    session: ReadSession, user: Writer, settings: SettingsDep, unit: UnitQuery = None
) -> list[dict[str, Any]]:
    """Who must be reminded now (overdue, or due within the hour), with the text to send.

    The dissemination channels send them (``geowarn.fieldwork.zero_reports.remind_missing``).
    """
    now = dt.datetime.now(dt.UTC)
    found = zero_reports.reminders(
        session,
        _unit(user, unit),
        now.astimezone(CHINA).date(),
        calendar_from(settings),
        settings.response_min_level,
        now,
    )
    return [
        {
            "township_code": r.township_code,
            "township_name": r.township_name,
            "date": r.date.isoformat(),
            "overdue": r.overdue,
            "next_deadline": r.next_deadline.isoformat() if r.next_deadline else None,
            "text": r.text,
            "contacts": [
                {"person_id": c.person_id, "name": c.name, "phone": c.phone, "roles": list(c.roles)} for c in r.contacts
            ],
        }
        for r in found
    ]


@router.post("/responses", response_model=ResponsePublic, status_code=status.HTTP_201_CREATED)
def declare_response(body: ResponseIn, session: WriteSession, user: Writer) -> ResponsePeriod:
    """Declare an orange (3) or red (4) emergency response for a unit: its townships report twice a day."""
    check_unit(session, user, body.unit_code)
    if body.end_date < body.start_date:
        raise InvalidInput("end_date precedes start_date", message_zh="结束日期早于开始日期")
    period = ResponsePeriod(**body.model_dump(), declared_by=user.username)
    session.add(period)
    session.flush()
    return period


@router.get("/responses", response_model=list[ResponsePublic])
def list_responses(session: ReadSession, user: Reader, date: dt.date | None = None) -> list[ResponsePeriod]:
    stmt = select(ResponsePeriod).where(scope_filter(ResponsePeriod, user)).order_by(ResponsePeriod.start_date.desc())
    if date:
        stmt = stmt.where(ResponsePeriod.start_date <= date, ResponsePeriod.end_date >= date)
    return list(session.scalars(stmt.limit(1000)))
