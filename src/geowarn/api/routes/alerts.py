"""``/api/alerts``: site alerts and device alarms, their history, acknowledgement and silences.

Everything is scoped to the caller's unit like the register: an alert of another township is
answered as not found.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from geowarn.api.deps import Reader, ReadSession, WriteSession, require
from geowarn.api.routes.monitoring_common import when_ms
from geowarn.api.routes.monitoring_data import json_response
from geowarn.api.schemas.monitoring import iso_ms
from geowarn.api.scoping import check_ref, get_scoped, scope_filter
from geowarn.auth.models import User
from geowarn.auth.roles import Permission
from geowarn.auth.scope import unit_filter
from geowarn.errors import InvalidInput, InvalidTransition
from geowarn.inventory.models import HazardSite
from geowarn.monitoring.models import Device, MonitoringStation
from geowarn.warning import alerts as service
from geowarn.warning.levels import Level
from geowarn.warning.models import Alert, AlertEvent, Silence, now_ms

router = APIRouter(prefix="/alerts", tags=["warning: alerts"])

Acknowledger = Annotated[User, require(Permission.ACKNOWLEDGE)]
Warner = Annotated[User, require(Permission.WARN)]

KIND_ZH = {service.SITE_RULE: "监测预警", service.DEVICE_OFFLINE: "设备离线"}


def alert_json(a: Alert, site: tuple[str, str] | None = None) -> dict[str, Any]:
    level = Level(a.level)
    return {
        "id": a.id, "kind": a.kind, "kind_zh": KIND_ZH.get(a.kind, a.kind), "status": a.status,
        "level": a.level, "colour": level.colour, "level_zh": level.site_label, "max_level": a.max_level,
        "site_id": a.site_id, "site_code": site[0] if site else None, "site_name": site[1] if site else None,
        "device_id": a.device_id, "rule_id": a.rule_id, "rule_name": a.rule_name, "unit_code": a.unit_code,
        "opened": iso_ms(a.opened_ms), "updated": iso_ms(a.updated_ms), "closed": iso_ms(a.closed_ms),
        "reason": a.reason, "forecast": a.forecast, "flaps": a.flaps, "acknowledged": iso_ms(a.acknowledged_ms),
        "acknowledged_by": a.acknowledged_by, "ack_comment": a.ack_comment,
    }  # fmt: skip


@router.get("")
def list_alerts(
    session: ReadSession,
    user: Reader,
    status: Literal["open", "closed"] | None = None,
    min_level: Annotated[int, Query(ge=0, le=4)] = 0,
    kind: Annotated[str | None, Query(max_length=16)] = None,
    site_id: int | None = None,
    unit: Annotated[str | None, Query(max_length=12, description="only this unit and below")] = None,
    since: Annotated[str | None, Query(description="opened at or after (ISO 8601 or epoch ms)")] = None,
    until: Annotated[str | None, Query(description="opened before (ISO 8601 or epoch ms)")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    """Alerts in the caller's scope, newest first, filtered by status, level, kind, site, unit and time."""
    stmt = (
        select(Alert, HazardSite.code, HazardSite.name)
        .outerjoin(HazardSite, HazardSite.id == Alert.site_id)
        .where(scope_filter(Alert, user), Alert.max_level >= min_level)
        .order_by(Alert.opened_ms.desc(), Alert.id.desc())
    )
    if status:
        stmt = stmt.where(Alert.status == status)
    if kind:
        stmt = stmt.where(Alert.kind == kind)
    if site_id is not None:
        stmt = stmt.where(Alert.site_id == site_id)
    if unit:
        stmt = stmt.where(unit_filter(Alert.unit_code, unit))
    if since:
        stmt = stmt.where(Alert.opened_ms >= when_ms(since, "since"))
    if until:
        stmt = stmt.where(Alert.opened_ms < when_ms(until, "until"))
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    counts = dict(
        session.execute(
            select(Alert.level, func.count())
            .where(scope_filter(Alert, user), Alert.status == "open")
            .group_by(Alert.level)
        ).all()
    )
    items = [alert_json(a, (c, n) if c else None) for a, c, n in session.execute(stmt.limit(limit).offset(offset))]
    open_by_level = {Level(lv).colour: int(counts.get(lv, 0)) for lv in (1, 2, 3, 4)}
    return json_response({"items": items, "total": int(total), "limit": limit, "offset": offset,
                          "open_by_level": open_by_level})  # fmt: skip


