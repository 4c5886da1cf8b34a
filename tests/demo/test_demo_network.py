"""The demo's monitoring network: devices fall silent now and then, and with a broker configured the
simulator publishes to it instead of ingesting in-process."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator

import orjson
import paho.mqtt.client as mqtt
import pytest

from geowarn.db import Database
from geowarn.demo.live import MqttSink, start_demo_network
from geowarn.monitoring.models import Observation
from geowarn.monitoring.simulator import SimDevice, Simulator
from tests.conftest import BACKENDS, DEMO_2021, Datasets, demo_county_2021
from tests.monitoring.network import T0

H = 3_600_000


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, datasets: Datasets) -> Iterator[Database]:
    """The demo county of seed 2021 (no network yet), built once per backend; each test its own copy."""
    demo_county_2021(datasets, request.param)
    with datasets.copy(request.param, DEMO_2021) as database:
        yield database


def _gaps(sim: Simulator, hours: int) -> dict[str, int]:
    """The longest gap (ms) between two reports of each device over ``hours``."""
    sim.start_at(T0)
    times: dict[str, list[int]] = {}
    for topic, body in sim.step(T0 + hours * H):
        times.setdefault(topic.split("/")[1], []).append(int(orjson.loads(body)["data"]["ts"]))
    return {code: max(b - a for a, b in itertools.pairwise(ts)) for code, ts in times.items()}


def test_a_device_or_two_falls_silent_for_hours_and_comes_back() -> None:
    devices = [SimDevice(f"R{i}", "k", "RAIN", 600_000) for i in range(20)]
    gaps = _gaps(Simulator(devices, seed=7), hours=24)
    silent = sorted(code for code, gap in gaps.items() if gap >= 2 * H)
    # 2-8 h outages, after which the device reports again; most devices never fall silent
    assert 1 <= len(silent) < len(gaps) and all(gaps[c] <= 9 * H for c in silent), gaps
    quiet = Simulator([SimDevice(f"R{i}", "k", "RAIN", 600_000) for i in range(20)], seed=7, outage_p=0.0)
    assert set(_gaps(quiet, hours=24).values()) == {600_000}  # without outages: every interval


def test_with_a_broker_the_demo_publishes_instead_of_ingesting(db: Database) -> None:
    seen: list[str] = []
    done = threading.Event()
    listener = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"demo-listener-{time.time_ns()}")
    listener.on_message = lambda _c, _u, m: seen.append(m.topic)
    listener.on_subscribe = lambda *_: done.set()
    listener.connect("127.0.0.1", 1883)
    listener.subscribe("geowarn/+/up", qos=1)
    listener.loop_start()
    try:
        assert done.wait(10)
        live, sent = start_demo_network(db, seed=2021, mqtt_url="mqtt://127.0.0.1:1883", start=False, event=False,
                                        backfill_hours=2)  # fmt: skip
        assert isinstance(live.sink, MqttSink) and sent > 0
        codes = {d.code for d in live.sim.devices}
        deadline = time.monotonic() + 30
        while sum(t.split("/")[1] in codes for t in seen) < sent and time.monotonic() < deadline:
            time.sleep(0.1)
        live.sink.client.loop_stop()
        live.sink.client.disconnect()
    finally:
        listener.loop_stop()
        listener.disconnect()
    assert sum(t.split("/")[1] in codes for t in seen) >= sent
    with db.read() as s:  # nothing went in by the in-process path: a worker would store them
        assert s.query(Observation).count() == 0


def test_without_the_event_the_county_is_quiet(db: Database) -> None:
    """``geowarn demo --no-event``: the back-filled day of the whole network, evaluated by the warning
    engine on every instrumented site, raises no alert and no regional product."""
    from sqlalchemy import func, select

    from geowarn.monitoring.models import MonitoringStation, SensorLatest
    from geowarn.warning.models import Alert
    from geowarn.warning.product_models import ProductVersion

    live, sent = start_demo_network(db, seed=2021, event=False, start=False)
    try:
        assert sent > 1000 and live.engine is not None and live.replay is None
        with db.read() as s:
            sites = sorted({int(i) for i in s.scalars(select(MonitoringStation.site_id)) if i is not None})
            newest = int(s.scalar(select(func.max(SensorLatest.t_ms))) or 0)
        assert len(sites) >= 20
        live.engine.evaluate_sites(sites, newest)
        assert live.engine.evaluations >= len(sites)
    finally:
        live.stop()
    with db.read() as s:
        got = [(a.rule_id, a.level, a.reason) for a in s.scalars(select(Alert).where(Alert.kind == "site_rule"))]
        assert got == [], [(r, lv, x["terms"][0]["value"]) for r, lv, x in got[:6]]
        assert s.scalar(select(func.count()).select_from(ProductVersion)) == 0
