"""MQTT end to end on real Mosquitto: publisher → broker → worker → database.

The fault test kills the worker with SIGKILL in the middle of the stream and restarts the broker
while the worker is down; the stored count must equal the published count exactly.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import orjson
import pytest
from sqlalchemy import func, select

from geowarn.db import Database
from geowarn.monitoring.ingest import Ingestor
from geowarn.monitoring.models import DeadLetter, Observation
from geowarn.monitoring.mqtt import BrokerAddress, MqttWorker
from tests.monitoring.mqtt_helpers import Broker, Publisher, Worker
from tests.monitoring.network import T0, build_network


def _count(db: Database, model: type) -> int:
    with db.read() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def _wait_for(pred: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise TimeoutError("condition not met in time")


@pytest.fixture
def broker(tmp_path: Path) -> Broker:
    b = Broker(tmp_path)
    b.start()
    yield b  # type: ignore[misc]
    b.stop()


def test_kill_worker_and_restart_broker_loses_nothing_and_stores_nothing_twice(
    db: Database, broker: Broker, tmp_path: Path
) -> None:
    net = build_network(db, n_rain=5, n_gnss=0)
    devices = sorted(net.keys)
    n_per_device = 400
    total_readings = len(devices) * n_per_device * 2  # value and totalValue
    messages = [
        (f"geowarn/{d}/up", orjson.dumps({"deviceId": d, "apikey": net.keys[d],
                                          "data": {"value": 0.1, "totalValue": 0.1 * i, "ts": T0 + i * 600_000}}))
        for i in range(n_per_device) for d in devices
    ]  # fmt: skip
    now_limit = T0 + n_per_device * 600_000
    assert now_limit < time.time() * 1000  # the readings are in the past, so none is "in the future"
    worker = Worker(db.url, broker.url, "w-fault", tmp_path / "worker.log")
    worker.start()
    pub = Publisher(broker.port)
    try:
        third = len(messages) // 3
        for topic, body in messages[:third]:
            pub.publish(topic, body)
        _wait_for(lambda: _count(db, Observation) > 200)
        worker.kill()  # mid-stream: some batches stored, some received but not acknowledged
        stored_at_kill = _count(db, Observation)
        for topic, body in messages[third : 2 * third]:
            pub.publish(topic, body)
        pub.wait_acked(2 * third)
        broker.stop()  # the broker restarts while the worker is away; its queue must survive
        broker.start()
        worker.start()
        for topic, body in messages[2 * third :]:
            pub.publish(topic, body)
        pub.wait_acked(len(messages))
        _wait_for(lambda: _count(db, Observation) >= total_readings, timeout=120)
        time.sleep(1.0)  # anything extra would show up now
    finally:
        pub.close()
        worker.terminate()
    assert stored_at_kill < total_readings
    assert _count(db, Observation) == total_readings
    assert _count(db, DeadLetter) == 0


def test_system_broker_hostile_payloads_are_dead_lettered(db: Database) -> None:
    """Against the broker the machine runs (127.0.0.1:1883): valid and hostile messages side by side."""
    net = build_network(db, n_rain=1, n_gnss=0)
    dev = next(iter(net.keys))
    key = net.keys[dev]
    topic_id = f"t{time.time_ns()}"
    ing = Ingestor(db)
    w = MqttWorker(
        ing,
        BrokerAddress.parse("mqtt://127.0.0.1:1883"),
        topic=f"{topic_id}/+/up",
        group="gwtest",
        client_id=f"gw-test-{topic_id}",
        batch_size=50,
        batch_ms=50,
    )
    runner = threading.Thread(target=w.run, daemon=True)
    runner.start()
    assert w.connected.wait(10)
    time.sleep(0.3)  # the subscription is registered after CONNACK
    pub = Publisher(1883, client_id=f"pub-{topic_id}")
    nested = b'{"deviceId":"' + dev.encode() + b'","apikey":"k","data":' + b"[" * 5000 + b"]" * 5000 + b"}"
    deep: object = {"value": 1}
    for _ in range(50):
        deep = {"x": deep}
    hostile = [
        orjson.dumps({"deviceId": dev, "apikey": key, "data": deep}),
        b"not json at all",
        b"\x00\x01\x02",
        nested,
        b'{"deviceId": "' + dev.encode() + b'", "apikey": "' + key.encode() + b'", "data": {"value": "1; DROP TABLE '
        b'observation"}}',
        orjson.dumps({"deviceId": dev, "apikey": key, "data": {"value": 1.0, "ts": T0}}),
        orjson.dumps({"deviceId": dev, "apikey": key, "data": {"value": 1.0, "ts": T0}}),  # replayed
        orjson.dumps(
            {"deviceId": dev, "apikey": key, "data": {"value": 2.0, "ts": T0 + 600_000}, "unexpected": {"x": [1, 2]}}
        ),
        b'{"deviceId":"'
        + dev.encode()
        + b'","apikey":"'
        + key.encode()
        + b'","data":{"value":1,"pad":"'
        + b"x" * 1_100_000
        + b'"}}',
    ]
    try:
        for body in hostile:
            pub.publish(f"{topic_id}/{dev}/up", body)
        pub.wait_acked(len(hostile))
        _wait_for(lambda: w.totals.accepted + w.totals.duplicate + w.totals.rejected >= len(hostile), timeout=30)
    finally:
        w.stop()
        runner.join(10)
        pub.close()
    with db.read() as s:
        reasons = sorted(s.scalars(select(DeadLetter.reason)))
        stored = s.execute(select(Observation.t_ms, Observation.value).order_by(Observation.t_ms)).all()
    assert [tuple(r) for r in stored] == [(T0, 1.0), (T0 + 600_000, 2.0)]
    assert reasons == ["bad_json", "bad_json", "bad_json", "bad_value", "bad_value", "too_large"]
    assert (w.totals.accepted, w.totals.duplicate) == (2, 1)


def test_two_workers_in_one_shared_group_split_the_messages(db: Database) -> None:
    """Two workers subscribed as one ``$share`` group on the system broker: each gets part of the
    messages, and together they store every reading exactly once."""
    net = build_network(db, n_rain=4, n_gnss=0)
    topic_id = f"s{time.time_ns()}"
    workers = [
        MqttWorker(Ingestor(db), BrokerAddress.parse("mqtt://127.0.0.1:1883"), topic=f"{topic_id}/+/up",
                   group="gwsplit", client_id=f"gw-split-{k}-{topic_id}", batch_size=20, batch_ms=20)
        for k in range(2)
    ]  # fmt: skip
    runners = [threading.Thread(target=w.run, daemon=True) for w in workers]
    for r in runners:
        r.start()
    assert all(w.connected.wait(10) for w in workers)
    time.sleep(0.3)  # the subscriptions are registered after CONNACK
    pub = Publisher(1883, client_id=f"pub-{topic_id}")
    n = 50
    try:
        for i in range(n):
            for d in sorted(net.keys):
                body = {"deviceId": d, "apikey": net.keys[d], "data": {"value": 0.1, "ts": T0 + i * 600_000}}
                pub.publish(f"{topic_id}/{d}/up", orjson.dumps(body))
        pub.wait_acked(n * len(net.keys))
        _wait_for(lambda: sum(w.totals.accepted for w in workers) >= n * len(net.keys), timeout=60)
    finally:
        for w in workers:
            w.stop()
        for r in runners:
            r.join(10)
        pub.close()
    shares = [w.totals.accepted for w in workers]
    assert all(k > 0 for k in shares) and sum(shares) == n * len(net.keys), shares
    assert _count(db, Observation) == n * len(net.keys) and all(w.totals.duplicate == 0 for w in workers)
