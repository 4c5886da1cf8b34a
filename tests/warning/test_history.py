"""Reading a batch's history: each sensor cut to its own window, on both backends; how far back each
sensor is read."""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import insert, select

from geowarn.db import Database
from geowarn.monitoring.models import Observation, Sensor
from geowarn.warning.engine import SensorInfo, SiteInfo, SiteWarningEngine
from geowarn.warning.evaluator import RuleEvaluator
from geowarn.warning.history import load_series
from geowarn.warning.levels import Level
from tests.monitoring.network import T0, build_network

MIN = 60_000
H = 60 * MIN
DAY = 24 * H


def _sensors(db: Database) -> list[SensorInfo]:
    with db.read() as s:
        rows = s.execute(select(Sensor.id, Sensor.code, Sensor.sensor_type, Sensor.channel).order_by(Sensor.id))
        return [SensorInfo(int(i), c, t, ch) for i, c, t, ch in rows]


def test_each_sensor_gets_its_own_window(db: Database) -> None:
    build_network(db, n_rain=2, n_gnss=0)
    sensors = _sensors(db)
    rng = np.random.default_rng(1)
    rows = []
    for k, s in enumerate(sensors):
        for j in range(50):
            value = None if j % 7 == 3 else float(rng.normal())
            rows.append({"sensor_id": s.id, "t_ms": T0 + j * 10 * MIN + k, "value": value, "flag": j % 4 + 1,
                         "qc": 0, "received_ms": T0})  # fmt: skip
    with db.write("test") as w:
        if w.get_bind().dialect.name == "postgresql":
            from geowarn.monitoring.partitions import ensure_partitions

            ensure_partitions(w.connection(), T0, T0 + DAY)
        w.execute(insert(Observation), rows)
    windows = {s: (T0 + k * 60 * MIN, T0 + (k + 3) * 60 * MIN) for k, s in enumerate(sensors[:-1])}
    windows[sensors[-1]] = (T0 + DAY, T0 + 2 * DAY)  # no readings: left out
    with db.read() as s:
        got = {x.sensor.id: x for x in load_series(s, windows)}
    assert set(got) == {s.id for s in sensors[:-1]}
    for s, (lo, hi) in list(windows.items())[:-1]:
        mine = [r for r in rows if r["sensor_id"] == s.id and lo < r["t_ms"] <= hi]
        x = got[s.id]
        assert x.sensor == s and x.t_ms.dtype == np.int64 and x.flag.dtype == np.int8
        assert x.t_ms.tolist() == [r["t_ms"] for r in mine]
        assert x.flag.tolist() == [r["flag"] for r in mine]
        expect = [np.nan if r["value"] is None else r["value"] for r in mine]
        np.testing.assert_array_equal(x.value, np.array(expect))


def test_rain_is_read_a_week_back_and_displacement_a_month() -> None:
    evaluator = RuleEvaluator()
    site = SiteInfo(1, "S1", "350922100", "landslide")
    sensors = [
        SensorInfo(1, "R1.value", "RAIN", "value"),
        SensorInfo(2, "R1.totalValue", "RAIN", "totalValue"),
        SensorInfo(3, "G1.gpsTotalX", "GP", "gpsTotalX"),
        SensorInfo(4, "T1.value", "TEMPERATURE", "value"),
    ]
    back = evaluator.sensor_lookbacks(site, sensors)
    assert back[1] == back[2] == 7 * DAY + 6 * H  # event rainfall looks a week back
    assert back[3] == 30 * DAY + 3 * DAY + 6 * H + 6 * H == evaluator.lookback_ms(site)  # baseline, recent, rate
    assert 4 not in back  # no rule reads it
    debris = evaluator.sensor_lookbacks(SiteInfo(2, "S2", "350922100", "debris_flow"), sensors)
    assert debris == {1: 7 * DAY + 6 * H, 2: 7 * DAY + 6 * H}


class _Spy(RuleEvaluator):
    """The default evaluator, keeping the series each batch was evaluated with."""

    seen: list[Any]

    def evaluate_many(self, cases: list[Any]) -> list[Any]:
        self.seen = cases
        return super().evaluate_many(cases)


def test_a_gauges_cumulative_channel_is_read_only_when_its_interval_channel_has_no_reading(db: Database) -> None:
    """Gauge 0 sends interval and cumulative rain, gauge 1 only cumulative: the engine reads gauge 0's
    interval channel and gauge 1's cumulative one, and the rules give what they give on every series."""
    net = build_network(db, n_rain=2, n_gnss=0)
    (code0, code1) = sorted(net.keys)
    rows = []
    total = {code0: 0.0, code1: 0.0}
    for j in range(2 * 144):  # two days of 10-minute readings, a storm on the second
        t = T0 + j * 10 * MIN
        for code, phase in ((code0, 0), (code1, 3)):
            mm = float(round(6.0 + (j + phase) % 5, 1)) if j >= 144 else 0.2
            total[code] += mm
            if code == code0:
                rows.append({"sensor_id": net.sensors[f"{code}.value"], "t_ms": t, "value": mm, "flag": 1})
            rows.append({"sensor_id": net.sensors[f"{code}.totalValue"], "t_ms": t, "value": total[code], "flag": 1})
    with db.write("test") as w:
        if w.get_bind().dialect.name == "postgresql":
            from geowarn.monitoring.partitions import ensure_partitions

            ensure_partitions(w.connection(), T0, T0 + 3 * DAY)
        w.execute(insert(Observation), [{**r, "qc": 0, "received_ms": T0} for r in rows])
    now = T0 + (2 * 144 - 1) * 10 * MIN
    spy = _Spy()
    engine = SiteWarningEngine(db, spy)
    engine.on_stored(np.array(sorted(net.sensors.values())), np.full(len(net.sensors), now))
    changes = engine.drain()
    ((site, series, at, _),) = spy.seen
    assert at == now and sorted(x.sensor.code for x in series) == [f"{code0}.value", f"{code1}.totalValue"]
    everything = {s: (now - 8 * DAY, now) for s in _sensors(db)}
    with db.read() as s:
        full = load_series(s, everything)
    assert len(full) == 3
    expect = RuleEvaluator().evaluate(site, full, now, {})
    got = RuleEvaluator().evaluate(site, series, now, {})
    assert [(o.rule_id, o.level, o.reason) for o in got] == [(o.rule_id, o.level, o.reason) for o in expect]
    assert any(o.level > Level.NONE for o in got) and changes  # the storm raised alerts
