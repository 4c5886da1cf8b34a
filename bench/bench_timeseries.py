"""Time-series queries: latest value of 50,000 sensors in one call, and hourly buckets over a year
of 1-minute data for one sensor. Goals: < 100 ms and < 200 ms. Run: .venv/bin/python bench/bench_timeseries.py
"""

from __future__ import annotations

import datetime as dt
import sys

import numpy as np
import shapely
from sqlalchemy import insert

from bench.common import fresh_database, machine, median_time, table
from geowarn.monitoring import queries as q
from geowarn.monitoring.models import Device, MonitoringStation, Sensor, SensorLatest
from geowarn.monitoring.store import ObservationBatch, update_hourly, write_observations

N_SENSORS = 50_000
YEAR_MIN = 365 * 24 * 60
T0 = int(dt.datetime(2025, 1, 1, tzinfo=dt.UTC).timestamp() * 1000)


def fill(db: object) -> None:
    with db.writer_engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(insert(MonitoringStation), [{"id": 1, "code": "ST1", "name": "st", "lon": 118.9, "lat": 26.6,
                                                  "geom": shapely.Point(118.9, 26.6), "unit_code": "350922100",
                                                  "status": "active"}])  # fmt: skip
        n_dev = N_SENSORS // 2
        conn.execute(insert(Device), [
            {"id": i + 1, "device_code": f"D{i}", "station_id": 1, "device_type": "RAIN", "apikey_hash": "x",
             "reporting_interval_s": 600, "status": "active", "unit_code": f"35092210{i % 10}"}
            for i in range(n_dev)
        ])  # fmt: skip
        conn.execute(insert(Sensor), [
            {"id": i + 1, "code": f"D{i // 2}.{'value' if i % 2 == 0 else 'totalValue'}", "device_id": i // 2 + 1,
             "sensor_type": "RAIN", "channel": "value" if i % 2 == 0 else "totalValue", "quantity": "rain",
             "unit": "mm", "qc_overrides": {}, "unit_code": f"35092210{(i // 2) % 10}", "active": True}
            for i in range(N_SENSORS)
        ])  # fmt: skip
        conn.execute(insert(SensorLatest), [{"sensor_id": i + 1, "unit_code": f"35092210{(i // 2) % 10}", "t_ms": T0,
                                             "value": 1.0, "flag": 1} for i in range(N_SENSORS)])  # fmt: skip
        t = T0 + np.arange(YEAR_MIN, dtype=np.int64) * 60_000
        v = np.sin(np.arange(YEAR_MIN) / 500.0) * 10
        for a in range(0, YEAR_MIN, 100_000):
            b = min(a + 100_000, YEAR_MIN)
            batch = ObservationBatch(
                np.ones(b - a, np.int64), t[a:b], v[a:b], np.ones(b - a, np.int16), np.zeros(b - a, np.int32), T0
            )
            write_observations(conn, batch)
            update_hourly(conn, batch)


def main() -> None:
    rows = []
    for backend in sys.argv[1:] or ["sqlite", "postgresql"]:
        with fresh_database(backend) as db:
            fill(db)
            with db.engine.connect() as conn:
                latest_s, latest = median_time(lambda: q.latest_in_scope(conn, "350922"))
                agg_s, buckets = median_time(lambda: q.aggregate(conn, 1, T0, T0 + YEAR_MIN * 60_000, "1h"))
            assert len(latest) == N_SENSORS, len(latest)
            assert len(buckets) == 8760, len(buckets)
            rows.append([backend, f"{latest_s * 1000:.1f} ms", f"{agg_s * 1000:.1f} ms", len(buckets)])
    print(f"Time-series queries ({machine()}):\n")
    print(table(["backend", "latest of 50,000 sensors (goal < 100 ms)",
                 "1-h buckets over 525,600 1-min readings (goal < 200 ms)", "buckets"], rows))  # fmt: skip


if __name__ == "__main__":
    main()
