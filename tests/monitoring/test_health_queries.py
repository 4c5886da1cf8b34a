"""Online rate, offline events and time-series queries, checked against hand-computed answers."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from geowarn.db import Database
from geowarn.monitoring import queries as q
from geowarn.monitoring.health import check_offline, device_online_rates, expected_reports, online_rate, roll_up
from geowarn.monitoring.ingest import Ingestor, RawPayload
from tests.monitoring.network import T0, Network, build_network

H = 3_600_000


def _rain(net: Network, dev: str, t: int, v: float, total: float = 0.0) -> RawPayload:
    return RawPayload(orjson.dumps({"deviceId": dev, "apikey": net.keys[dev],
                                    "data": {"value": v, "totalValue": total, "ts": t}}), "http")  # fmt: skip


def test_online_rate_core() -> None:
    assert online_rate([144, 72, 200, 0], [144, 144, 144, 0]).tolist()[:3] == [1.0, 0.5, 1.0]
    assert np.isnan(online_rate([1], [0])[0])
    # A device installed at noon is expected for half the day only.
    assert expected_reports(0, 86_400_000, [600, 600], [np.nan, 43_200_000]).tolist() == [144.0, 72.0]


def test_device_rates_and_roll_up(db: Database, network: Network) -> None:
    ing = Ingestor(db)
    day = T0
    # R...0 reports every 10 minutes all day (144), R...1 only the first 6 hours (36), the GNSS never.
    ing.ingest([_rain(network, "R3509221000", day + i * 600_000, 0.0) for i in range(144)], now_ms=day + 25 * H)
    ing.ingest([_rain(network, "R3509221001", day + i * 600_000, 0.0) for i in range(36)], now_ms=day + 25 * H)
    with db.read() as s:
        rates = device_online_rates(s.connection(), day, day + 24 * H, "350922")
    by_code = {r.device_code: (r.received, r.expected) for r in rates}
    assert by_code == {"R3509221000": (144, 144), "R3509221001": (36, 144), "G3509221000": (0, 48)}
    site = roll_up(rates, "site")
    (only,) = site.values()
    assert only["received"] == 180 and only["expected"] == 336
    assert only["rate"] == pytest.approx(180 / 336)
    with db.read() as s:
        assert device_online_rates(s.connection(), day, day + 24 * H, "350922101") == []  # another township


def test_offline_event_opens_and_closes(db: Database, network: Network) -> None:
    ing = Ingestor(db)
    ing.ingest([_rain(network, "R3509221000", T0, 0.0)], now_ms=T0 + 1000)
    with db.writer_engine.begin() as conn:
        opened, closed = check_offline(conn, T0 + 20 * 60_000)  # 2 intervals: not yet
        assert "R" not in str(opened)
        opened, _ = check_offline(conn, T0 + 31 * 60_000)
        again, _ = check_offline(conn, T0 + 40 * 60_000)  # no second event while one is open
    assert len(opened) >= 1 and not set(opened) & set(again)
    ing.ingest([_rain(network, "R3509221000", T0 + 45 * 60_000, 0.0)], now_ms=T0 + 45 * 60_000)
    with db.writer_engine.begin() as conn:
        _, closed = check_offline(conn, T0 + 46 * 60_000)
        rows = conn.exec_driver_sql("SELECT device_id, started_ms, ended_ms FROM device_event ORDER BY id").all()
    with db.read() as s:
        from sqlalchemy import select

        from geowarn.monitoring.models import Device

        dev_id = s.scalar(select(Device.id).where(Device.device_code == "R3509221000"))
    assert dev_id in opened and dev_id in closed
    started, ended = next((r[1], r[2]) for r in rows if r[0] == dev_id)
    assert (started, ended) == (T0 + 600_000, T0 + 45 * 60_000)


def test_two_checks_at_once_keep_one_open_event_and_neither_fails(db: Database, network: Network) -> None:
    """Two processes checking at the same moment (every worker and every ``serve`` sweeps): the second
    waits for the first and opens nothing; on PostgreSQL its insert meets the unique index."""
    import threading
    import time

    Ingestor(db).ingest([_rain(network, "R3509221000", T0, 0.0)], now_ms=T0 + 1000)
    now = T0 + 31 * 60_000
    got: dict[str, object] = {}

    def second() -> None:
        try:
            with db.writer_engine.begin() as conn:
                got["opened"] = check_offline(conn, now)[0]
        except Exception as exc:  # the assertion below reports it
            got["error"] = exc

    first = db.writer_engine.connect()  # on SQLite the one writer connection: the second waits for it
    with first.begin():
        opened, _ = check_offline(first, now)
        other = threading.Thread(target=second)
        other.start()
        time.sleep(0.5)  # the second check runs into the first's uncommitted events
    first.close()
    other.join(30)
    assert not other.is_alive() and "error" not in got, got
    assert opened and not set(opened) & set(got["opened"])  # type: ignore[arg-type]
    with db.writer_engine.begin() as conn:
        per_device = conn.exec_driver_sql(
            "SELECT device_id, count(*) FROM device_event WHERE ended_ms IS NULL GROUP BY device_id"
        ).all()
        assert sorted(d for d, _ in per_device) == sorted(opened) and {n for _, n in per_device} == {1}
        # a third check after both: nothing new, and closing works on the single open event
        assert check_offline(conn, now + 60_000)[0] == []


def test_minute_buckets_and_means_are_the_readings_by_hand(db: Database, network: Network) -> None:
    """Readings every 2 minutes for an hour, one of them failed by QC (left out): the 1-minute buckets
    are the readings themselves, the 10-minute buckets hold five each with their mean, and a failed
    reading counts nowhere."""
    from sqlalchemy import update

    from geowarn.monitoring.models import Observation

    ing = Ingestor(db)
    n = 30
    mm = 0.2 + (np.arange(n) % 7) * 0.1
    ing.ingest([_rain(network, "R3509221000", T0 + i * 120_000, float(mm[i])) for i in range(n)], now_ms=T0 + H)
    sid = network.sensors["R3509221000.value"]
    with db.write("test") as w:  # QC failed the 4th reading (say, a later revision)
        w.execute(update(Observation).where(Observation.sensor_id == sid, Observation.t_ms == T0 + 3 * 120_000)
                  .values(flag=4))  # fmt: skip
    keep = np.ones(n, bool)
    keep[3] = False
    with db.read() as s:
        minutes = q.aggregate(s.connection(), sid, T0, T0 + H, "1min")
        tens = q.aggregate(s.connection(), sid, T0, T0 + H, "10min")
    got_minutes = np.array([(b.start_ms - T0, b.count, b.sum) for b in minutes], dtype=float)
    assert np.allclose(got_minutes, np.array([(i * 120_000, 1, mm[i]) for i in range(n) if keep[i]], dtype=float))
    expected = []
    for k in range(6):
        part = [mm[i] for i in range(5 * k, 5 * k + 5) if keep[i]]
        expected.append((k * 600_000, len(part), sum(part) / len(part), min(part), max(part), part[-1]))
    got = [(b.start_ms - T0, b.count, b.mean, b.min, b.max, b.last) for b in tens]
    assert np.allclose(np.array(got, dtype=float), np.array(expected, dtype=float))


def test_buckets_latest_and_rain_windows(db: Database, network: Network) -> None:
    ing = Ingestor(db)
    # 1 mm every 10 minutes for 80 hours, then the query "now" is the last reading.
    n = 80 * 6  # 0.5-0.9 mm every 10 minutes (a constant would rightly be flagged as a stuck gauge)
    mm = 0.5 + (np.arange(n) % 5) * 0.1
    total = np.cumsum(mm)
    payloads = [_rain(network, "R3509221000", T0 + i * 600_000, float(mm[i]), float(total[i])) for i in range(n)]
    ing.ingest(payloads, now_ms=T0 + n * 600_000)
    sid = network.sensors["R3509221000.value"]
    now = T0 + (n - 1) * 600_000
    with db.read() as s:
        conn = s.connection()
        hours = q.aggregate(conn, sid, T0, T0 + 3 * H, "1h")
        windows = q.rainfall_windows(conn, now, "350922")
        latest = q.latest_in_scope(conn, "350922100")
        raw = q.raw(conn, network.sensors["R3509221000.totalValue"], T0, T0 + H)
        other = q.latest_in_scope(conn, "350922101")
    # T0 is 08:00 China time, so hourly buckets start on the hour.
    expected_hours = [
        (k * H, 6, mm[6 * k : 6 * k + 6].sum(), mm[6 * k : 6 * k + 6].min(), mm[6 * k : 6 * k + 6].max(), mm[6 * k + 5])
        for k in range(3)
    ]
    got_hours = [(b.start_ms - T0, b.count, b.sum, b.min, b.max, b.last) for b in hours]
    assert np.allclose(np.array(got_hours, dtype=float), np.array(expected_hours, dtype=float))
    expected_windows = {h: float(mm[n - 6 * h :].sum()) for h in (1, 3, 6, 12, 24, 72)}
    assert windows[sid] == pytest.approx(expected_windows)
    got = {
        (int(i), int(t), round(float(v), 6))
        for i, t, v in zip(latest.sensor_id, latest.t_ms, latest.value, strict=True)
    }
    assert got == {
        (sid, now, round(mm[-1], 6)),
        (network.sensors["R3509221000.totalValue"], now, round(total[-1], 6)),
    }
    assert [r[1] for r in raw] == pytest.approx(total[:6].tolist())
    assert len(other) == 0


def test_day_buckets_follow_china_time(db: Database, network: Network) -> None:
    ing = Ingestor(db)
    midnight_cst = T0 - 8 * H + 24 * H  # 2026-07-02 00:00 +08:00
    times = [midnight_cst - 600_000, midnight_cst, midnight_cst + 600_000]
    ing.ingest([_rain(network, "R3509221000", t, 2.0) for t in times], now_ms=midnight_cst + H)
    with db.read() as s:
        days = q.aggregate(s.connection(), network.sensors["R3509221000.value"], T0 - 24 * H, T0 + 48 * H, "1day")
    assert [(b.start_ms, b.count) for b in days] == [(midnight_cst - 24 * H, 1), (midnight_cst, 2)]


def test_other_township_network_is_separate(db: Database) -> None:
    a = build_network(db, n_rain=1, n_gnss=0, unit="350922100")
    b = build_network(db, n_rain=1, n_gnss=0, unit="350922101")
    ing = Ingestor(db)
    ing.ingest([_rain(a, "R3509221000", T0, 1.0), _rain(b, "R3509221010", T0, 2.0)], now_ms=T0 + 1000)
    with db.read() as s:
        la = q.latest_in_scope(s.connection(), "350922100")
        lb = q.latest_in_scope(s.connection(), "350922101")
        both = q.latest_in_scope(s.connection(), "350922")
    assert set(la.sensor_id.tolist()) == {a.sensors["R3509221000.value"], a.sensors["R3509221000.totalValue"]}
    assert set(lb.sensor_id.tolist()) == {b.sensors["R3509221010.value"], b.sensors["R3509221010.totalValue"]}
    assert len(both) == 4


def test_hourly_rollup_equals_raw_aggregation(db: Database, network: Network) -> None:
    """The roll-up path must answer exactly what the raw rows say, through revisions and re-sends."""
    rng = np.random.default_rng(5)
    ing = Ingestor(db)
    dev = "R3509221000"
    n = 30 * 6
    mm = np.round(rng.gamma(1.0, 1.0, n), 1)
    mm[50] = 500.0  # fails the gross range: left out of both answers
    times = T0 + np.arange(n) * 600_000 + 17_000  # not aligned to the hour
    order = rng.permutation(n)
    for chunk in np.array_split(order[: n // 2], 7):  # out of order, in pieces
        ing.ingest([_rain(network, dev, int(times[i]), float(mm[i])) for i in sorted(chunk)], now_ms=T0 + 40 * H)
    for chunk in np.array_split(np.arange(n), 11):  # everything again, in time order: duplicates included
        ing.ingest([_rain(network, dev, int(times[i]), float(mm[i])) for i in chunk], now_ms=T0 + 40 * H)
    sid = network.sensors[f"{dev}.value"]
    with db.read() as s:
        conn = s.connection()
        for bucket in ("1h", "1day"):
            for a, b in ((T0, T0 + 31 * H), (T0 + 1_234_567, T0 + 29 * H + 99)):
                rolled = q.aggregate(conn, sid, a, b, bucket)
                raw = q._merge(q._raw_parts(conn, sid, a, b, 3), q.BUCKETS_MS[bucket])
                assert [(x.start_ms, x.count, x.last) for x in rolled] == [(x.start_ms, x.count, x.last) for x in raw]
                assert np.allclose([(x.sum, x.min, x.max) for x in rolled], [(x.sum, x.min, x.max) for x in raw])
