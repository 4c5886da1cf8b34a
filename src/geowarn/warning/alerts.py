"""Alerts in the database: apply an evaluation, acknowledge, silence, and device alarms.

Every change is written with an ``AlertEvent`` in the same transaction, so the history is complete
and dissemination (which reads events) never misses or invents one. The work itself is set-wise in
:mod:`geowarn.warning.transitions` (the engine applies a whole batch at once); :func:`apply_level`
is one request of it, for field reports, the API and the alarms below.
"""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from geowarn.errors import Conflict
from geowarn.monitoring.models import Device, DeviceEvent, MonitoringStation, Sensor, SensorLatest
from geowarn.warning.levels import Level
from geowarn.warning.models import Alert, AlertEvent
from geowarn.warning.transitions import (
    DEVICE_OFFLINE,
    FIELD_REPORT,
    NO_DATA,
    SITE_RULE,
    TOLD_KINDS,
    LevelChange,
    Outcome,
    apply_levels,
    open_alerts,
    silenced,
)

__all__ = [
    "DEVICE_OFFLINE", "FIELD_REPORT", "NO_DATA", "SITE_RULE", "TOLD_KINDS", "LevelChange", "Outcome", "acknowledge",
    "apply_level", "apply_levels", "find_open", "is_silenced", "sync_device_alarms", "sync_no_data_alarms",
]  # fmt: skip


def find_open(session: Session, kind: str, rule_id: str, *, site_id: int | None, device_id: int | None) -> Alert | None:
    """The open alert of (kind, rule, site/device), locked on PostgreSQL."""
    return open_alerts(session, [(kind, rule_id, site_id, device_id)]).get((kind, rule_id, site_id, device_id))


def is_silenced(session: Session, now_ms: int, *, site_id: int | None, device_id: int | None) -> bool:
    """True when an active silence covers the site or the device (or the device's site)."""
    return silenced(session, [(site_id, device_id, now_ms, ())])[0]


def apply_level(
    session: Session,
    *,
    kind: str,
    rule_id: str,
    unit_code: str,
    level: Level,
    now_ms: int,
    site_id: int | None = None,
    device_id: int | None = None,
    rule_name: str | None = None,
    reason: dict[str, Any] | None = None,
    forecast: dict[str, Any] | None = None,
    flap_window_ms: int = 30 * 60_000,
    current: Alert | Literal["lookup"] | None = "lookup",
    refresh_every_ms: int = 0,
) -> Outcome:
    """Bring the alert of (kind, site/device, rule) in line with ``level`` and record what changed.

    ``current`` is the open alert when the caller has already loaded it (None: none is open);
    ``refresh_every_ms`` limits how often an unchanged level rewrites the latest reason.
    """
    change = LevelChange(kind, rule_id, unit_code, level, now_ms, site_id, device_id, rule_name, reason, forecast,
                         flap_window_ms, current, refresh_every_ms)  # fmt: skip
    return apply_levels(session, [change])[0]


def acknowledge(session: Session, alert: Alert, username: str, comment: str | None, now_ms: int) -> None:
    """Record that ``username`` has seen the alert (once per alert level: re-acknowledge after escalation)."""
    last = session.scalar(
        select(AlertEvent)
        .where(AlertEvent.alert_id == alert.id, AlertEvent.kind == "acknowledged")
        .order_by(AlertEvent.id.desc())
        .limit(1)
    )
    if last is not None and last.level_to == alert.level and last.actor == username and alert.status == "open":
        raise Conflict("alert already acknowledged at this level", message_zh="该预警在当前级别已确认")
    alert.acknowledged_ms, alert.acknowledged_by, alert.ack_comment = now_ms, username, comment
    session.add(
        AlertEvent(
            alert_id=alert.id,
            t_ms=now_ms,
            kind="acknowledged",
            level_from=alert.level,
            level_to=alert.level,
            actor=username,
            comment=comment,
        )
    )


