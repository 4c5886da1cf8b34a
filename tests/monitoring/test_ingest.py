"""The ingestion path on both backends: every valid reading stored once, everything else dead-lettered."""

from __future__ import annotations

import orjson
from sqlalchemy import func, select, text

from geowarn.db import Database
from geowarn.monitoring.ingest import Ingestor, RawPayload
from geowarn.monitoring.models import DeadLetter, Device, Observation, SensorLatest
from geowarn.monitoring.qc import QcFlag, unpack_flags
from tests.monitoring.network import INSTALLED, T0, Network


def rain(device: str, key: str, t_ms: int, value: float, total: float) -> bytes:
    return orjson.dumps({"deviceId": device, "apikey": key, "data": {"value": value, "totalValue": total, "ts": t_ms}})


def count(db: Database, model: type) -> int:
    with db.read() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_readings_stored_once_even_when_sent_twice(db: Database, network: Network) -> None:
    ing = Ingestor(db)
    key = network.keys["R3509221000"]
    payloads = [RawPayload(rain("R3509221000", key, T0 + i * 600_000, 0.5, 0.5 * (i + 1)), "mqtt") for i in range(20)]
    r1 = ing.ingest(payloads, now_ms=T0 + 86_400_000)
    assert (r1.accepted, r1.duplicate, r1.rejected) == (40, 0, 0)
    r2 = ing.ingest(payloads[5:15] + payloads[:1], now_ms=T0 + 86_400_000)
    assert (r2.accepted, r2.duplicate, r2.rejected) == (0, 22, 0)
    # The same reading twice within one batch counts once.
    dup = RawPayload(rain("R3509221000", key, T0 + 99 * 600_000, 0.1, 9.9), "http")
    r3 = ing.ingest([dup, dup], now_ms=T0 + 86_400_000)
    assert (r3.accepted, r3.duplicate) == (2, 2)
    assert count(db, Observation) == 42


def test_everything_not_stored_is_dead_lettered_with_the_raw_payload(db: Database, network: Network) -> None:
    ing = Ingestor(db)
    key = network.keys["R3509221000"]
    now = T0 + 3_600_000
    bad = [
        RawPayload(b"{oops", "mqtt", "geowarn/x/up"),
        RawPayload(rain("NOPE", key, T0, 1, 1), "mqtt"),
        RawPayload(rain("R3509221000", "wrong-key", T0, 1, 1), "http"),
        RawPayload(rain("R3509221000", key, now + 3_600_000, 1, 1), "mqtt"),  # an hour in the future
        RawPayload(rain("R3509221000", key, int(INSTALLED.timestamp() * 1000) - 1000, 1, 1), "mqtt"),
        RawPayload(
            orjson.dumps({"deviceId": "R3509221000", "apikey": key, "data": {"value": 1, "bogus": 2, "ts": T0}}), "mqtt"
        ),
        RawPayload(
            b'{"deviceId":"R3509221000","apikey":"'
            + key.encode()
            + b'","data":{"value":NaN,"ts":'
            + str(T0 + 1000).encode()
            + b"}}",
            "mqtt",
        ),
    ]
    report = ing.ingest(bad, now_ms=now)
    assert report.accepted == 1  # the 'value' of the message with the unknown 'bogus' channel
    with db.read() as s:
        letters = s.scalars(select(DeadLetter).order_by(DeadLetter.id)).all()
    assert [d.reason for d in letters] == [
        "bad_json", "unknown_device", "unauthorised", "future_time", "before_install", "unknown_channel", "bad_value",
    ]  # fmt: skip
    assert letters[0].payload == b"{oops" and letters[0].channel == "geowarn/x/up"
    assert letters[2].unit_code == "350922100"
    assert all(d.payload == p.body for d, p in zip(letters, bad, strict=True))


