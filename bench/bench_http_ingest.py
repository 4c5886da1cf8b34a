"""HTTP batch ingestion against a real server: POST /api/ingest with 10,000 readings a request.

Starts ``uvicorn`` on the app (one worker process, as ``geowarn serve``), registers crack meters,
then two client threads (httpx) send requests of 10,000 readings each in geowarn's own style, each
request a new time range so every reading is new; the count stored is checked against the count
sent. The warning engine is off for this figure (it measures ingestion; the engine has its own).
Run: .venv/bin/python -m bench.bench_http_ingest [--backend sqlite|postgresql] [--requests 60]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import socket
import subprocess
import sys
import threading
import time

import httpx
import orjson
import shapely
from sqlalchemy import func, select

from bench.common import fresh_database, machine, table
from geowarn.inventory.models import HazardSite
from geowarn.monitoring.models import Observation
from geowarn.monitoring.service import register_device, register_station

T0 = int(dt.datetime(2026, 6, 1, tzinfo=dt.UTC).timestamp() * 1000)
PER_REQUEST = 10_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(backend: str, n_requests: int, n_devices: int = 20) -> list[object]:
    with fresh_database(backend) as db:
        keys = []
        with db.write("bench") as s:
            unit = "350922100"
            site = HazardSite(code="HB1", name="基准滑坡", hazard_type="landslide", lon=118.9, lat=26.6,
                              geom=shapely.Point(118.9, 26.6), unit_code=unit, township_code=unit)  # fmt: skip
            s.add(site)
            s.flush()
            st = register_station(
                s, code="HST1", name="站", lon=118.9, lat=26.6, unit_code="350922100", site_id=site.id
            )
            for i in range(n_devices):
                reg = register_device(s, st, device_type="LF", device_code=f"HLF{i:03d}", reporting_interval_s=60,
                                      installed_at=dt.datetime(2026, 5, 1, tzinfo=dt.UTC))  # fmt: skip
                keys.append((f"HLF{i:03d}", reg.apikey))
        port = _free_port()
        env = {**os.environ, "GEOWARN_DATABASE_URL": db.url, "GEOWARN_WARNING_ENGINE": "false", "GEOWARN_MODE": "test",
               "GEOWARN_LOG_LEVEL": "WARNING"}  # fmt: skip
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "geowarn.api.app:create_app", "--port", str(port),
             "--log-level", "warning", "--no-access-log"], env=env,
        )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(200):
                try:
                    if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            bodies = []
            for r in range(n_requests):
                code, key = keys[r % n_devices]
                start = T0 + (r // n_devices) * PER_REQUEST * 60_000
                readings = [
                    {"channel": "value", "t": start + j * 60_000, "value": round(j * 0.001, 3)}
                    for j in range(PER_REQUEST)
                ]
                bodies.append(orjson.dumps({"deviceId": code, "apikey": key, "readings": readings}))
            accepted = [0]
            lock = threading.Lock()

            def client(part: list[bytes]) -> None:
                with httpx.Client(base_url=base, timeout=120) as c:
                    for body in part:
                        resp = c.post("/api/ingest", content=body, headers={"Content-Type": "application/json"})
                        resp.raise_for_status()
                        with lock:
                            accepted[0] += resp.json()["accepted"]

            # warm-up request (not counted)
            warm = orjson.dumps({"deviceId": keys[0][0], "apikey": keys[0][1],
                                 "readings": [{"channel": "value", "t": T0 - 60_000, "value": 0.0}]})  # fmt: skip
            httpx.post(f"{base}/api/ingest", content=warm, timeout=60).raise_for_status()
            threads = [threading.Thread(target=client, args=(bodies[i::2],)) for i in range(2)]
            started = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - started
        finally:
            server.terminate()
            server.wait(timeout=30)
        with db.read() as s:
            stored = (s.scalar(select(func.count()).select_from(Observation)) or 0) - 1
        sent = n_requests * PER_REQUEST
        return [backend, f"{sent:,}", f"{accepted[0]:,}", f"{stored:,}", f"{elapsed:.1f} s", f"{sent / elapsed:,.0f}",
                "yes" if stored == sent == accepted[0] else "NO"]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", action="append")
    ap.add_argument("--requests", type=int, default=60)
    args = ap.parse_args()
    rows = [run(b, args.requests) for b in (args.backend or ["sqlite", "postgresql"])]
    print(machine())
    print(table(["backend", "readings sent", "accepted", "stored", "time", "readings/s", "stored = sent"], rows))


if __name__ == "__main__":
    main()
