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

from geowarn.config import get_settings
from geowarn.monitoring.ingest import Ingestor
from geowarn.monitoring.models import Device
from geowarn.monitoring.simulator import IngestSink, SimDevice, Simulator, register_demo_network, run_batch
from geowarn.warning.sweep import health_sweep

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
        #: The replay of an event: (end of the simulated window, speed, regional cycle or None).
        self.replay: tuple[int, float, Any] | None = None
        #: Advance the replay by exactly ``speed`` simulated seconds a step, however long a step took,
        #: so its batches (and the QC and rule evaluations over them) are the same on any machine.
        self.fixed_steps = False
        self.sim_ms = 0
        self.engine: Any = None
        self.replay_done = threading.Event()

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
        if self.engine is not None:
            self.engine.stop()

    def _replay(self) -> None:
        """Play the simulated window ``speed`` times faster than real time, one step a second."""
        assert self.replay is not None
        end_ms, speed, regional = self.replay
        last = time.monotonic()
        while self.sim_ms < end_ms and not self._stop.wait(1.0):
            now = time.monotonic()
            elapsed = 1.0 if self.fixed_steps else now - last
            self.sim_ms = min(end_ms, self.sim_ms + int(elapsed * speed * 1000))
            last = now
            try:
                run_batch(self.sim, self.sink, self.sim_ms, int(time.time() * 1000))
                if regional is not None:
                    regional.step(self.sim_ms)
            except Exception:
                log.exception("demo replay step failed")
        self.replay_done.set()

    def _run(self) -> None:
        if self.replay is not None:
            self._replay()
        while not self._stop.wait(self.step_s):
            now = int(time.time() * 1000)
            try:
                run_batch(self.sim, self.sink, now, now)
                health_sweep(self.db, now, missed_intervals=get_settings().offline_after_intervals)
            except Exception:  # keep the demo alive; the log says what happened
                log.exception("demo simulator step failed")


def start_demo_network(
    db: Any,
    *,
    seed: int = 2021,
    backfill_hours: float = 24.0,
    mqtt_url: str | None = None,
    start: bool = True,
    event: bool = False,
    speed: float = 360.0,
    warning_engine: bool = True,
    fixed_steps: bool = False,
) -> tuple[LiveNetwork, int]:
    """Register the demo network (once), back-fill readings and start reporting in real time.

    With ``event`` the 36 hours before now are a typhoon (``demo.event``), replayed ``speed`` times
    faster than real time after a back-fill of the day before it (and 30 days for the slope that
    will fail, so its constant-velocity stage is known).
    """
    now = int(time.time() * 1000)
    with db.read() as s:
        registered = (s.scalar(select(func.count()).select_from(Device)) or 0) > 0
    installed = dt.datetime.fromtimestamp(now / 1000 - 60 * 86_400, dt.UTC)
    if registered:
        from geowarn.monitoring.models import MonitoringStation
        from geowarn.monitoring.simulator import demo_apikey

        with db.read() as s:
            rows = s.execute(
                select(Device.device_code, Device.device_type, Device.reporting_interval_s, MonitoringStation.lon,
                       MonitoringStation.lat).join(MonitoringStation, MonitoringStation.id == Device.station_id)
            ).all()  # fmt: skip
        devices = [SimDevice(c, demo_apikey(seed, c), k, i * 1000, lon=x, lat=y) for c, k, i, x, y in rows]
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
    live.fixed_steps = fixed_steps
    sent = _prepare_event(live, db, now, backfill_hours, speed) if event else live.backfill(backfill_hours, now)
    if warning_engine and isinstance(sink, IngestSink):
        from geowarn.warning.engine import attach, build_engine

        engine, _ = build_engine(db)
        attach(engine, sink.ingestor)
        engine.start()
        live.engine = engine
    if start:
        live.start()
    return live, sent


def _prepare_event(live: LiveNetwork, db: Any, now: int, backfill_hours: float, speed: float) -> int:
    from geowarn.demo.event import TyphoonEvent
    from geowarn.demo.replay import RegionalCycle, TyphoonScenario, pick_accelerating

    ev = TyphoonEvent(start_ms=now - 36 * HOUR_MS)
    scenario = TyphoonScenario(ev)
    slope = pick_accelerating(live.sim.devices)
    if slope is not None:
        scenario.accelerating.add(slope)
    live.sim.scenario = scenario
    # 30 days of the failing slope's crack meter first (its steady stage), then everyone's day.
    sent = 0
    if slope is not None:
        solo = LiveNetwork(db, [d for d in live.sim.devices if d.code == slope], seed=live.sim.seed + 1, sink=live.sink)
        solo.sim.scenario = scenario
        solo.sim.outage_p = 0.0
        sent += solo.backfill(30 * 24, ev.start_ms - int(backfill_hours * HOUR_MS))
    sent += live.backfill(backfill_hours, ev.start_ms)
    live.sim_ms = ev.start_ms
    with db.read() as s:
        from geowarn.admin.models import AdminUnit

        county = s.scalar(select(AdminUnit.code).where(AdminUnit.level == "county").order_by(AdminUnit.code).limit(1))
    live.replay = (now, speed, RegionalCycle(db, ev, county) if county else None)
    return sent
