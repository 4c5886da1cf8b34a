"""``/api/alerts``: site alerts and device alarms, their history, acknowledgement and silences.

Everything is scoped to the caller's unit like the register: an alert of another township is
answered as not found.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from geowarn.api.deps import Reader, ReadSession, WriteSession, require
from geowarn.api.routes.monitoring_common import when_ms
from geowarn.api.routes.monitoring_data import json_response
from geowarn.api.rows import page_rows
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


#: The alert columns the JSON is made of, in the order ``_alert_doc`` unpacks them: the list reads
#: these as plain rows (the map asks for every open alert on each load), one alert reads its object.
_FIELDS = (
    "id", "kind", "status", "level", "max_level", "site_id", "device_id", "rule_id", "rule_name", "unit_code",
    "opened_ms", "updated_ms", "closed_ms", "reason", "forecast", "flaps", "acknowledged_ms", "acknowledged_by",
    "ack_comment",
)  # fmt: skip
#: The list's statement without its filters, built once (a ``Select`` is immutable; each ``where``
#: copies it). Table columns, not ORM attributes: SQLAlchemy matches a cached statement's result
#: columns to a new statement's by comparing them, which costs more with the ORM's annotated ones.
_ALERT, _SITE = Alert.__table__.c, HazardSite.__table__.c
_LIST = (
    select(*(_ALERT[f] for f in _FIELDS), _SITE.code, _SITE.name)
    .select_from(Alert.__table__.outerjoin(HazardSite.__table__, _SITE.id == _ALERT.site_id))
    .order_by(_ALERT.opened_ms.desc(), _ALERT.id.desc())
)
_OPEN_BY_LEVEL = select(_ALERT.level, func.count()).where(_ALERT.status == "open").group_by(_ALERT.level)


def _alert_doc(r: Sequence[Any]) -> dict[str, Any]:
    """The JSON of an alert from the values of ``_FIELDS`` followed by its site's code and name."""
    (ident, kind, status, lv, max_level, site_id, device_id, rule_id, rule_name, unit_code, opened_ms, updated_ms,
     closed_ms, reason, forecast, flaps, acknowledged_ms, acknowledged_by, ack_comment, site_code,
     site_name) = r  # fmt: skip
    level = Level(lv)
    return {
        "id": ident, "kind": kind, "kind_zh": KIND_ZH.get(kind, kind), "status": status,
        "level": lv, "colour": level.colour, "level_zh": level.site_label, "max_level": max_level,
        "site_id": site_id, "site_code": site_code, "site_name": site_name,
        "device_id": device_id, "rule_id": rule_id, "rule_name": rule_name, "unit_code": unit_code,
        "opened": iso_ms(opened_ms), "updated": iso_ms(updated_ms), "closed": iso_ms(closed_ms),
        "reason": reason, "forecast": forecast, "flaps": flaps, "acknowledged": iso_ms(acknowledged_ms),
        "acknowledged_by": acknowledged_by, "ack_comment": ack_comment,
    }  # fmt: skip


def alert_json(a: Alert, site: tuple[str, str] | None = None) -> dict[str, Any]:
    """One alert as JSON (with its site's code and name when given)."""
    return _alert_doc([*(getattr(a, f) for f in _FIELDS), *(site if site else (None, None))])


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
    stmt = _LIST.where(scope_filter(_ALERT, user), _ALERT.max_level >= min_level)
    if status:
        stmt = stmt.where(_ALERT.status == status)
    if kind:
        stmt = stmt.where(_ALERT.kind == kind)
    if site_id is not None:
        stmt = stmt.where(_ALERT.site_id == site_id)
    if unit:
        stmt = stmt.where(unit_filter(_ALERT.unit_code, unit))
    if since:
        stmt = stmt.where(_ALERT.opened_ms >= when_ms(since, "since"))
    if until:
        stmt = stmt.where(_ALERT.opened_ms < when_ms(until, "until"))
    rows, total = page_rows(session, stmt, limit, offset)
    counts = dict(session.connection().execute(_OPEN_BY_LEVEL.where(scope_filter(_ALERT, user))).all())
    items = [_alert_doc(r) if r[-2] else _alert_doc((*r[:-2], None, None)) for r in rows]
    open_by_level = {Level(lv).colour: int(counts.get(lv, 0)) for lv in (1, 2, 3, 4)}
    return json_response({"items": items, "total": total, "limit": limit, "offset": offset,
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
