"""HTTP batch ingestion against a real server: POST /api/ingest with 10,000 readings a request.

Starts ``uvicorn`` on the app in a subprocess (one worker process, as ``geowarn serve``), registers crack
meters, then client threads (httpx) send requests of 10,000 readings each in geowarn's own style, each
request a new time range of its device so every reading is new (at one reading a minute, 200 requests
over 20 devices span ten weeks and three monthly partitions). The count stored is checked against the
count sent. QC, roll-ups, latest values and the QC state are all kept; the warning engine is off for this
figure (it measures ingestion; the engine has its own). "Second half" is the rate over the last half of
the requests, to show the rate is sustained as the tables grow.
Run: .venv/bin/python -m bench.bench_http_ingest [--backend sqlite|postgresql] [--requests 200] [--clients 2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import threading
import time

import httpx
import orjson
import shapely
from sqlalchemy import func, select

from bench.common import fresh_database, machine, serve_app, table
from geowarn.inventory.models import HazardSite
from geowarn.monitoring.models import Observation
from geowarn.monitoring.service import register_device, register_station

T0 = int(dt.datetime(2026, 6, 1, tzinfo=dt.UTC).timestamp() * 1000)
PER_REQUEST = 10_000


def _register(db: object, n_devices: int) -> list[tuple[str, str]]:
    keys = []
    with db.write("bench") as s:  # type: ignore[attr-defined]
        unit = "350922100"
        site = HazardSite(code="HB1", name="基准滑坡", hazard_type="landslide", lon=118.9, lat=26.6,
                          geom=shapely.Point(118.9, 26.6), unit_code=unit, township_code=unit)  # fmt: skip
        s.add(site)
        s.flush()
        st = register_station(s, code="HST1", name="站", lon=118.9, lat=26.6, unit_code=unit, site_id=site.id)
        for i in range(n_devices):
            reg = register_device(s, st, device_type="LF", device_code=f"HLF{i:03d}", reporting_interval_s=60,
                                  installed_at=dt.datetime(2026, 5, 1, tzinfo=dt.UTC))  # fmt: skip
            keys.append((f"HLF{i:03d}", reg.apikey))
    return keys


def _bodies(keys: list[tuple[str, str]], n_requests: int) -> list[bytes]:
    out = []
    for r in range(n_requests):
        code, key = keys[r % len(keys)]
        start = T0 + (r // len(keys)) * PER_REQUEST * 60_000
        readings = [
            {"channel": "value", "t": start + j * 60_000, "value": round(1.0 + (j % 97) * 0.01, 2)}
            for j in range(PER_REQUEST)
        ]
        out.append(orjson.dumps({"deviceId": code, "apikey": key, "readings": readings}))
    return out


def run(backend: str, n_requests: int, n_clients: int, n_devices: int = 20) -> list[object]:
    with fresh_database(backend) as db:
        keys = _register(db, n_devices)
        bodies = _bodies(keys, n_requests)
        server, base = serve_app(db.url, wait_s=30, GEOWARN_MODE="test")
        try:
            warm = orjson.dumps({"deviceId": keys[0][0], "apikey": keys[0][1],
                                 "readings": [{"channel": "value", "t": T0 - 60_000, "value": 0.0}]})  # fmt: skip
            httpx.post(f"{base}/api/ingest", content=warm, timeout=60).raise_for_status()  # not counted
            accepted = [0]
            done: list[float] = []
            lock = threading.Lock()
            errors: list[BaseException] = []

            def client(part: list[bytes]) -> None:
                try:
                    with httpx.Client(base_url=base, timeout=300) as c:
                        for body in part:
                            resp = c.post("/api/ingest", content=body, headers={"Content-Type": "application/json"})
                            resp.raise_for_status()
                            with lock:
                                accepted[0] += resp.json()["accepted"]
                                done.append(time.perf_counter())
                except BaseException as exc:  # reported below: a failed request must not pass unnoticed
                    errors.append(exc)

            load = os.getloadavg()[0]
            threads = [threading.Thread(target=client, args=(bodies[i::n_clients],)) for i in range(n_clients)]
            started = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - started
        finally:
            server.terminate()
            server.wait(timeout=30)
        if errors:
            raise errors[0]
        with db.read() as s:
            stored = (s.scalar(select(func.count()).select_from(Observation)) or 0) - 1
        sent = n_requests * PER_REQUEST
        done.sort()
        half = len(done) // 2
        second = (len(done) - half) * PER_REQUEST / (done[-1] - done[half - 1]) if half else float("nan")
        return [backend, n_requests, n_clients, f"{sent:,}", f"{stored:,}", f"{elapsed:.1f} s",
                f"**{sent / elapsed:,.0f}**", f"{second:,.0f}", "yes" if stored == sent == accepted[0] else "NO",
                f"{load:.1f}"]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", action="append")
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--clients", type=int, default=2)
    args = ap.parse_args()
    rows = [run(b, args.requests, args.clients) for b in (args.backend or ["sqlite", "postgresql"])]
    print(f"HTTP batch ingestion, 10,000 readings a request ({machine()}):\n")
    print(table(["backend", "requests", "clients", "readings sent", "stored", "time", "readings/s",
                 "second half readings/s", "stored = sent", "load before"], rows))  # fmt: skip


if __name__ == "__main__":
    main()
