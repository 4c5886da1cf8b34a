"""``/api/monitoring``: device health (online rate 在线率, offline events) and the dead-letter store.

Dead letters carry the unit of their device; letters with no unit (an unknown deviceId, unreadable
JSON) may concern any unit, so only administrators see them.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from sqlalchemy import func, or_, select

from geowarn.admin.models import AdminUnit
from geowarn.api.deps import Reader, ReadSession
from geowarn.api.routes.monitoring_common import when_ms
from geowarn.api.routes.monitoring_data import json_response
from geowarn.api.schemas.monitoring import iso_ms, to_cst
from geowarn.api.scoping import not_found, scope_filter
from geowarn.auth.models import User
from geowarn.auth.roles import Permission, has_permission
from geowarn.inventory.models import HazardSite
from geowarn.monitoring.health import DAY_MS, device_online_rates, roll_up
from geowarn.monitoring.models import DeadLetter, Device, DeviceEvent, MonitoringStation
from geowarn.monitoring.queries import CST_OFFSET_MS

router = APIRouter(prefix="/monitoring", tags=["monitoring: health"])

PAYLOAD_PREVIEW_CHARS = 4096


def _rate(received: int, expected: int) -> float | None:
    return None if expected == 0 else round(min(received, expected) / expected, 6)


@router.get("/online-rate")
def online_rate(
    session: ReadSession,
    user: Reader,
    date: Annotated[dt.date, Query(description="China local day, YYYY-MM-DD")],
    by: Literal["device", "site", "township"] = "device",
) -> Response:
    """Reports received ÷ expected per device, site or township over one China local day (capped at 1 per device)."""
    start = int(dt.datetime(date.year, date.month, date.day, tzinfo=dt.UTC).timestamp() * 1000) - CST_OFFSET_MS
    rates = device_online_rates(session.connection(), start, start + DAY_MS, user.unit_code)
    overall = roll_up(rates, "unit")
    received = sum(int(v["received"] or 0) for v in overall.values())
    expected = sum(int(v["expected"] or 0) for v in overall.values())
    total = {"received": received, "expected": expected, "devices": len(rates), "rate": _rate(received, expected)}
    items: list[dict[str, Any]]
    if by == "device":
        items = [
            {"device_id": r.device_id, "device_code": r.device_code, "station_id": r.station_id, "site_id": r.site_id,
             "received": r.received, "expected": r.expected, "devices": 1, "rate": r.rate}
            for r in rates
        ]  # fmt: skip
    else:
        groups = roll_up(rates, "site" if by == "site" else "township")
        names = _names(session, by, [k for k in groups if k is not None])
        items = [
            {("site_id" if by == "site" else "unit_code"): k, **names.get(k, {}), "received": v["received"],
             "expected": v["expected"], "devices": v["devices"], "rate": v["rate"]}
            for k, v in sorted(groups.items(), key=lambda kv: (kv[0] is None, str(kv[0])))
        ]  # fmt: skip
    return json_response({"date": date.isoformat(), "by": by, "total": total, "items": items})


def _names(session: Any, by: str, keys: list[Any]) -> dict[Any, dict[str, Any]]:
    if by == "site":
        rows = session.execute(select(HazardSite.id, HazardSite.code, HazardSite.name).where(HazardSite.id.in_(keys)))
        return {i: {"site_code": c, "site_name": n} for i, c, n in rows}
    rows = session.execute(select(AdminUnit.code, AdminUnit.name).where(AdminUnit.code.in_(keys)))
    return {c: {"unit_name": n} for c, n in rows}


@router.get("/events")
def events(
    session: ReadSession,
    user: Reader,
    open: Annotated[bool | None, Query(description="true: still open; false: ended")] = None,
    since: Annotated[str | None, Query(description="events started at or after (ISO 8601 or epoch ms)")] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    """Device offline events with the device, its station and site."""
    stmt = (
        select(DeviceEvent, Device.device_code, MonitoringStation.id, MonitoringStation.code, MonitoringStation.name,
               HazardSite.id, HazardSite.code, HazardSite.name)
        .join(Device, Device.id == DeviceEvent.device_id)
        .join(MonitoringStation, MonitoringStation.id == Device.station_id)
        .outerjoin(HazardSite, HazardSite.id == MonitoringStation.site_id)
        .where(scope_filter(DeviceEvent, user))
        .order_by(DeviceEvent.started_ms.desc(), DeviceEvent.id.desc())
    )  # fmt: skip
    if open is not None:
        stmt = stmt.where(DeviceEvent.ended_ms.is_(None) if open else DeviceEvent.ended_ms.is_not(None))
    if since:
        stmt = stmt.where(DeviceEvent.started_ms >= when_ms(since, "since"))
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    items = [
        {"id": e.id, "kind": e.kind, "device_id": e.device_id, "device_code": code, "station_id": st_id,
         "station_code": st_code, "station_name": st_name, "site_id": site_id, "site_code": site_code,
         "site_name": site_name, "start": iso_ms(e.started_ms), "end": iso_ms(e.ended_ms), "open": e.ended_ms is None,
         "unit_code": e.unit_code, "detail": e.detail}
        for e, code, st_id, st_code, st_name, site_id, site_code, site_name in session.execute(
            stmt.limit(limit).offset(offset)
        )
    ]  # fmt: skip
    return json_response({"items": items, "total": int(total), "limit": limit, "offset": offset})


def _letter_scope(user: User) -> Any:
    in_unit = scope_filter(DeadLetter, user)
    if has_permission(user.role, Permission.MANAGE_USERS):
        return or_(in_unit, DeadLetter.unit_code.is_(None))
    return in_unit


@router.get("/dead-letters")
def dead_letters(
    session: ReadSession,
    user: Reader,
    reason: Annotated[str | None, Query(max_length=40)] = None,
    source: Annotated[Literal["mqtt", "http", "file"] | None, Query()] = None,
    since: Annotated[str | None, Query(description="received at or after (ISO 8601 or epoch ms)")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    """Payloads and readings that were not stored, newest first, with the reason and the payload as text."""
    stmt = select(DeadLetter).where(_letter_scope(user)).order_by(DeadLetter.id.desc())
    if reason:
        stmt = stmt.where(DeadLetter.reason == reason)
    if source:
        stmt = stmt.where(DeadLetter.source == source)
    if since:
        at = dt.datetime.fromtimestamp(when_ms(since, "since") / 1000, tz=dt.UTC)
        stmt = stmt.where(DeadLetter.received_at >= at)
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    items = []
    for d in session.scalars(stmt.limit(limit).offset(offset)):
        received = to_cst(d.received_at)
        items.append(
            {"id": d.id, "received_at": received.isoformat() if received else None, "source": d.source,
             "channel": d.channel, "device_code": d.device_code, "unit_code": d.unit_code, "reason": d.reason,
             "detail": d.detail, "payload_size": d.payload_size,
             "payload_text": bytes(d.payload)[: PAYLOAD_PREVIEW_CHARS * 4].decode("utf-8", errors="replace")[
                 :PAYLOAD_PREVIEW_CHARS]}
        )  # fmt: skip
    return json_response({"items": items, "total": int(total), "limit": limit, "offset": offset})


@router.get("/dead-letters/{letter_id}/payload", response_class=Response)
def dead_letter_payload(letter_id: int, session: ReadSession, user: Reader) -> Response:
    """The stored bytes of one dead letter (the first 1 MB of the payload)."""
    payload = session.scalar(select(DeadLetter.payload).where(DeadLetter.id == letter_id, _letter_scope(user)))
    if payload is None:
        raise not_found("dead_letter", letter_id)
    return Response(
        bytes(payload),
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="dead-letter-{letter_id}.bin"'},
    )