@router.get("/silences")
def list_silences(session: ReadSession, user: Reader, active: bool | None = None) -> Response:
    """Silences and maintenance windows in scope (``active=true``: those in force now)."""
    stmt = select(Silence).where(scope_filter(Silence, user)).order_by(Silence.start_ms.desc())
    now = now_ms()
    if active:
        stmt = stmt.where(Silence.start_ms <= now, Silence.end_ms > now, Silence.cancelled_ms.is_(None))
    items = [_silence_json(s) for s in session.scalars(stmt.limit(1000))]
    return json_response({"items": items})


def _silence_json(s: Silence) -> dict[str, Any]:
    return {"id": s.id, "site_id": s.site_id, "device_id": s.device_id, "unit_code": s.unit_code,
            "start": iso_ms(s.start_ms), "end": iso_ms(s.end_ms), "reason": s.reason, "created_by": s.created_by,
            "cancelled": iso_ms(s.cancelled_ms)}  # fmt: skip


class SilenceIn(BaseModel):
    site_id: int | None = None
    device_id: int | None = None
    start: str | None = Field(None, description="ISO 8601 or epoch ms; default now")
    end: str
    reason: str = Field(min_length=2, max_length=2000)


@router.post("/silences", status_code=201)
def create_silence(body: SilenceIn, session: WriteSession, user: Warner) -> Response:
    """Silence a site or a device between two times (maintenance window): no new alerts open meanwhile."""
    if (body.site_id is None) == (body.device_id is None):
        raise InvalidInput("give exactly one of site_id and device_id", message_zh="请指定一个隐患点或一台设备")
    start = when_ms(body.start, "start") if body.start else now_ms()
    end = when_ms(body.end, "end")
    if end <= start:
        raise InvalidInput("end must be after start", message_zh="结束时间须晚于开始时间")
    if end - start > 90 * 86_400_000:
        raise InvalidInput("a silence may last at most 90 days", message_zh="静默时段最长90天")
    if body.site_id is not None:
        check_ref(session, HazardSite, body.site_id, user, "site_id")
        unit = session.scalar(select(HazardSite.unit_code).where(HazardSite.id == body.site_id))
    else:
        row = session.execute(
            select(MonitoringStation.unit_code)
            .join(Device, Device.station_id == MonitoringStation.id)
            .where(Device.id == body.device_id, scope_filter(MonitoringStation, user))
        ).first()
        if row is None:
            raise InvalidInput(f"device_id: device {body.device_id} not found", message_zh="设备不存在")
        unit = row[0]
    silence = Silence(site_id=body.site_id, device_id=body.device_id, unit_code=unit, start_ms=start, end_ms=end,
                      reason=body.reason, created_by=user.username)  # fmt: skip
    session.add(silence)
    session.flush()
    return json_response(_silence_json(silence), status_code=201)


@router.delete("/silences/{silence_id}")
def cancel_silence(silence_id: int, session: WriteSession, user: Warner) -> Response:
    """End a silence now (kept in the history as cancelled)."""
    silence = get_scoped(session, Silence, silence_id, user)
    if silence.cancelled_ms is not None:
        raise InvalidTransition("silence already cancelled", message_zh="该静默已取消")
    silence.cancelled_ms = now_ms()
    return json_response(_silence_json(silence))


@router.get("/{alert_id}")
def get_alert(alert_id: int, session: ReadSession, user: Reader) -> Response:
    """One alert with its full history (every level change, acknowledgement and end)."""
    alert = get_scoped(session, Alert, alert_id, user)
    site = None
    if alert.site_id is not None:
        row = session.execute(select(HazardSite.code, HazardSite.name).where(HazardSite.id == alert.site_id)).first()
        site = (row[0], row[1]) if row else None
    events = session.scalars(select(AlertEvent).where(AlertEvent.alert_id == alert.id).order_by(AlertEvent.id))
    history = [
        {"t": iso_ms(e.t_ms), "kind": e.kind, "level_from": e.level_from, "level_to": e.level_to, "actor": e.actor,
         "comment": e.comment, "reason": e.reason}
        for e in events
    ]  # fmt: skip
    return json_response({**alert_json(alert, site), "history": history})


class AckIn(BaseModel):
    comment: str | None = Field(None, max_length=2000)


@router.post("/{alert_id}/acknowledge")
def acknowledge(alert_id: int, body: AckIn, session: WriteSession, user: Acknowledger) -> Response:
    """Acknowledge an alert with an optional comment (again after each escalation)."""
    alert = get_scoped(session, Alert, alert_id, user, for_update=True)
    service.acknowledge(session, alert, user.username, body.comment, now_ms())
    return json_response(alert_json(alert))
