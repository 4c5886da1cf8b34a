"""QC on the ingestion path (quality.assess over run_qc_many), on both backends: stored flags equal run_qc
over the whole series, and a settled spike is written back to storage and to the hourly roll-up."""

from __future__ import annotations

import numpy as np
import orjson
from sqlalchemy import select

from geowarn.db import Database
from geowarn.monitoring.ingest import Ingestor, RawPayload
from geowarn.monitoring.models import Device, Observation, ObservationHourly, Sensor
from geowarn.monitoring.qc import QcFlag, run_qc
from geowarn.monitoring.quality import config_of
from geowarn.monitoring.registry import SensorInfo
from tests.monitoring.network import T0, Network, build_network

HALF_HOUR_MS = 1_800_000
# GNSS displacement every 30 min: a 150 mm multipath outlier at reading 5 (spike FAIL once its next
# reading arrives), a NaN-free, slowly moving series otherwise.
X = [0.0, 0.4, 0.9, 1.1, 1.6, 150.0, 2.2, 2.5, 2.9, 3.3, 3.6, 4.1]


def gnss(device: str, key: str, t_ms: int, x: float) -> bytes:
    data = {"gpsTotalX": x, "gpsTotalY": 0.5, "gpsTotalZ": -0.2, "ts": t_ms}
    return orjson.dumps({"deviceId": device, "apikey": key, "data": data})


def stored(db: Database, sensor_id: int) -> list[tuple[int, int, int]]:
    with db.read() as s:
        rows = s.execute(
            select(Observation.t_ms, Observation.flag, Observation.qc)
            .where(Observation.sensor_id == sensor_id)
            .order_by(Observation.t_ms)
        ).all()
    return [(int(t), int(f), int(q)) for t, f, q in rows]


def hourly(db: Database, sensor_id: int) -> list[tuple[int, int, float]]:
    with db.read() as s:
        rows = s.execute(
            select(ObservationHourly.hour_ms, ObservationHourly.n, ObservationHourly.total)
            .where(ObservationHourly.sensor_id == sensor_id)
            .order_by(ObservationHourly.hour_ms)
        ).all()
    return [(int(h), int(n), float(total)) for h, n, total in rows]


def test_streamed_gnss_flags_equal_run_qc_and_settled_spike_is_stored(db: Database) -> None:
    net: Network = build_network(db, n_rain=1, n_gnss=2)
    streamed, batched = "G3509221000", "G3509221001"
    now = T0 + 86_400_000
    ing = Ingestor(db)
    times = [T0 + i * HALF_HOUR_MS for i in range(len(X))]
    for t, x in zip(times, X, strict=True):  # one reading per batch, with the rain gauge in every batch
        rain = orjson.dumps(
            {"deviceId": "R3509221000", "apikey": net.keys["R3509221000"], "data": {"value": 0.0, "ts": t}}
        )
        ing.ingest([RawPayload(gnss(streamed, net.keys[streamed], t, x), "mqtt"), RawPayload(rain, "mqtt")], now_ms=now)
    ing.ingest(
        [RawPayload(gnss(batched, net.keys[batched], t, x), "mqtt") for t, x in zip(times, X, strict=True)], now_ms=now
    )

    one = stored(db, net.sensors[f"{streamed}.gpsTotalX"])
    assert one == stored(db, net.sensors[f"{batched}.gpsTotalX"])
    # ... and both equal run_qc over the whole series with the sensor's config
    with db.read() as s:
        sensor = s.get(Sensor, net.sensors[f"{streamed}.gpsTotalX"])
        device = s.get(Device, sensor.device_id) if sensor else None
        assert sensor is not None and device is not None
        info = SensorInfo(sensor.id, sensor.sensor_type, sensor.channel, dict(sensor.qc_overrides or {}))
        config = config_of(info, device.reporting_interval_s)
    whole = run_qc(np.array(times) / 1000.0, X, config, now=now / 1000.0, installed_at=None)
    assert [f for _, f, _ in one] == whole.aggregate.tolist()
    assert whole.flags["spike"][5] == QcFlag.FAIL and whole.aggregate[5] == QcFlag.FAIL
    # The outlier was GOOD (spike not evaluated) when it arrived alone; its revision reached storage and
    # took it out of the hourly roll-up of its hour.
    hour = times[5] - times[5] % 3_600_000
    rollup = {h: (n, total) for h, n, total in hourly(db, net.sensors[f"{streamed}.gpsTotalX"])}
    assert rollup[hour] == (1, X[4])
    assert hourly(db, net.sensors[f"{streamed}.gpsTotalX"]) == hourly(db, net.sensors[f"{batched}.gpsTotalX"])