def test_quality_flags_are_stored_per_test_and_aggregated(db: Database, network: Network) -> None:
    ing = Ingestor(db)
    key = network.keys["R3509221000"]
    values = [0.0, 0.5, 1.0, 0.5, 999.0, 0.5]  # 999 mm in ten minutes fails the gross range
    payloads = [RawPayload(rain("R3509221000", key, T0 + i * 600_000, v, 10 + i), "mqtt") for i, v in enumerate(values)]
    ing.ingest(payloads, now_ms=T0 + 86_400_000)
    sid = network.sensors["R3509221000.value"]
    with db.read() as s:
        rows = s.execute(
            select(Observation.t_ms, Observation.flag, Observation.qc)
            .where(Observation.sensor_id == sid)
            .order_by(Observation.t_ms)
        ).all()
    flags = [r.flag for r in rows]
    assert flags[4] == QcFlag.FAIL
    assert unpack_flags([rows[4].qc])["gross_range"][0] == QcFlag.FAIL
    assert all(f in (QcFlag.GOOD, QcFlag.NOT_EVALUATED, QcFlag.SUSPECT) for i, f in enumerate(flags) if i != 4)


def test_batch_by_batch_equals_all_at_once(db: Database, network: Network) -> None:
    """Streaming one reading at a time stores the same flags as one big batch."""
    key = network.keys["R3509221000"]
    key2 = network.keys["R3509221001"]
    values = [0, 0, 0.2, 5.0, 0.3, 0, 0, 60.0, 0.1, 0.1, 0.1, 0.1] * 3
    ing = Ingestor(db)
    for i, v in enumerate(values):
        ing.ingest([RawPayload(rain("R3509221000", key, T0 + i * 600_000, v, 0), "mqtt")], now_ms=T0 + 86_400_000)
    ing.ingest(
        [RawPayload(rain("R3509221001", key2, T0 + i * 600_000, v, 0), "mqtt") for i, v in enumerate(values)],
        now_ms=T0 + 86_400_000,
    )
    with db.read() as s:

        def flags(code: str) -> list[tuple[int, int]]:
            sid = network.sensors[code]
            return [
                tuple(r)
                for r in s.execute(
                    select(Observation.flag, Observation.qc)
                    .where(Observation.sensor_id == sid)
                    .order_by(Observation.t_ms)
                ).all()
            ]

        assert flags("R3509221000.value") == flags("R3509221001.value")


def test_latest_and_device_health_move_forward_only(db: Database, network: Network) -> None:
    ing = Ingestor(db)
    dev = "G3509221000"
    key = network.keys[dev]
    msg = orjson.dumps(
        {
            "deviceId": dev,
            "apikey": key,
            "data": [
                {"gpsTotalX": 1.0, "gpsTotalY": 2.0, "gpsTotalZ": 3.0, "ts": T0 + 1_800_000},
                {
                    "gpsTotalX": 1.1,
                    "gpsTotalY": 2.1,
                    "gpsTotalZ": 3.1,
                    "ts": T0 + 3_600_000,
                    "battery": 11.8,
                    "rssi": -71,
                },
            ],
        }
    )
    ing.ingest([RawPayload(msg, "http")], now_ms=T0 + 7_200_000)
    late = orjson.dumps({"deviceId": dev, "apikey": key, "data": {"gpsTotalX": 0.9, "ts": T0}})
    ing.ingest([RawPayload(late, "http")], now_ms=T0 + 7_200_000)
    with db.read() as s:
        latest = s.get(SensorLatest, network.sensors[f"{dev}.gpsTotalX"])
        device = s.scalars(select(Device).where(Device.device_code == dev)).one()
    assert latest is not None and (latest.t_ms, latest.value) == (T0 + 3_600_000, 1.1)
    assert device.last_seen_ms == T0 + 3_600_000
    assert (device.battery, device.signal) == (11.8, -71.0)


def test_pg_partitions_hold_the_rows(db: Database, network: Network) -> None:
    if not db.is_postgres:
        return
    ing = Ingestor(db)
    key = network.keys["R3509221000"]
    months = [T0, T0 + 40 * 86_400_000]  # July and August
    ing.ingest([RawPayload(rain("R3509221000", key, t, 1, 1), "mqtt") for t in months], now_ms=T0 + 50 * 86_400_000)
    with db.read() as s:
        parts = dict(s.execute(text("SELECT tableoid::regclass::text, count(*) FROM observation GROUP BY 1")).all())
    assert parts == {"observation_2026_07": 2, "observation_2026_08": 2}
