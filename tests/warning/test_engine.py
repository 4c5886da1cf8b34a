"""The streaming engine's plumbing on both backends: stored readings → sites → rules → alerts."""

from __future__ import annotations

import numpy as np
from sqlalchemy import select

from geowarn.db import Database
from geowarn.monitoring.ingest import Ingestor, RawPayload
from geowarn.monitoring.models import Device, Sensor
from geowarn.warning.engine import RuleOutcome, Series, SiteInfo, SiteWarningEngine
from geowarn.warning.levels import Level
from geowarn.warning.models import Alert, AlertEvent
from tests.monitoring.network import T0, build_network

MIN = 60_000


class HourRain:
    """A test rule: rain of the last hour at the site's gauges, >= 10 mm yellow, >= 20 mm orange."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, dict[str, Level]]] = []

    def lookback_ms(self, site: SiteInfo) -> int:
        return 60 * MIN

    def evaluate(
        self, site: SiteInfo, series: list[Series], now_ms: int, previous: dict[str, Level]
    ) -> list[RuleOutcome]:
        self.calls.append((site.code, now_ms, dict(previous)))
        rain = [s for s in series if s.sensor.sensor_type == "RAIN" and s.sensor.channel == "value"]
        total = max((float(np.nansum(s.value[s.t_ms > now_ms - 60 * MIN])) for s in rain), default=0.0)
        level = Level.ORANGE if total >= 20 else Level.YELLOW if total >= 10 else Level.NONE
        return [RuleOutcome("rain_1h", "1小时雨量", level, {"rain_1h_mm": total})]


def _rain(code: str, key: str, t: int, mm: float) -> RawPayload:
    body = f'{{"deviceId":"{code}","apikey":"{key}","data":{{"ts":{t},"value":{mm}}}}}'.encode()
    return RawPayload(body, "http", "/api/ingest", t)


def _store(db: Database, ingestor: Ingestor, engine: SiteWarningEngine, code: str, key: str, t: int, mm: float) -> None:
    report = ingestor.ingest([_rain(code, key, t, mm)], now_ms=t)
    assert report.accepted == 1, report
    with db.read() as s:
        ids = [i for (i,) in s.execute(select(Sensor.id))]
    engine.on_stored(np.array(ids), np.full(len(ids), t))


def test_alerts_follow_the_data_with_data_time(db: Database) -> None:
    net = build_network(db, n_rain=1, n_gnss=0)
    code, key = next(iter(net.keys.items()))
    ingestor, rule = Ingestor(db), HourRain()
    engine = SiteWarningEngine(db, rule)
    for i, mm in enumerate([2.0, 9.0, 12.0, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]):
        _store(db, ingestor, engine, code, key, T0 + i * 10 * MIN, mm)
        engine.drain()
    with db.read() as s:
        (a,) = s.scalars(select(Alert)).all()
        kinds = [(e.kind, e.level_to, e.t_ms) for e in s.scalars(select(AlertEvent).order_by(AlertEvent.id))]
    assert kinds == [("opened", 2, T0 + 10 * MIN), ("escalated", 3, T0 + 20 * MIN), ("deescalated", 2, T0 + 70 * MIN),
                     ("closed", 0, T0 + 80 * MIN)]  # fmt: skip
    assert a.reason["cleared"] == {"rain_1h_mm": 0.5} and a.max_level == Level.ORANGE
    # the evaluator saw the open level each time (for hysteresis)
    assert rule.calls[2][2] == {"rain_1h": Level.YELLOW} and rule.calls[-1][2] == {}
    assert len(engine.latencies_s) == 10 and max(engine.latencies_s) < 60


def test_unknown_sensors_and_empty_batches_are_ignored(db: Database) -> None:
    build_network(db, n_rain=1, n_gnss=0)
    engine = SiteWarningEngine(db, HourRain())
    engine.on_stored(np.array([], np.int64), np.array([], np.int64))
    engine.on_stored(np.array([999_999]), np.array([T0]))
    assert engine.drain() == []


def test_the_worker_thread_evaluates_within_a_second(db: Database) -> None:
    import time

    net = build_network(db, n_rain=1, n_gnss=0)
    code, key = next(iter(net.keys.items()))
    engine = SiteWarningEngine(db, HourRain())
    engine.start()
    try:
        _store(db, Ingestor(db), engine, code, key, T0, 25.0)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not engine.latencies_s:
            time.sleep(0.01)
    finally:
        engine.stop()
    with db.read() as s:
        assert s.scalars(select(Alert.level)).one() == Level.ORANGE


class Unstorable(HourRain):
    """HourRain, but the reason of the site of unit 350922101 cannot be stored (a set is not JSON)."""

    def evaluate(
        self, site: SiteInfo, series: list[Series], now_ms: int, previous: dict[str, Level]
    ) -> list[RuleOutcome]:
        out = super().evaluate(site, series, now_ms, previous)
        if site.unit_code == "350922101":
            out = [RuleOutcome(o.rule_id, o.rule_name, o.level, {"bad": {1, 2}}) for o in out]
        return out


def test_a_site_whose_alerts_cannot_be_stored_does_not_hold_back_the_others(db: Database) -> None:
    from geowarn.inventory.models import HazardSite

    nets = [build_network(db, n_rain=1, n_gnss=0, unit=u) for u in ("350922100", "350922101")]
    ingestor, engine = Ingestor(db), SiteWarningEngine(db, Unstorable())
    for net in nets:
        code, key = next(iter(net.keys.items()))
        assert ingestor.ingest([_rain(code, key, T0, 25.0)], now_ms=T0).accepted == 1
    with db.read() as s:
        ids = [i for (i,) in s.execute(select(Sensor.id))]
    engine.on_stored(np.array(ids), np.full(len(ids), T0))
    changes = engine.drain()  # the batch fails as a whole, then each site is recorded on its own
    with db.read() as s:
        rows = s.execute(select(HazardSite.unit_code, Alert.level).join(Alert, Alert.site_id == HazardSite.id)).all()
    assert [tuple(r) for r in rows] == [("350922100", Level.ORANGE)] and len(changes) == 1


def test_a_silent_sites_alert_ends_on_the_networks_time(db: Database) -> None:
    """A storm opens an alert at site A, then A's gauge falls silent while site B's reports go on:
    once A is an hour behind the network, it is evaluated on the network's time and its alert ends.
    Without new data at A it used to stay open for ever."""
    net_a = build_network(db, n_rain=1, n_gnss=0, unit="350922100")
    net_b = build_network(db, n_rain=1, n_gnss=0, unit="350922101")
    (code_a, key_a), (code_b, key_b) = next(iter(net_a.keys.items())), next(iter(net_b.keys.items()))
    ingestor, rule = Ingestor(db), HourRain()
    engine = SiteWarningEngine(db, rule)
    _store(db, ingestor, engine, code_a, key_a, T0, 25.0)
    engine.drain()
    with db.read() as s:
        assert [(a.site_id is not None, a.status, a.level) for a in s.scalars(select(Alert))] == [(True, "open", 3)]

    def at_b(t: int) -> None:  # a reading at B only: B's site is queued, A's is not
        assert ingestor.ingest([_rain(code_b, key_b, t, 0.0)], now_ms=t).accepted == 1
        ids = sorted(i for c, i in net_b.sensors.items() if c.startswith(code_b))  # (the map holds every sensor)
        engine.on_stored(np.array(ids), np.full(len(ids), t))
        engine.drain()

    at_b(T0 + 50 * MIN)  # the network 50 minutes on: A is not silent yet
    assert engine.evaluate_silent() == []
    with db.read() as s:
        assert s.scalars(select(Alert.status)).all() == ["open"]
    at_b(T0 + 70 * MIN)  # 70 minutes on: A is silent
    (change,) = engine.evaluate_silent()
    with db.read() as s:
        (alert,) = s.scalars(select(Alert)).all()
        events = [(e.kind, e.t_ms) for e in s.scalars(select(AlertEvent).order_by(AlertEvent.id))]
    assert (alert.status, events[-1]) == ("closed", ("closed", T0 + 70 * MIN))
    assert change.alert is not None and change.alert.id == alert.id
    assert engine.evaluate_silent() == []  # nothing open: nothing to do


def test_a_device_under_maintenance_opens_no_site_alert_alone(db: Database) -> None:
    """Gauge 0 is silenced (maintenance) and reports 25 mm: with no other device's data at the site no
    alert opens. Once gauge 1 reports too, the site's data no longer come only from a silenced device
    and the alert opens (a silence must not hide what other devices see)."""
    from geowarn.warning.models import Silence

    net = build_network(db, n_rain=2, n_gnss=0)
    (code0, key0), (code1, key1) = sorted(net.keys.items())
    with db.write("op") as s:
        dev0 = s.scalar(select(Device.id).where(Device.device_code == code0))
        s.add(Silence(device_id=dev0, unit_code="350922100", start_ms=T0 - MIN, end_ms=T0 + 120 * MIN,
                      reason="更换传感器"))  # fmt: skip
    ingestor, engine = Ingestor(db), SiteWarningEngine(db, HourRain())
    _store(db, ingestor, engine, code0, key0, T0, 25.0)
    engine.drain()
    with db.read() as s:
        assert s.scalars(select(Alert)).all() == []  # suppressed: its only data are under maintenance
    _store(db, ingestor, engine, code1, key1, T0 + 10 * MIN, 0.0)
    engine.drain()
    with db.read() as s:
        (alert,) = s.scalars(select(Alert)).all()
    assert (alert.status, alert.level) == ("open", Level.ORANGE)
