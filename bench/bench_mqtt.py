"""MQTT end to end: publisher → Mosquitto → ``geowarn worker`` → database.

Measures readings stored per second from the first publish until the stored count equals the
published count (and checks it is exactly equal). Goals on PostgreSQL: >= 10,000 messages/s with
one reading per message; >= 100,000 readings/s with 50 readings per message.
Run: .venv/bin/python -m bench.bench_mqtt [sqlite|postgresql ...]
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

import orjson
from sqlalchemy import func, select

from bench.common import fresh_database, machine, table
from geowarn.monitoring.models import Observation
from geowarn.monitoring.service import register_device, register_station
from tests.monitoring.mqtt_helpers import Broker, Publisher, Worker

T0 = int(dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp() * 1000)


def register(db: object, n_devices: int) -> dict[str, str]:
    keys = {}
    with db.write("bench") as s:  # type: ignore[attr-defined]
        st = register_station(s, code="ST", name="bench", lon=118.9, lat=26.6, unit_code="350922100")
        for i in range(n_devices):
            r = register_device(s, st, device_type="LF", device_code=f"LF{i:05d}", reporting_interval_s=60)
            keys[r.device.device_code] = r.apikey
    return keys


def messages(keys: dict[str, str], n_messages: int, per_message: int) -> list[tuple[str, bytes]]:
    devices = sorted(keys)
    out = []
    for m in range(n_messages):
        d = devices[m % len(devices)]
        base = T0 + (m // len(devices)) * per_message * 60_000
        data = [{"value": round(1 + (k % 13) * 0.01, 2), "ts": base + k * 60_000} for k in range(per_message)]
        out.append((f"geowarn/{d}/up", orjson.dumps({"deviceId": d, "apikey": keys[d], "data": data})))
    return out


def run(backend: str, n_messages: int, per_message: int, n_workers: int) -> list[object]:
    with fresh_database(backend) as db, tempfile.TemporaryDirectory() as tmp:
        keys = register(db, 2000)
        payloads = messages(keys, n_messages, per_message)
        broker = Broker(Path(tmp))
        broker.start()
        workers = [Worker(db.url, broker.url, f"bench-w{i}", Path(tmp) / f"w{i}.log") for i in range(n_workers)]
        for w in workers:
            w.env["GEOWARN_MQTT_BATCH"] = "2000"
            w.start()
        pub = Publisher(broker.port, client_id="bench-pub")
        expected = n_messages * per_message
        try:
            t0 = time.perf_counter()
            for topic, body in payloads:
                pub.publish(topic, body)
            pub.wait_acked(n_messages, timeout=600)
            t_pub = time.perf_counter() - t0
            stored = 0
            deadline = time.monotonic() + 900
            while time.monotonic() < deadline:
                with db.read() as s:
                    stored = int(s.scalar(select(func.count()).select_from(Observation)) or 0)
                if stored >= expected:
                    break
                time.sleep(0.05)
            elapsed = time.perf_counter() - t0
        finally:
            pub.close()
            for w in workers:
                w.terminate()
            broker.stop()
        exact = "yes" if stored == expected else f"NO ({stored})"
        return [backend, per_message, f"{n_messages:,}", n_workers, f"{t_pub:.1f}", f"{elapsed:.1f}",
                f"{n_messages / elapsed:,.0f}", f"{expected / elapsed:,.0f}", exact]  # fmt: skip


def main() -> None:
    backends = [a for a in sys.argv[1:] if not a.startswith("--")] or ["postgresql", "sqlite"]
    scale = 0.2 if "--small" in sys.argv else 1.0  # --small: 20,000 and 2,000 messages
    rows = []
    for backend in backends:
        rows.append(run(backend, int(100_000 * scale), 1, 1))
        rows.append(run(backend, int(10_000 * scale), 50, 1))
    print(f"MQTT end to end ({machine()}; publisher, Mosquitto, worker and database share the machine):\n")
    print(table(["backend", "readings/msg", "messages", "workers", "publish s", "all stored s", "messages/s",
                 "readings/s", "stored = published"], rows))  # fmt: skip


if __name__ == "__main__":
    main()
