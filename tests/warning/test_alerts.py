"""Alerts in the database on both backends: one open per site and rule, history, acks, silences, devices."""

from __future__ import annotations

import orjson
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from geowarn.db import Database
from geowarn.errors import Conflict
from geowarn.inventory.models import HazardSite
from geowarn.monitoring.health import check_offline
from geowarn.monitoring.ingest import Ingestor, RawPayload
from geowarn.monitoring.models import Device
from geowarn.warning import alerts
from geowarn.warning.levels import Level
from geowarn.warning.models import Alert, AlertEvent, Silence
from tests.monitoring.network import T0, build_network

MIN = 60_000


def _site(db: Database) -> tuple[int, str]:
    build_network(db)
    with db.read() as s:
        site = s.scalars(select(HazardSite)).one()
        return site.id, site.unit_code


def _apply(db: Database, site_id: int, unit: str, level: Level, t: int, rule: str = "r1") -> alerts.Outcome:
    with db.write("engine") as s:
        out = alerts.apply_level(
            s, kind=alerts.SITE_RULE, rule_id=rule, unit_code=unit, level=level, now_ms=t, site_id=site_id,
            reason={"value": int(level)}, flap_window_ms=30 * MIN,
        )  # fmt: skip
        return out


def _history(db: Database) -> list[tuple[str, int | None, int | None]]:
    with db.read() as s:
        return [(e.kind, e.level_from, e.level_to) for e in s.scalars(select(AlertEvent).order_by(AlertEvent.id))]


def test_an_alert_rises_falls_ends_and_keeps_its_history(db: Database) -> None:
    site_id, unit = _site(db)
    for i, level in enumerate([Level.BLUE, Level.BLUE, Level.ORANGE, Level.RED, Level.YELLOW, Level.NONE]):
        _apply(db, site_id, unit, level, T0 + i * 10 * MIN)
    with db.read() as s:
        (a,) = s.scalars(select(Alert)).all()
        assert (a.status, a.level, a.max_level, a.closed_ms) == ("closed", Level.YELLOW, Level.RED, T0 + 50 * MIN)
        assert a.open_key is None and a.reason["cleared"] == {"value": 0}
    assert _history(db) == [("opened", 0, 1), ("escalated", 1, 3), ("escalated", 3, 4), ("deescalated", 4, 2),
                            ("closed", 2, 0)]  # fmt: skip


def test_a_flapping_condition_reopens_the_same_alert(db: Database) -> None:
    site_id, unit = _site(db)
    _apply(db, site_id, unit, Level.YELLOW, T0)
    _apply(db, site_id, unit, Level.NONE, T0 + 10 * MIN)
    _apply(db, site_id, unit, Level.YELLOW, T0 + 20 * MIN)  # within 30 min: same alert
    _apply(db, site_id, unit, Level.NONE, T0 + 30 * MIN)
    _apply(db, site_id, unit, Level.YELLOW, T0 + 90 * MIN)  # an hour later: a new alert
    with db.read() as s:
        rows = s.execute(select(Alert.id, Alert.flaps, Alert.status).order_by(Alert.id)).all()
    assert [(f, st) for _, f, st in rows] == [(1, "closed"), (0, "open")]


def test_two_open_alerts_for_one_site_and_rule_are_impossible(db: Database) -> None:
    site_id, unit = _site(db)
    _apply(db, site_id, unit, Level.YELLOW, T0)
    _apply(db, site_id, unit, Level.YELLOW, T0, rule="r2")  # another rule: its own alert
    with pytest.raises(IntegrityError), db.write("x") as s:
        s.add(Alert(kind="site_rule", site_id=site_id, rule_id="r1", unit_code=unit, level=2, max_level=2,
                    opened_ms=T0, updated_ms=T0, reason={}, open_key=f"site_rule:s{site_id}:r1"))  # fmt: skip
    with db.read() as s:
        assert s.scalar(select(text("count(*)")).select_from(Alert)) == 2


