"""Quick and follow-up reports of disasters and dangers (灾险情速报/续报) and the county summary.

Seed 003: "遇到突发情况，可先行报送受灾规模、受灾人数等简要概况，待查明后补全完整信息" — a quick
report first, then follow-ups that amend the same event. Every report is kept as a numbered version;
the event row carries the latest figures. A report may register a new hazard site (the register's
lifecycle starts at ``registered`` with its first status change recorded).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import shapely
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from geowarn.api.scoping import check_ref, check_unit, get_scoped
from geowarn.auth.models import User
from geowarn.auth.scope import in_scope, unit_filter
from geowarn.errors import Conflict, InvalidInput
from geowarn.fieldwork.domain import CHINA, EVENT_KIND_ZH, EventKind
from geowarn.fieldwork.models import HazardEvent, HazardEventVersion
from geowarn.fieldwork.schemas import EventIn, FollowUpIn, RegisterSiteIn
from geowarn.inventory.models import HazardSite, Person, SiteStatusChange
from geowarn.warning.alerts import FIELD_REPORT, apply_level, find_open
from geowarn.warning.levels import Level
from geowarn.warning.models import Alert, now_ms

FIGURES = ("dead", "missing", "injured", "threatened_people", "transferred_people")
YUAN_PER_WAN = 10_000


def _figures(body: EventIn | FollowUpIn) -> dict[str, Any]:
    """The reported values; a follow-up carries only the fields it sent (the others keep their values)."""
    data = body.model_dump(mode="json", exclude={"client_uuid"}, exclude_unset=isinstance(body, FollowUpIn))
    return {k: v for k, v in data.items() if v is not None}


def _apply(event: HazardEvent, data: dict[str, Any]) -> None:
    for name in FIGURES:
        if name in data:
            setattr(event, name, int(data[name]))
    if "loss_wan" in data:
        event.loss_yuan = round(float(data["loss_wan"]) * YUAN_PER_WAN)


def _version_known(session: Session, user: User, client_uuid: str) -> HazardEventVersion | None:
    version = session.scalar(select(HazardEventVersion).where(HazardEventVersion.client_uuid == client_uuid))
    if version is not None and not in_scope(user.unit_code, version.event.unit_code):
        raise Conflict("client_uuid already used", message_zh="该记录编号已被使用，请重新生成")
    return version


def quick_report(session: Session, user: User, body: EventIn) -> tuple[HazardEvent, bool]:
    """Open an event with its quick report (速报); a resend with the same UUID returns the stored one."""
    known = _version_known(session, user, body.client_uuid)
    if known is not None:
        return known.event, False
    check_unit(session, user, body.unit_code)
    if body.site_id is not None:
        site = get_scoped(session, HazardSite, body.site_id, user)
        if not in_scope(body.unit_code[:9] if len(body.unit_code) >= 9 else body.unit_code, site.unit_code):
            raise InvalidInput("the site lies outside the event's unit", message_zh="隐患点不在所报行政区内")
    if (body.lon is None) != (body.lat is None):
        raise InvalidInput("lon and lat go together", message_zh="经度和纬度须同时填写")
    data = _figures(body)
    event = HazardEvent(
        client_uuid=body.client_uuid,
        unit_code=body.unit_code,
        kind=body.kind.value,
        hazard_type=body.hazard_type.value,
        place=body.place,
        lon=body.lon,
        lat=body.lat,
        occurred_at=body.occurred_at.astimezone(dt.UTC),
        site_id=body.site_id,
        reported_by=user.username,
    )
    _apply(event, data)
    event.versions.append(
        HazardEventVersion(number=1, kind="quick", client_uuid=body.client_uuid, data=data, reported_by=user.username)
    )
    try:
        with session.begin_nested():
            session.add(event)
    except IntegrityError:
        known = _version_known(session, user, body.client_uuid)
        if known is None:
            raise
        return known.event, False
    return event, True


def follow_up(session: Session, user: User, event_id: int, body: FollowUpIn) -> tuple[HazardEvent, bool]:
    """Amend an event with a follow-up (续报): a new version; figures not sent keep their values."""
    known = _version_known(session, user, body.client_uuid)
    if known is not None:
        if known.event_id != event_id:
            raise Conflict("client_uuid already used for another event", message_zh="该记录编号已用于其他灾险情")
        return known.event, False
    event = get_scoped(session, HazardEvent, event_id, user, for_update=True)
    if event.status == "closed":
        raise Conflict(f"event {event.id} is closed", message_zh="该灾险情已结案，不能续报")
    data = _figures(body)
    number = event.versions_count + 1
    event.versions.append(
        HazardEventVersion(
            number=number, kind="follow_up", client_uuid=body.client_uuid, data=data, reported_by=user.username
        )
    )
    _apply(event, data)
    if body.place:
        event.place = body.place
    if body.status:
        event.status = body.status
        if body.status == "closed":
            close_alert(session, event)
    event.versions_count = number
    event.updated_at = dt.datetime.now(dt.UTC)
    session.flush()
    return event, True


def register_site(session: Session, user: User, event_id: int, body: RegisterSiteIn) -> HazardSite:
    """Register the hazard site an event revealed (新发现隐患点), in the event's unit, and link it."""
    event = get_scoped(session, HazardEvent, event_id, user, for_update=True)
    if event.new_site_id is not None:
        raise Conflict("the event already registered a site", message_zh="该灾险情已登记隐患点")
    if session.scalar(select(HazardSite.id).where(HazardSite.code == body.code)) is not None:
        raise Conflict(f"site code {body.code} exists", message_zh=f"隐患点编号“{body.code}”已存在")
    check_ref(session, Person, body.monitor_id, user, "monitor_id")
    check_ref(session, Person, body.responsible_person_id, user, "responsible_person_id")
    lon, lat = body.lon if body.lon is not None else event.lon, body.lat if body.lat is not None else event.lat
    if lon is None or lat is None:
        raise InvalidInput("the site needs a position", message_zh="请填写隐患点经纬度")
    today = dt.datetime.now(CHINA).date()
    site = HazardSite(
        code=body.code,
        name=body.name,
        hazard_type=event.hazard_type,
        lon=lon,
        lat=lat,
        geom=shapely.Point(lon, lat),
        threatened_people=event.threatened_people,
        threatened_households=0,
        threatened_property_yuan=0,
        unit_code=event.unit_code,
        township_code=event.unit_code[:9] if len(event.unit_code) >= 9 else None,
        location_text=event.place,
        monitor_id=body.monitor_id,
        responsible_person_id=body.responsible_person_id,
        monitoring_mode="community",
        status="registered",
        status_since=today,
        registered_on=today,
        extra={"source_event_id": event.id},
    )
    site.status_history.append(
        SiteStatusChange(
            from_status=None,
            to_status="registered",
            effective_on=today,
            reason=f"由灾险情报告（编号 {event.id}）登记为新隐患点",
            by_user=user.username,
        )
    )
    session.add(site)
    session.flush()
    event.new_site_id = site.id
    session.flush()
    return site


