"""The separate engine process path: NOTIFY after commit, LISTEN and evaluate (PostgreSQL)."""

from __future__ import annotations

import threading
import time

import numpy as np
import orjson
import pytest
from sqlalchemy import select

from geowarn.db import Database
from geowarn.monitoring.ingest import Ingestor, RawPayload
from geowarn.warning.engine import attach_notify, build_engine, listen, notify_payloads, parse_payload
from geowarn.warning.levels import Level
from geowarn.warning.models import Alert
from tests.monitoring.network import T0, build_network


def test_payloads_keep_the_newest_time_per_sensor_and_fit_notify() -> None:
    ids = np.array([3, 1, 3, 2, *range(10, 3000)])
    ts = np.array([5, 7, 9, 1] + [T0] * 2990)
    payloads = notify_payloads(ids, ts, 1234.5)
    assert len(payloads) > 1 and all(len(p) <= 7000 for p in payloads)
    got: dict[int, int] = {}
    for p in payloads:
        committed, i, t = parse_payload(p)
        assert committed == 1234.5
        got.update(zip(i.tolist(), t.tolist(), strict=True))
    assert got[3] == 9 and got[1] == 7 and got[2] == 1 and len(got) == 2993


def test_a_reading_stored_by_one_process_is_evaluated_by_the_listener(db: Database) -> None:
    if db.backend != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; SQLite evaluates in the ingesting process")
    net = build_network(db, n_rain=1, n_gnss=0)
    code, key = next(iter(net.keys.items()))
    engine, _ = build_engine(db)
    engine.start()
    stop = threading.Event()
    listener = threading.Thread(target=listen, args=(db, engine, stop), daemon=True)
    listener.start()
    try:
        time.sleep(0.5)  # LISTEN is in place
        ingestor = Ingestor(db)
        attach_notify(db, ingestor)
        body = orjson.dumps({"deviceId": code, "apikey": key, "data": {"ts": T0, "value": 60.0, "totalValue": 60.0}})
        assert ingestor.ingest([RawPayload(body, "mqtt", None, T0)], now_ms=T0).accepted == 2
        deadline = time.monotonic() + 15
        levels: list[int] = []
        while time.monotonic() < deadline and not levels:
            with db.read() as s:
                levels = list(s.scalars(select(Alert.level).where(Alert.rule_id == "rain_24h")))
            time.sleep(0.05)
    finally:
        stop.set()
        listener.join(5)
        engine.stop()
    assert levels == [Level.BLUE]  # 60 mm in 24 h: at least 50, below 70
    assert engine.latencies_s and max(engine.latencies_s) < 15
