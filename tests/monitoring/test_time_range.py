"""Device times out of range (2**63, 1e30, -2**63 - 1 …) are bad times at the parsing boundary.

Before, such a time passed ``parse_time_ms`` and overflowed later when the readings became an int64
column: ingestion raised, and the MQTT worker retried the same batch for ever (a poison message).
Now the reading is refused as ``bad_time`` and dead-lettered with the raw payload, and the other
readings of the message are stored.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from pathlib import Path
from typing import Any

import openpyxl
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from geowarn.db import Database
from geowarn.monitoring.files import import_readings
from geowarn.monitoring.ingest import Ingestor, RawPayload
from geowarn.monitoring.models import DeadLetter, Device, Observation
from geowarn.monitoring.mqtt import BrokerAddress, MqttWorker
from geowarn.monitoring.mqtt_client import Delivery
from geowarn.monitoring.payloads import MAX_TIME_MS, MIN_TIME_MS, NO_TIME, parse_payload, parse_time_ms
from tests.monitoring.mqtt_helpers import Broker, Publisher
from tests.monitoring.network import T0, Network, build_network

DEVICE = "R3509221000"
#: Times no device can mean, as Python values and as they arrive in JSON (orjson reads 2**64 as a float).
OUT_OF_RANGE: list[Any] = [
    2**63, 2**63 + 1, 2**64, 2**64 + 1, 10**30, -(2**63), -(2**63) - 1, -(2**64), -1, -1_000_000_000_000_000,
    1e30, -1e30, 1.7e308, -1.7e308, 9.3e18, 2.6e14,
    "9223372036854775808", "18446744073709551616", "-9223372036854775809", "-9223372036854775808", " 1" + "0" * 40,
    "0001-01-01T00:00:00", "1969-12-31T23:59:59Z", "9999-12-31T23:59:59-01:00",
]  # fmt: skip
NOT_TIMES: list[Any] = ["inf", "-inf", "nan", "Infinity", "1e30", float("inf"), float("-inf"), float("nan")]


@pytest.mark.parametrize("value", OUT_OF_RANGE, ids=repr)
def test_times_out_of_range_are_refused_with_a_clear_reason(value: Any) -> None:
    with pytest.raises(ValueError, match="time out of range"):
        parse_time_ms(value)


@pytest.mark.parametrize("value", NOT_TIMES, ids=repr)
def test_non_finite_times_are_refused(value: Any) -> None:
    with pytest.raises(ValueError):
        parse_time_ms(value)


def test_the_range_ends_are_times() -> None:
    assert parse_time_ms(0) == MIN_TIME_MS == 0
    assert parse_time_ms(MAX_TIME_MS) == MAX_TIME_MS
    assert parse_time_ms("9999-12-31T23:59:59.999Z") == MAX_TIME_MS
    assert parse_time_ms("1970-01-01T08:00:00") == 0  # China time
    assert parse_time_ms(1782864000.5) == 1782864000500


def test_a_huge_integer_is_named_briefly() -> None:
    with pytest.raises(ValueError, match="a 3322-bit integer"):
        parse_time_ms(10**1000)
    # The standard library reads such a number (orjson refuses it) when the payload has a NaN elsewhere.
    raw = b'{"deviceId":"D","apikey":"k","data":{"value":NaN,"totalValue":1,"ts":1' + b"0" * 400 + b"}}"
    msg = parse_payload(raw)
    assert len(msg) == 0 and [r.reason for r in msg.rejections] == ["bad_time"]


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.integers(), st.floats(), st.integers().map(str), st.floats().map(repr)))
def test_any_number_is_a_time_in_range_or_a_value_error(value: Any) -> None:
    try:
        t = parse_time_ms(value)
    except ValueError:
        return
    assert MIN_TIME_MS <= t <= MAX_TIME_MS


def _geowarn(*times: Any) -> bytes:
    readings = [{"channel": "value", "t": t, "value": float(i)} for i, t in enumerate(times)]
    return json.dumps({"deviceId": "D", "apikey": "k", "readings": readings}).encode()


@pytest.mark.parametrize("bad", [2**63, 2**64, -(2**63) - 1, -(2**63), 1e30, -1, "18446744073709551616"], ids=repr)
def test_a_message_keeps_its_good_readings_beside_a_bad_time(bad: Any) -> None:
    good = T0 // 1000  # epoch seconds
    for raw in (_geowarn(good, bad, None), _geowarn(bad)):
        msg = parse_payload(raw)
        _, t, _ = msg.columns()  # raised OverflowError before
        assert [r.reason for r in msg.rejections] == ["bad_time"]
        assert "time out of range" in msg.rejections[0].detail
        assert t.tolist() == ([T0, NO_TIME] if len(msg) else [])
    platform = json.dumps(
        {"deviceId": "D", "apikey": "k", "data": [{"value": 1, "ts": T0}, {"value": 2, "ts": bad}, {"value": 3}]}
    ).encode()
    msg = parse_payload(platform)
    assert msg.columns()[1].tolist() == [T0, NO_TIME]
    assert [r.reason for r in msg.rejections] == ["bad_time"]
    message_time = json.dumps({"deviceId": "D", "apikey": "k", "ts": bad, "data": {"value": 1}}).encode()
    msg = parse_payload(message_time)
    assert len(msg) == 0 and [r.reason for r in msg.rejections] == ["bad_time"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(), st.floats(allow_nan=False, allow_infinity=False)), max_size=5))
def test_no_json_number_makes_the_columns_overflow(times: list[Any]) -> None:
    for raw in (
        _geowarn(*times),
        json.dumps({"deviceId": "D", "apikey": "k", "data": [{"value": 1, "ts": t} for t in times]}).encode(),
    ):
        msg = parse_payload(raw)
        _, t, _ = msg.columns()
        given_times = t[t != NO_TIME]
        assert ((given_times >= MIN_TIME_MS) & (given_times <= MAX_TIME_MS)).all()
        assert len(msg) + len(msg.rejections) == len(times)


# --------------------------------------------------------------------------- through the Ingestor


def _rain(key: str, ts: Any, value: float = 0.5) -> bytes:
    return json.dumps({"deviceId": DEVICE, "apikey": key, "data": {"value": value, "ts": ts}}).encode()


def _letters(db: Database) -> list[DeadLetter]:
    with db.read() as s:
        return list(s.scalars(select(DeadLetter).order_by(DeadLetter.id)))


def _stored(db: Database) -> list[tuple[int, float]]:
    with db.read() as s:
        return [(int(t), float(v)) for t, v in s.execute(select(Observation.t_ms, Observation.value))]


@pytest.mark.parametrize("no_install_date", [False, True])
def test_ingest_never_raises_for_any_json_number(db: Database, network: Network, no_install_date: bool) -> None:
    """Every bad time is one dead letter with its raw payload; the good message of the batch is stored.

    Without an install date, -10**15 ms (year -29,000) used to reach the PostgreSQL partitioning and raise.
    """
    if no_install_date:
        with db.write("test") as s:
            s.execute(update(Device).where(Device.device_code == DEVICE).values(installed_at=None))
    key = network.keys[DEVICE]
    bad = [2**63, 2**64, -(2**63) - 1, -(2**63), 1e30, -1e30, -(10**15), -1, 10**30, "9223372036854775808"]
    payloads = [RawPayload(_rain(key, t), "mqtt", f"geowarn/{DEVICE}/up") for t in bad]
    payloads.append(RawPayload(_rain(key, T0, 1.5), "mqtt", f"geowarn/{DEVICE}/up"))
    report = Ingestor(db).ingest(payloads, now_ms=T0 + 3_600_000)
    assert (report.accepted, report.rejected, dict(report.reasons)) == (1, len(bad), {"bad_time": len(bad)})
    assert _stored(db) == [(T0, 1.5)]
    letters = _letters(db)
    assert [d.payload for d in letters] == [p.body for p in payloads[:-1]]
    assert all(d.reason == "bad_time" and "time out of range" in d.detail for d in letters)
    assert all(d.device_code == DEVICE and d.source == "mqtt" for d in letters)


def test_one_message_with_good_and_bad_times(db: Database, network: Network) -> None:
    key = network.keys[DEVICE]
    readings = [{"channel": "value", "t": T0 + i * 600_000, "value": 0.5} for i in range(5)]
    readings.insert(2, {"channel": "value", "t": 2**63, "value": 9.0})
    body = orjson.dumps({"deviceId": DEVICE, "apikey": key, "readings": readings})
    report = Ingestor(db).ingest([RawPayload(body, "http")], now_ms=T0 + 86_400_000)
    assert (report.accepted, report.rejected, dict(report.reasons)) == (5, 1, {"bad_time": 1})
    [letter] = _letters(db)
    assert letter.payload == body and letter.detail.startswith("bad_time: readings[2]: time out of range")


# --------------------------------------------------------------------------- MQTT worker, in process


class _AckRecorder:
    """Stands for the paho client: the worker acknowledges each message of a committed batch through it."""

    def __init__(self) -> None:
        self.acked: list[int] = []

    def ack(self, mid: int, qos: int) -> None:
        self.acked.append(mid)


def test_the_worker_acknowledges_a_poison_message_instead_of_retrying_it(db: Database, network: Network) -> None:
    key = network.keys[DEVICE]
    w = MqttWorker(Ingestor(db), BrokerAddress.parse("mqtt://127.0.0.1:1"), topic="geowarn/+/up", group="",
                   client_id="gw-test-poison")  # fmt: skip
    recorder = _AckRecorder()
    w.client = recorder  # type: ignore[assignment]
    # Stopped first: had ingest raised, _process would return at once without acknowledging (not retry).
    w.stop()
    topic = f"geowarn/{DEVICE}/up"
    bodies = [_rain(key, T0 - 600_000), b'{"deviceId":"' + DEVICE.encode() + b'","apikey":"' + key.encode()
              + b'","data":{"value":7,"ts":9223372036854775808}}', _rain(key, T0)]  # fmt: skip
    w._process([Delivery(topic, body, mid, 1) for mid, body in enumerate(bodies, start=1)])
    assert recorder.acked == [1, 2, 3]
    assert (w.totals.accepted, w.totals.rejected, dict(w.totals.reasons)) == (2, 1, {"bad_time": 1})
    assert sorted(_stored(db)) == [(T0 - 600_000, 0.5), (T0, 0.5)]
    assert [(d.reason, d.payload) for d in _letters(db)] == [("bad_time", bodies[1])]


def test_a_poison_message_through_mosquitto_does_not_block_the_queue(db: Database, tmp_path: Path) -> None:
    net = build_network(db, n_rain=1, n_gnss=0)
    key = net.keys[DEVICE]
    broker = Broker(tmp_path)
    broker.start()
    w = MqttWorker(Ingestor(db), BrokerAddress.parse(broker.url), topic="geowarn/+/up", group="g",
                   client_id="gw-test-poison", batch_size=10, batch_ms=20)  # fmt: skip
    runner = threading.Thread(target=w.run, daemon=True)
    pub: Publisher | None = None
    try:
        runner.start()
        assert w.connected.wait(10)
        time.sleep(0.3)  # the subscription is registered after CONNACK
        pub = Publisher(broker.port, client_id="pub-poison")
        for i, ts in enumerate([T0, 2**63, 1e30, -(2**63) - 1, T0 + 600_000]):
            pub.publish(f"geowarn/{DEVICE}/up", _rain(key, ts, float(i)))
        pub.wait_acked(5)
        deadline = time.monotonic() + 30
        while w.totals.accepted + w.totals.rejected < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        w.stop()
        runner.join(10)
        if pub is not None:
            pub.close()
        broker.stop()
    assert (w.totals.accepted, w.totals.rejected, dict(w.totals.reasons)) == (2, 3, {"bad_time": 3})
    assert sorted(_stored(db)) == [(T0, 0.0), (T0 + 600_000, 4.0)]
    assert [d.reason for d in _letters(db)] == ["bad_time"] * 3


# --------------------------------------------------------------------------- file import


def test_history_files_with_huge_times_keep_their_good_rows(db: Database, network: Network, tmp_path: Path) -> None:
    lines = [
        "设备编号,通道,时间,数值",
        f"{DEVICE},value,2026-07-01 08:00,0.5",
        f"{DEVICE},value,9223372036854775808,1",
        f"{DEVICE},value,18446744073709551616,1",
        f"{DEVICE},value,-9223372036854775809,1",
        f"{DEVICE},value,1e30,1",
        f"{DEVICE},value,inf,1",
        f"{DEVICE},value,{T0 + 600_000},2.5",
    ]
    path = tmp_path / "history.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = import_readings(Ingestor(db), path, now_ms=T0 + 86_400_000)
    assert (report.accepted, report.rejected, dict(report.reasons)) == (2, 5, {"bad_time": 5})  # per reading
    assert sorted(_stored(db)) == [(T0, 0.5), (T0 + 600_000, 2.5)]
    [letter] = _letters(db)
    assert letter.source == "file" and letter.detail.count("bad_time") == 5


def test_spreadsheet_cells_out_of_range_are_bad_times(db: Database, network: Network, tmp_path: Path) -> None:
    path = tmp_path / "history.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["设备编号", "通道", "时间", "数值"])
    ws.append([DEVICE, "value", dt.datetime(2026, 7, 1, 8, 0), 0.5])  # China time: T0
    ws.append([DEVICE, "value", 1e30, 1])
    ws.append([DEVICE, "value", -1e30, 1])
    ws.append([DEVICE, "value", 2**63, 1])
    ws.append([DEVICE, "value", dt.datetime(1900, 1, 1), 1])
    ws.append([DEVICE, "value", float(T0 + 600_000), 2.5])
    wb.save(path)
    report = import_readings(Ingestor(db), path, now_ms=T0 + 86_400_000)
    assert (report.accepted, report.rejected, dict(report.reasons)) == (2, 4, {"bad_time": 4})
    assert sorted(_stored(db)) == [(T0, 0.5), (T0 + 600_000, 2.5)]


def test_a_clock_reset_reading_makes_one_partition_not_one_a_month(db: Database, network: Network) -> None:
    """A device without an install date sends a 1970 reading (its clock was reset) beside today's: both
    are stored, and PostgreSQL gets the partitions of those two months only, not the ~680 between."""
    with db.write("test") as s:
        s.execute(update(Device).where(Device.device_code == DEVICE).values(installed_at=None))
    key = network.keys[DEVICE]
    payloads = [RawPayload(_rain(key, t, v), "mqtt", f"geowarn/{DEVICE}/up") for t, v in ((5_000, 0.5), (T0, 1.5))]
    report = Ingestor(db).ingest(payloads, now_ms=T0 + 3_600_000)
    assert (report.accepted, report.rejected) == (2, 0)
    (old, v_old), new = sorted(_stored(db))  # (5,000 s since the epoch, read as seconds)
    assert old < 31 * 86_400_000 and v_old == 0.5 and new == (T0, 1.5)
    if db.backend == "postgresql":
        with db.read() as s:
            parts = (
                s.connection()
                .exec_driver_sql(
                    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                    "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'observation' ORDER BY 1"
                )
                .scalars()
                .all()
            )
        # (other tests leave this year's months behind: the shared test database is truncated, not rebuilt)
        assert [p for p in parts if p < "observation_2020"] == ["observation_1970_01"]
        assert "observation_2026_07" in parts