@dataclass
class SummaryRow:
    unit_code: str
    events: int = 0
    disasters: int = 0
    dangers: int = 0
    dead: int = 0
    missing: int = 0
    injured: int = 0
    threatened_people: int = 0
    transferred_people: int = 0
    loss_wan: float = 0.0
    by_type: dict[str, int] = field(default_factory=dict)


def summary(session: Session, scope_code: str, start: dt.date, end: dt.date, level: int) -> list[SummaryRow]:
    """Events that occurred from ``start`` to ``end`` (China dates, inclusive), summed per unit.

    ``level`` is the length of the unit codes to group by: 6 per county, 9 per township.
    """
    # In UTC: SQLite stores naive UTC and compares the parameter's wall-clock digits.
    lo = dt.datetime.combine(start, dt.time(), CHINA).astimezone(dt.UTC)
    hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), CHINA).astimezone(dt.UTC)
    unit = func.substr(HazardEvent.unit_code, 1, level)
    rows = session.execute(
        select(
            unit,
            HazardEvent.kind,
            HazardEvent.hazard_type,
            func.count(),
            func.sum(HazardEvent.dead),
            func.sum(HazardEvent.missing),
            func.sum(HazardEvent.injured),
            func.sum(HazardEvent.threatened_people),
            func.sum(HazardEvent.transferred_people),
            func.sum(HazardEvent.loss_yuan),
        )
        .where(
            unit_filter(HazardEvent.unit_code, scope_code), HazardEvent.occurred_at >= lo, HazardEvent.occurred_at < hi
        )
        .group_by(unit, HazardEvent.kind, HazardEvent.hazard_type)
    ).all()
    out: dict[str, SummaryRow] = {}
    for code, kind, hazard_type, n, dead, missing, injured, threatened, transferred, loss in rows:
        row = out.setdefault(code, SummaryRow(code))
        row.events += n
        row.disasters += n if kind == "disaster" else 0
        row.dangers += n if kind == "danger" else 0
        row.dead += int(dead or 0)
        row.missing += int(missing or 0)
        row.injured += int(injured or 0)
        row.threatened_people += int(threatened or 0)
        row.transferred_people += int(transferred or 0)
        row.loss_wan += int(loss or 0) / YUAN_PER_WAN
        row.by_type[hazard_type] = row.by_type.get(hazard_type, 0) + n
    return [out[k] for k in sorted(out)]


def raise_alert(session: Session, user: User, event_id: int, level: int, comment: str | None) -> Alert:
    """Raise (or raise further) a site alert from a field report: an alert of kind ``field_report``.

    It lives beside the engine's ``site_rule`` alerts (same table, history and acknowledgement); the
    engine never closes it — closing the event with a follow-up does.
    """
    event = get_scoped(session, HazardEvent, event_id, user, for_update=True)
    if event.status == "closed":
        raise Conflict(f"event {event.id} is closed", message_zh="该灾险情已结案，不能发布预警")
    reason = {"event_id": event.id, "place": event.place, "by": user.username, "comment": comment}
    outcome = apply_level(
        session,
        kind=FIELD_REPORT,
        rule_id=f"event-{event.id}",
        unit_code=event.unit_code,
        level=Level(level),
        now_ms=now_ms(),
        site_id=event.site_id or event.new_site_id,
        rule_name=f"{EVENT_KIND_ZH[EventKind(event.kind)]}报告：{event.place}",
        reason=reason,
    )
    alert = outcome.alert or find_open(
        session, FIELD_REPORT, f"event-{event.id}", site_id=event.site_id or event.new_site_id, device_id=None
    )
    if alert is None:  # a silence of the site suppressed it
        raise Conflict("the site is silenced", message_zh="该隐患点处于静默期，预警未发布")
    session.flush()
    return alert


def close_alert(session: Session, event: HazardEvent) -> None:
    """The event is closed: so is its field alert, if one is open."""
    apply_level(
        session,
        kind=FIELD_REPORT,
        rule_id=f"event-{event.id}",
        unit_code=event.unit_code,
        level=Level.NONE,
        now_ms=now_ms(),
        site_id=event.site_id or event.new_site_id,
        reason={"event_id": event.id, "closed": True},
    )