def sync_device_alarms(session: Session, now_ms: int) -> int:
    """Open an alarm for every open device-offline event and end the alarms whose event ended.

    Returns the number of alarms opened or closed.
    """
    changed = 0
    open_events = session.execute(
        select(
            DeviceEvent.device_id,
            DeviceEvent.started_ms,
            DeviceEvent.unit_code,
            Device.device_code,
            MonitoringStation.site_id,
        )
        .join(Device, Device.id == DeviceEvent.device_id)
        .join(MonitoringStation, MonitoringStation.id == Device.station_id)
        .outerjoin(
            Alert,
            and_(Alert.kind == DEVICE_OFFLINE, Alert.device_id == DeviceEvent.device_id, Alert.status == "open"),
        )
        .where(DeviceEvent.kind == "offline", DeviceEvent.ended_ms.is_(None), Alert.id.is_(None))
    ).all()
    opening = [
        LevelChange(DEVICE_OFFLINE, DEVICE_OFFLINE, unit_code, Level.BLUE, now_ms, site_id, device_id, "设备离线",
                    {"device_code": code, "offline_since_ms": started_ms}, flap_window_ms=0)
        for device_id, started_ms, unit_code, code, site_id in open_events
    ]  # fmt: skip
    changed += sum(out.alert is not None for out in apply_levels(session, opening))
    stale = session.scalars(
        select(Alert).where(
            Alert.kind == DEVICE_OFFLINE,
            Alert.status == "open",
            ~select(DeviceEvent.id)
            .where(
                DeviceEvent.device_id == Alert.device_id, DeviceEvent.kind == "offline", DeviceEvent.ended_ms.is_(None)
            )
            .exists(),
        )
    ).all()
    ending = [
        LevelChange(DEVICE_OFFLINE, DEVICE_OFFLINE, a.unit_code, Level.NONE, now_ms, a.site_id, a.device_id,
                    reason={"back_online_ms": now_ms}, current=a)
        for a in stale
    ]  # fmt: skip
    apply_levels(session, ending)
    return changed + len(ending)


def sync_no_data_alarms(session: Session, now_ms: int, *, missed_intervals: int = 3) -> int:
    """A sensor of a device that is online (no open offline event) but has sent no reading for
    ``missed_intervals`` reporting intervals gets a ``no_data`` alarm (blue); it ends when the sensor
    reports again. Rule id ``no_data:<sensor code>``, so each sensor has its own alarm."""
    rows = session.execute(
        select(Sensor.code, Sensor.unit_code, Device.id, Device.reporting_interval_s, Device.last_seen_ms,
               SensorLatest.t_ms, MonitoringStation.site_id)
        .join(Device, Device.id == Sensor.device_id)
        .join(MonitoringStation, MonitoringStation.id == Device.station_id)
        .outerjoin(SensorLatest, SensorLatest.sensor_id == Sensor.id)
        .where(Sensor.active.is_(True), Device.status == "active", Device.last_seen_ms.is_not(None),
               Device.device_type != "VIDEO",
               ~select(DeviceEvent.id).where(DeviceEvent.device_id == Device.id, DeviceEvent.kind == "offline",
                                             DeviceEvent.ended_ms.is_(None)).exists())
    ).all()  # fmt: skip
    open_rules = {
        a.rule_id: a for a in session.scalars(select(Alert).where(Alert.kind == NO_DATA, Alert.status == "open"))
    }
    opening: list[LevelChange] = []
    ending: list[LevelChange] = []
    for code, unit, device_id, interval_s, seen, last_t, site_id in rows:
        limit = missed_intervals * interval_s * 1000
        silent = last_t is None or (now_ms - last_t > limit and (seen or 0) - last_t > limit)
        rule_id = f"{NO_DATA}:{code}"[:64]
        current = open_rules.get(rule_id)
        if silent and current is None:
            opening.append(LevelChange(
                NO_DATA, rule_id, unit, Level.BLUE, now_ms, site_id, device_id, "传感器无数据", current=None,
                reason={"sensor": code, "last_reading_ms": last_t, "device_last_seen_ms": seen},
            ))  # fmt: skip
        elif not silent and current is not None:
            ending.append(LevelChange(NO_DATA, rule_id, unit, Level.NONE, now_ms, site_id, device_id,
                                      current=current, reason={"last_reading_ms": last_t}))  # fmt: skip
    opened = sum(out.alert is not None for out in apply_levels(session, opening))
    apply_levels(session, ending)
    return opened + len(ending)
