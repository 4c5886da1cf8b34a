"""One drain of the site-warning engine in isolation: CPU and wall time for N sites with history.

N landslide sites each have a rain gauge (interval and cumulative channels) with ``--days`` of
10-minute readings through a storm, written straight to the observation table. Each round adds
one reading per gauge, queues every site and times ``engine.drain()`` (CPU time of the process,
so machine load shows in the wall time, not in the CPU figure). ``--profile`` prints the top of a
cProfile of the last rounds. Run:
.venv/bin/python -m bench.bench_warning_drain [--backend sqlite] [--sites 300] [--days 8] [--rounds 6]
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import os
import pstats
import time

import numpy as np
import shapely
from sqlalchemy import insert, select

from bench.common import fresh_database, machine, table
from geowarn.db import Database
from geowarn.inventory.models import HazardSite
from geowarn.monitoring.models import Device, MonitoringStation, Observation, Sensor
from geowarn.monitoring.service import register_device, register_station
from geowarn.warning.engine import build_engine

T0 = int(dt.datetime(2026, 7, 1, tzinfo=dt.UTC).timestamp() * 1000)
STEP_MS = 600_000
UNIT = "350922100"


def _setup(db: Database, sites: int) -> dict[int, tuple[int, int]]:
    """The sites and gauges; returns site id → (value sensor id, total sensor id)."""
    with db.write("bench") as s:
        for i in range(sites):
            lon, lat = 118.0 + (i % 50) * 0.02, 26.0 + (i // 50) * 0.02
            site = HazardSite(code=f"B{i:05d}", name=f"滑坡{i}", hazard_type="landslide", lon=lon, lat=lat,
                              geom=shapely.Point(lon, lat), unit_code=UNIT, township_code=UNIT)  # fmt: skip
            s.add(site)
            s.flush()
            st = register_station(s, code=f"ST{i:05d}", name="站", lon=lon, lat=lat, unit_code=UNIT, site_id=site.id)
            register_device(s, st, device_type="RAIN", device_code=f"R{i:05d}", reporting_interval_s=600,
                            installed_at=dt.datetime(2026, 6, 1, tzinfo=dt.UTC))  # fmt: skip
    with db.read() as s:
        rows = s.execute(
            select(MonitoringStation.site_id, Sensor.id, Sensor.channel)
            .join(Device, Device.id == Sensor.device_id)
            .join(MonitoringStation, MonitoringStation.id == Device.station_id)
        ).all()
    out: dict[int, dict[str, int]] = {}
    for site_id, sensor_id, channel in rows:
        out.setdefault(int(site_id), {})[channel] = int(sensor_id)
    return {k: (v["value"], v["totalValue"]) for k, v in out.items()}


def _write(db: Database, gauges: dict[int, tuple[int, int]], steps: range, rng: np.random.Generator,
           totals: dict[int, float]) -> None:  # fmt: skip
    """Readings of every gauge at ``steps`` (a storm peaking in the last two days)."""
    rows = []
    n_steps = max(steps.stop, 1)
    for value_id, total_id in gauges.values():
        for k in steps:
            storm = np.sin(min(max(k - n_steps + 288, 0), 288) / 288 * np.pi) ** 2
            mm = float(round(rng.gamma(1.2, 0.3 + 5 * storm), 1))
            totals[value_id] = totals.get(value_id, 0.0) + mm
            t = T0 + k * STEP_MS
            rows.append({"sensor_id": value_id, "t_ms": t, "value": mm, "flag": 1, "qc": 0, "received_ms": t})
            rows.append({"sensor_id": total_id, "t_ms": t, "value": round(totals[value_id], 1), "flag": 1, "qc": 0,
                         "received_ms": t})  # fmt: skip
    with db.write("bench") as s:
        if s.get_bind().dialect.name == "postgresql":
            from geowarn.monitoring.partitions import ensure_partitions

            ensure_partitions(s.connection(), T0 + steps.start * STEP_MS, T0 + steps.stop * STEP_MS)
        for k in range(0, len(rows), 20_000):
            s.execute(insert(Observation), rows[k : k + 20_000])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", default="postgresql")
    ap.add_argument("--sites", type=int, default=300)
    ap.add_argument("--days", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--profile-opening", action="store_true", help="profile the first round (every alert opens)")
    args = ap.parse_args()
    with fresh_database(args.backend) as db:
        gauges = _setup(db, args.sites)
        rng = np.random.default_rng(11)
        totals: dict[int, float] = {}
        history = args.days * 144
        _write(db, gauges, range(history), rng, totals)
        engine, _ = build_engine(db)
        ids = np.array([v for pair in gauges.values() for v in pair], np.int64)
        cpu, wall, changes = [], [], []
        prof = cProfile.Profile() if args.profile or args.profile_opening else None
        for r in range(args.rounds):
            step = history + r
            _write(db, gauges, range(step, step + 1), rng, totals)
            engine.on_stored(ids, np.full(ids.size, T0 + step * STEP_MS))
            if prof is not None and (r == 0) == args.profile_opening:
                prof.enable()
            c0, w0 = time.process_time(), time.perf_counter()
            changes.append(len(engine.drain()))
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
            if prof is not None:
                prof.disable()
        load = " ".join(f"{v:.2f}" for v in os.getloadavg())
        print(machine(), f"· load average (1/5/15 min) {load}")
        # the first round opens the alerts (and warms caches): reported apart from the steady rounds
        print(table(
            ["backend", "sites", "history", "rounds", "drain CPU ms (median)", "drain wall ms (median)",
             "first drain CPU / wall ms", "alert changes a round"],
            [[args.backend, args.sites, f"{args.days} d", args.rounds - 1, f"{np.median(cpu[1:]) * 1000:.0f}",
              f"{np.median(wall[1:]) * 1000:.0f}", f"{cpu[0] * 1000:.0f} / {wall[0] * 1000:.0f}",
              "/".join(str(c) for c in changes)]],
        ))  # fmt: skip
        if prof is not None:
            pstats.Stats(prof).sort_stats("cumulative").print_stats(45)


if __name__ == "__main__":
    main()
