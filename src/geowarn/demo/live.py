"""The demo county's monitoring network, alive: devices on the instrumented sites, a day of
back-filled readings, then a simulator reporting in real time while the app is served.

Readings go through the real ingestion path: in-process by default, or published to the MQTT
broker named by ``GEOWARN_MQTT_URL`` (then run ``geowarn worker`` to store them).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from geowarn.monitoring.health import check_offline
from geowarn.monitoring.ingest import Ingestor
from geowarn.monitoring.models import Device
from geowarn.monitoring.simulator import IngestSink, SimDevice, Simulator, register_demo_network, run_batch

log = logging.getLogger(__name__)
HOUR_MS = 3_600_000


@dataclass
class MqttSink:
    """Publishes the simulator's messages to a broker (QoS 1)."""

    client: Any

    def send(self, topic: str, payloads: list[bytes], now_ms: int) -> None:
        for body in payloads:
            self.client.publish(topic, body, qos=1)


class LiveNetwork:
    def __init__(self, db: Any, devices: list[SimDevice], *, seed: int, sink: Any, step_s: float = 10.0) -> None:
        self.db = db
        self.sim = Simulator(devices, seed=seed)
        self.sink = sink
        self.step_s = step_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def backfill(self, hours: float, now_ms: int) -> int:
        """Reports of the last ``hours``, sent an hour at a time (fast: one transaction an hour)."""
        start = now_ms - int(hours * HOUR_MS)
        self.sim.start_at(start)
        sent = 0
        t = start
        while t < now_ms:
            t = min(t + HOUR_MS, now_ms)
            sent += run_batch(self.sim, self.sink, t, now_ms)
        return sent

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="demo-simulator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.step_s):
            now = int(time.time() * 1000)
            try:
                run_batch(self.sim, self.sink, now, now)
                with self.db.writer_engine.begin() as conn:
                    check_offline(conn, now)
            except Exception:  # keep the demo alive; the log says what happened
                log.exception("demo simulator step failed")


def start_demo_network(
    db: Any, *, seed: int = 2021, backfill_hours: float = 24.0, mqtt_url: str | None = None, start: bool = True
) -> tuple[LiveNetwork, int]:
    """Register the demo network (once), back-fill readings and start reporting in real time."""
    now = int(time.time() * 1000)
    with db.read() as s:
        registered = (s.scalar(select(func.count()).select_from(Device)) or 0) > 0
    installed = dt.datetime.fromtimestamp(now / 1000 - 30 * 86_400, dt.UTC)
    if registered:
        from geowarn.monitoring.simulator import demo_apikey

        with db.read() as s:
            rows = s.execute(select(Device.device_code, Device.device_type, Device.reporting_interval_s)).all()
        devices = [SimDevice(c, demo_apikey(seed, c), k, i * 1000) for c, k, i in rows]
    else:
        devices = register_demo_network(db, seed=seed, installed_at=installed)
    if mqtt_url:
        import paho.mqtt.client as mqtt

        from geowarn.monitoring.mqtt import BrokerAddress

        addr = BrokerAddress.parse(mqtt_url)
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"geowarn-demo-{seed}")
        client.connect(addr.host, addr.port)
        client.loop_start()
        sink: Any = MqttSink(client)
    else:
        sink = IngestSink(Ingestor(db))
    live = LiveNetwork(db, devices, seed=seed, sink=sink)
    sent = live.backfill(backfill_hours, now)
    if start:
        live.start()
    return live, sent
