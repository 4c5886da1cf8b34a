"""Streaming site warnings: time from a batch's commit to its sites' alerts being recorded, while
ingesting about 5,000 readings a second (goal: p99 < 1 s on PostgreSQL).

N sites each have a rain gauge (two readings a message: interval and cumulative rain). A producer
ingests a batch every 100 ms through the real Ingestor (500 readings), each gauge's clock moving 10
minutes a message through a storm, while the warning engine (default rules, the same process, as in
``geowarn worker``) evaluates every site that received data and records each batch's alert changes
with their warnings (issue, recipients, outbox) in one transaction. Run:
.venv/bin/python -m bench.bench_warning_stream [--backend sqlite] [--sites 300] [--seconds 20]
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing as mp
import os
import tempfile
import time
from typing import Any

import numpy as np
import orjson
import shapely
from sqlalchemy import func, select

from bench.common import fresh_database, machine, table
from geowarn.dissemination.models import WarningIssue
from geowarn.inventory.models import HazardSite
from geowarn.monitoring.ingest import Ingestor, RawPayload
from geowarn.monitoring.service import register_device, register_station
from geowarn.warning.engine import attach, attach_notify, build_engine, listen
from geowarn.warning.models import Alert, AlertEvent

T0 = int(dt.datetime(2026, 7, 1, tzinfo=dt.UTC).timestamp() * 1000)
STEP_MS = 600_000
UNIT = "350922100"


def _engine_process(url: str, stop: Any, ready: Any, out: str) -> None:
    """The engine in its own process (as ``geowarn engine``), saving its latencies at the end."""
    import threading

    from geowarn.db import Database

    db = Database(url)
    engine, _ = build_engine(db)
    engine.start()
    halt = threading.Event()
    listener = threading.Thread(target=listen, args=(db, engine, halt), daemon=True)
    listener.start()
    time.sleep(0.5)
    ready.set()
    stop.wait()
    halt.set()
    listener.join(5)
    engine.stop()
    np.save(out, np.r_[engine.evaluations, np.array(engine.latencies_s)])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", default="postgresql")
    ap.add_argument("--sites", type=int, default=300)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rate", type=int, default=5000, help="readings a second")
    ap.add_argument("--engine", choices=("inline", "process"), default="inline",
                    help="in the ingesting process, or in a separate one fed by NOTIFY (PostgreSQL)")  # fmt: skip
    args = ap.parse_args()
    with fresh_database(args.backend) as db:
        keys: list[tuple[str, str]] = []
        with db.write("bench") as s:
            for i in range(args.sites):
                lon, lat = 118.0 + (i % 50) * 0.02, 26.0 + (i // 50) * 0.02
                site = HazardSite(code=f"B{i:05d}", name=f"滑坡{i}", hazard_type="landslide", lon=lon, lat=lat,
                                  geom=shapely.Point(lon, lat), unit_code=UNIT, township_code=UNIT)  # fmt: skip
                s.add(site)
                s.flush()
                st = register_station(s, code=f"ST{i:05d}", name="站", lon=lon, lat=lat, unit_code="350922100",
                                      site_id=site.id)  # fmt: skip
                reg = register_device(s, st, device_type="RAIN", device_code=f"R{i:05d}", reporting_interval_s=600,
                                      installed_at=dt.datetime(2026, 6, 1, tzinfo=dt.UTC))  # fmt: skip
                keys.append((f"R{i:05d}", reg.apikey))
        ingestor = Ingestor(db)
        child = None
        if args.engine == "process":
            ctx = mp.get_context("spawn")
            stop, ready, out = ctx.Event(), ctx.Event(), tempfile.mktemp(suffix=".npy")
            child = ctx.Process(target=_engine_process, args=(db.url, stop, ready, out))
            child.start()
            ready.wait(60)
            attach_notify(db, ingestor)
        else:
            engine, _ = build_engine(db)
            attach(engine, ingestor)
            engine.start()
        rng = np.random.default_rng(7)
        per_batch = max(1, args.rate // 10 // 2)  # messages a batch (two readings each), ten batches a second
        totals = [0.0] * len(keys)
        step = [0] * len(keys)
        sent = cursor = 0
        started = time.perf_counter()
        next_tick = started
        while time.perf_counter() - started < args.seconds:
            payloads = []
            for _ in range(per_batch):
                i = cursor % len(keys)
                cursor += 1
                t = T0 + step[i] * STEP_MS
                step[i] += 1
                mm = float(round(rng.gamma(1.5, 1.2 + 6 * np.sin(min(step[i], 144) / 144 * np.pi) ** 2), 1))
                totals[i] += mm
                code, key = keys[i]
                body = {
                    "deviceId": code,
                    "apikey": key,
                    "data": {"ts": t, "value": mm, "totalValue": round(totals[i], 1)},
                }
                payloads.append(RawPayload(orjson.dumps(body), "mqtt", f"geowarn/{code}/up", t))
            report = ingestor.ingest(payloads, now_ms=T0 + 400 * STEP_MS)
            sent += report.accepted
            next_tick += 0.1
            time.sleep(max(0.0, next_tick - time.perf_counter()))
        elapsed = time.perf_counter() - started
        if child is not None:
            time.sleep(3)  # let the engine finish the last batches
            stop.set()
            child.join(60)
            data = np.load(out)
            lat, evaluations = data[1:], int(data[0])
        else:
            deadline = time.monotonic() + 30
            while engine._pending and time.monotonic() < deadline:  # let the engine finish the last batches
                time.sleep(0.05)
            time.sleep(0.5)
            engine.stop()
            lat, evaluations = np.array(engine.latencies_s), engine.evaluations
        with db.read() as s:
            alerts = s.scalar(select(func.count()).select_from(Alert)) or 0
            events = s.scalar(select(func.count()).select_from(AlertEvent)) or 0
            issues = s.scalar(select(func.count()).select_from(WarningIssue)) or 0
        load = " ".join(f"{v:.2f}" for v in os.getloadavg())
        print(machine(), f"· load average (1/5/15 min) {load}")
        print(table(
            ["backend", "sites", "readings stored", "readings/s", "site evaluations", "p50 ms", "p99 ms", "max ms",
             "alerts", "alert events", "warnings issued"],
            [[f"{args.backend} ({args.engine})", args.sites, f"{sent:,}", f"{sent / elapsed:,.0f}", f"{evaluations:,}",
              f"{np.percentile(lat, 50) * 1000:.0f}", f"{np.percentile(lat, 99) * 1000:.0f}", f"{lat.max() * 1000:.0f}",
              alerts, events, issues]],
        ))  # fmt: skip


if __name__ == "__main__":
    main()