def test_a_silence_holds_new_alerts_only_while_it_lasts(db: Database) -> None:
    site_id, unit = _site(db)
    with db.write("op") as s:
        s.add(Silence(site_id=site_id, unit_code=unit, start_ms=T0, end_ms=T0 + 60 * MIN, reason="更换传感器"))
    out = _apply(db, site_id, unit, Level.RED, T0 + 5 * MIN)
    assert out.alert is None and out.decision.action.value == "suppressed"
    out = _apply(db, site_id, unit, Level.RED, T0 + 61 * MIN)
    assert out.alert is not None and out.alert.level == Level.RED


def test_acknowledge_once_per_level(db: Database) -> None:
    site_id, unit = _site(db)
    _apply(db, site_id, unit, Level.YELLOW, T0)
    with db.write("monitor") as s:
        a = s.scalars(select(Alert)).one()
        alerts.acknowledge(s, a, "monitor", "已到现场查看", T0 + MIN)
    with pytest.raises(Conflict), db.write("monitor") as s:
        alerts.acknowledge(s, s.scalars(select(Alert)).one(), "monitor", None, T0 + 2 * MIN)
    _apply(db, site_id, unit, Level.ORANGE, T0 + 3 * MIN)
    with db.write("monitor") as s:
        alerts.acknowledge(s, s.scalars(select(Alert)).one(), "monitor", "已组织撤离", T0 + 4 * MIN)
    assert [k for k, _, _ in _history(db)] == ["opened", "acknowledged", "escalated", "acknowledged"]
    with db.read() as s:
        a = s.scalars(select(Alert)).one()
        assert (a.acknowledged_by, a.ack_comment) == ("monitor", "已组织撤离")


def test_device_offline_alarms_follow_device_events(db: Database) -> None:
    build_network(db)
    with db.write("x") as s:
        for d in s.scalars(select(Device)):
            d.last_seen_ms = T0
    now = T0 + 3 * 3_600_000
    with db.write("health") as s:
        opened, _ = check_offline(s.connection(), now)
        assert len(opened) == 3
        assert alerts.sync_device_alarms(s, now) == 3
        assert alerts.sync_device_alarms(s, now) == 0  # idempotent
    with db.read() as s:
        rows = s.scalars(select(Alert).where(Alert.kind == "device_offline")).all()
        assert len(rows) == 3 and all(a.level == Level.BLUE and a.site_id is not None for a in rows)
    with db.write("x") as s:
        d = s.scalars(select(Device).order_by(Device.id)).first()
        assert d is not None
        d.last_seen_ms = now + MIN
        s.flush()
        check_offline(s.connection(), now + 2 * MIN)
        assert alerts.sync_device_alarms(s, now + 2 * MIN) == 1
    with db.read() as s:
        assert s.scalar(select(text("count(*)")).select_from(Alert).where(Alert.status == "open")) == 2


def test_a_silent_sensor_of_a_live_device_raises_a_no_data_alarm(db: Database) -> None:
    net = build_network(db, n_rain=0, n_gnss=1)
    code, key = next(iter(net.keys.items()))
    ingestor = Ingestor(db)

    def send(t: int, **channels: float) -> None:
        body = orjson.dumps({"deviceId": code, "apikey": key, "data": {"ts": t, **channels}})
        assert ingestor.ingest([RawPayload(body, "mqtt", None, t)], now_ms=t).accepted == len(channels)

    for i in range(8):  # every 30 minutes, X only: Y and Z are silent while the device is alive
        send(T0 + i * 1_800_000, gpsTotalX=1.0 + i)
    now = T0 + 7 * 1_800_000
    with db.write("health") as s:
        assert alerts.sync_no_data_alarms(s, now) == 2
        assert alerts.sync_no_data_alarms(s, now) == 0
    with db.read() as s:
        rules = sorted(s.scalars(select(Alert.rule_id).where(Alert.kind == "no_data", Alert.status == "open")))
    assert rules == [f"no_data:{code}.gpsTotalY", f"no_data:{code}.gpsTotalZ"]
    send(now + 1_800_000, gpsTotalX=9.0, gpsTotalY=1.0, gpsTotalZ=0.5)
    with db.write("health") as s:
        assert alerts.sync_no_data_alarms(s, now + 1_800_000) == 2
    with db.read() as s:
        assert s.scalar(select(text("count(*)")).select_from(Alert).where(Alert.status == "open")) == 0
