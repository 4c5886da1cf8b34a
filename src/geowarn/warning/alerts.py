"""Alerts in the database: apply an evaluation, acknowledge, silence, and device alarms.

Every change is written with an ``AlertEvent`` in the same transaction, so the history is complete
and dissemination (which reads events) never misses or invents one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from geowarn.dissemination.hook import on_alert
from geowarn.errors import Conflict
from geowarn.monitoring.models import Device, DeviceEvent, MonitoringStation, Sensor, SensorLatest
from geowarn.warning.levels import Level
from geowarn.warning.lifecycle import Action, ClosedAlert, Decision, OpenAlert, decide
from geowarn.warning.models import Alert, AlertEvent, Silence, open_key

SITE_RULE = "site_rule"
DEVICE_OFFLINE = "device_offline"
NO_DATA = "no_data"
#: An alert raised by hand from a field report (灾险情速报), see ``geowarn.fieldwork.events``.
FIELD_REPORT = "field_report"
#: Alert kinds that people must be told of; device and no-data alarms go to operators' lists only.
TOLD_KINDS = frozenset({SITE_RULE, FIELD_REPORT})


@dataclass(frozen=True, slots=True)
class Outcome:
    decision: Decision
    alert: Alert | None


def _lock(stmt: Any, session: Session) -> Any:
    return stmt.with_for_update() if session.get_bind().dialect.name == "postgresql" else stmt


def find_open(session: Session, kind: str, rule_id: str, *, site_id: int | None, device_id: int | None) -> Alert | None:
    stmt = select(Alert).where(
        Alert.kind == kind,
        Alert.rule_id == rule_id,
        Alert.status == "open",
        Alert.site_id.is_(None) if site_id is None else Alert.site_id == site_id,
        Alert.device_id.is_(None) if device_id is None else Alert.device_id == device_id,
    )
    return session.scalar(_lock(stmt, session))


def _last_closed(session: Session, kind: str, rule_id: str, site_id: int | None, device_id: int | None) -> Alert | None:
    stmt = (
        select(Alert)
        .where(
            Alert.kind == kind,
            Alert.rule_id == rule_id,
            Alert.status == "closed",
            Alert.site_id.is_(None) if site_id is None else Alert.site_id == site_id,
            Alert.device_id.is_(None) if device_id is None else Alert.device_id == device_id,
        )
        .order_by(Alert.closed_ms.desc(), Alert.id.desc())
        .limit(1)
    )
    return session.scalar(stmt)


def is_silenced(session: Session, now_ms: int, *, site_id: int | None, device_id: int | None) -> bool:
    """True when an active silence covers the site or the device (or the device's site)."""
    targets = []
    if site_id is not None:
        targets.append(Silence.site_id == site_id)
    if device_id is not None:
        targets.append(Silence.device_id == device_id)
    if not targets:
        return False
    stmt = select(Silence.id).where(
        or_(*targets), Silence.start_ms <= now_ms, Silence.end_ms > now_ms, Silence.cancelled_ms.is_(None)
    )
    return session.scalar(stmt.limit(1)) is not None


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

    ``current`` is the open alert when the caller has already loaded it (None: none is open), which
    saves a query per rule in the engine's batches; ``refresh_every_ms`` limits how often an
    unchanged level rewrites the latest reason.
    """
    if current == "lookup":
        current = find_open(session, kind, rule_id, site_id=site_id, device_id=device_id)
    assert current != "lookup"
    closed = None
    if current is None and level is not Level.NONE:
        last = _last_closed(session, kind, rule_id, site_id, device_id)
        closed = ClosedAlert(last.closed_ms) if last is not None and last.closed_ms is not None else None
    silenced = (
        current is None
        and level is not Level.NONE
        and is_silenced(session, now_ms, site_id=site_id, device_id=device_id)
    )
    decision = decide(
        None if current is None else OpenAlert(Level(current.level), current.opened_ms),
        closed,
        level,
        now_ms,
        silenced=silenced,
        flap_window_ms=flap_window_ms,
    )
    action = decision.action
    if action in (Action.NOTHING, Action.SUPPRESS):
        return Outcome(decision, None)
    reason = reason or {}
    if action is Action.OPEN:
        current = Alert(
            kind=kind,
            site_id=site_id,
            device_id=device_id,
            rule_id=rule_id,
            rule_name=rule_name,
            unit_code=unit_code,
            status="open",
            level=int(level),
            max_level=int(level),
            opened_ms=now_ms,
            updated_ms=now_ms,
            reason=reason,
            forecast=forecast,
            flaps=0,
            open_key=open_key(kind, rule_id, site_id, device_id),
        )
        session.add(current)
        session.flush()
    elif action is Action.REOPEN:
        current = _last_closed(session, kind, rule_id, site_id, device_id)
        assert current is not None
        current.status, current.closed_ms, current.flaps = "open", None, current.flaps + 1
        current.open_key = open_key(kind, rule_id, site_id, device_id)
        current.level, current.max_level = int(level), max(current.max_level, int(level))
        current.updated_ms, current.reason, current.forecast = now_ms, reason, forecast
    else:
        assert current is not None
        if action is Action.REFRESH and now_ms - current.updated_ms < refresh_every_ms:
            return Outcome(decision, current)
        current.updated_ms = now_ms
        current.rule_name = rule_name or current.rule_name
        current.reason = reason if action is not Action.CLOSE else {**current.reason, "cleared": reason}
        if forecast is not None or action is not Action.CLOSE:
            current.forecast = forecast
        if action is Action.CLOSE:
            current.status, current.closed_ms, current.open_key = "closed", now_ms, None
        else:
            current.level, current.max_level = int(level), max(current.max_level, int(level))
        if action is Action.REFRESH:
            return Outcome(decision, current)
    session.add(
        AlertEvent(
            alert_id=current.id,
            t_ms=now_ms,
            kind=action.value,
            level_from=int(decision.previous),
            level_to=int(level),
            reason=reason,
        )
    )
    if kind in TOLD_KINDS:  # the messages of this decision, in its transaction (issue 5)
        on_alert(session, current, action.value, decision.previous, now_ms)
    return Outcome(decision, current)


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
    for device_id, started_ms, unit_code, code, site_id in open_events:
        out = apply_level(
            session,
            kind=DEVICE_OFFLINE,
            rule_id=DEVICE_OFFLINE,
            unit_code=unit_code,
            level=Level.BLUE,
            now_ms=now_ms,
            site_id=site_id,
            device_id=device_id,
            rule_name="设备离线",
            reason={"device_code": code, "offline_since_ms": started_ms},
            flap_window_ms=0,
        )
        changed += out.alert is not None
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
    for alert in stale:
        apply_level(
            session,
            kind=DEVICE_OFFLINE,
            rule_id=DEVICE_OFFLINE,
            unit_code=alert.unit_code,
            level=Level.NONE,
            now_ms=now_ms,
            site_id=alert.site_id,
            device_id=alert.device_id,
            reason={"back_online_ms": now_ms},
        )
        changed += 1
    return changed


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
    changed = 0
    for code, unit, device_id, interval_s, seen, last_t, site_id in rows:
        limit = missed_intervals * interval_s * 1000
        silent = last_t is None or (now_ms - last_t > limit and (seen or 0) - last_t > limit)
        rule_id = f"{NO_DATA}:{code}"[:64]
        current = open_rules.get(rule_id)
        if silent and current is None:
            out = apply_level(
                session, kind=NO_DATA, rule_id=rule_id, unit_code=unit, level=Level.BLUE, now_ms=now_ms,
                site_id=site_id, device_id=device_id, rule_name="传感器无数据", current=None,
                reason={"sensor": code, "last_reading_ms": last_t, "device_last_seen_ms": seen},
            )  # fmt: skip
            changed += out.alert is not None
        elif not silent and current is not None:
            apply_level(
                session, kind=NO_DATA, rule_id=rule_id, unit_code=unit, level=Level.NONE, now_ms=now_ms,
                site_id=site_id, device_id=device_id, current=current, reason={"last_reading_ms": last_t},
            )  # fmt: skip
            changed += 1
    return changed
