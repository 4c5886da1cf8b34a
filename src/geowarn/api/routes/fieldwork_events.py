"""``/api/fieldwork/events``: quick and follow-up reports of disasters and dangers (灾险情速报/续报).

Resending a report with the same ``client_uuid`` answers 200 with the stored event, so a phone can
retry; a follow-up amends the event and keeps every earlier version.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, status
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from geowarn.api.deps import Reader, ReadSession, Writer, WriteSession, require
from geowarn.api.routes.auth import app_settings
from geowarn.api.routes.fieldwork_patrols import Photos, read_uploads
from geowarn.api.schemas.common import Page
from geowarn.api.scoping import get_scoped, page, scope_filter
from geowarn.auth.models import User
from geowarn.auth.roles import Permission
from geowarn.auth.scope import unit_filter
from geowarn.config import Settings
from geowarn.errors import InvalidInput
from geowarn.fieldwork import events
from geowarn.fieldwork.domain import CHINA
from geowarn.fieldwork.models import FieldPhoto, HazardEvent
from geowarn.fieldwork.patrols import add_photos
from geowarn.fieldwork.schemas import (
    EventIn,
    EventPublic,
    EventVersionPublic,
    FollowUpIn,
    PhotoPublic,
    RaiseAlertIn,
    RegisterSiteIn,
)

router = APIRouter(prefix="/fieldwork", tags=["fieldwork: events"])

Reporter = Annotated[User, require(Permission.REPORT)]
Warner = Annotated[User, require(Permission.WARN)]
SettingsDep = Annotated[Settings, Depends(app_settings)]


def present(session: Session, event: HazardEvent) -> EventPublic:
    photos = session.scalars(select(FieldPhoto).where(FieldPhoto.event_id == event.id).order_by(FieldPhoto.id))
    return EventPublic(
        **{k: getattr(event, k) for k in EventPublic.model_fields if k not in ("loss_wan", "versions", "photos")},
        loss_wan=event.loss_yuan / events.YUAN_PER_WAN,
        versions=[EventVersionPublic.model_validate(v) for v in event.versions],
        photos=[PhotoPublic.model_validate(p) for p in photos],
    )


@router.post("/events", response_model=EventPublic, status_code=status.HTTP_201_CREATED)
def post_quick_report(body: EventIn, response: Response, session: WriteSession, user: Reporter) -> EventPublic:
    """A quick report (速报): what, where, when, casualties, people threatened and transferred, losses."""
    event, created = events.quick_report(session, user, body)
    if not created:
        response.status_code = status.HTTP_200_OK
    session.flush()
    return present(session, event)


@router.post("/events/{event_id}/follow-ups", response_model=EventPublic, status_code=status.HTTP_201_CREATED)
def post_follow_up(
    event_id: int, body: FollowUpIn, response: Response, session: WriteSession, user: Reporter
) -> EventPublic:
    """A follow-up (续报): amends the event's figures; the earlier versions are kept."""
    event, created = events.follow_up(session, user, event_id, body)
    if not created:
        response.status_code = status.HTTP_200_OK
    return present(session, event)


@router.post("/events/{event_id}/photos", response_model=list[PhotoPublic], status_code=status.HTTP_201_CREATED)
def post_event_photos(
    event_id: int, session: WriteSession, user: Reporter, settings: SettingsDep, photos: Photos
) -> list[PhotoPublic]:
    event = get_scoped(session, HazardEvent, event_id, user)
    place = (event.lon, event.lat) if event.lon is not None and event.lat is not None else None
    rows = add_photos(
        session,
        settings,
        user,
        read_uploads(photos, settings),
        unit_code=event.unit_code,
        site=place,
        event_id=event.id,
    )
    return [PhotoPublic.model_validate(r) for r in rows]


@router.post("/events/{event_id}/register-site", status_code=status.HTTP_201_CREATED)
def post_register_site(event_id: int, body: RegisterSiteIn, session: WriteSession, user: Writer) -> dict[str, Any]:
    """Register the new hazard site the event revealed (新发现隐患点纳入台账)."""
    site = events.register_site(session, user, event_id, body)
    return {"site_id": site.id, "code": site.code, "status": site.status, "event_id": event_id}


@router.post("/events/{event_id}/alert")
def post_event_alert(event_id: int, body: RaiseAlertIn, session: WriteSession, user: Warner) -> dict[str, Any]:
    """Raise a site alert from the report (险情报告升级为预警): it appears in ``/api/alerts``."""
    alert = events.raise_alert(session, user, event_id, body.level, body.comment)
    return {"alert_id": alert.id, "level": alert.level, "status": alert.status, "event_id": event_id}


@router.get("/events", response_model=Page[EventPublic])
def list_events(
    session: ReadSession,
    user: Reader,
    unit: Annotated[str | None, Query(pattern=r"^\d{6,12}$")] = None,
    since: dt.date | None = None,
    kind: Annotated[str | None, Query(pattern=r"^(disaster|danger)$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[EventPublic]:
    stmt = (
        select(HazardEvent)
        .where(scope_filter(HazardEvent, user))
        .options(selectinload(HazardEvent.versions))
        .order_by(HazardEvent.occurred_at.desc(), HazardEvent.id.desc())
    )
    if unit:
        stmt = stmt.where(unit_filter(HazardEvent.unit_code, unit))
    if since:
        stmt = stmt.where(HazardEvent.occurred_at >= dt.datetime.combine(since, dt.time(), CHINA).astimezone(dt.UTC))
    if kind:
        stmt = stmt.where(HazardEvent.kind == kind)
    rows, total = page(session, stmt, limit, offset)
    return Page[EventPublic](items=[present(session, e) for e in rows], total=total, limit=limit, offset=offset)


@router.get("/events/summary")
def events_summary(
    session: ReadSession,
    user: Reader,
    start: dt.date,
    end: dt.date,
    by: Annotated[str, Query(pattern=r"^(county|township)$")] = "township",
) -> dict[str, Any]:
    """Events in a period summed per county or township of the caller's unit (灾险情统计)."""
    if end < start or (end - start).days > 366:
        raise InvalidInput("start..end must be ordered and at most a year", message_zh="统计时段无效（最长一年）")
    rows = events.summary(session, user.unit_code, start, end, 6 if by == "county" else 9)
    total = events.SummaryRow("total")
    for r in rows:
        for name in (
            "events",
            "disasters",
            "dangers",
            "dead",
            "missing",
            "injured",
            "threatened_people",
            "transferred_people",
            "loss_wan",
        ):
            setattr(total, name, getattr(total, name) + getattr(r, name))
    return {
        "unit_code": user.unit_code,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "by": by,
        "rows": [vars(r) for r in rows],
        "total": {k: v for k, v in vars(total).items() if k not in ("unit_code", "by_type")},
    }


@router.get("/events/{event_id}", response_model=EventPublic)
def get_event(event_id: int, session: ReadSession, user: Reader) -> EventPublic:
    return present(session, get_scoped(session, HazardEvent, event_id, user))
