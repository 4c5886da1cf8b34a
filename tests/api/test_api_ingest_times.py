"""HTTP ingestion with a device time out of range (2**63, 1e30 …): the good readings are stored and the
bad one is refused as ``bad_time`` into the dead-letter store, never a 500."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from geowarn.db import Database
from geowarn.monitoring.models import Observation
from tests.api.apiworld import World, login

T = 1_782_950_400_000  # 2026-07-02 08:00 China time


def _post(client: TestClient, body: dict[str, Any]) -> tuple[int, dict[str, Any], bytes]:
    raw = json.dumps(body).encode()  # json, not orjson: orjson refuses integers beyond 64 bits
    r = client.post("/api/ingest", content=raw, headers={"Content-Type": "application/json"})
    return r.status_code, r.json(), raw


@pytest.mark.parametrize("bad", [2**63, 2**64, -(2**63) - 1, 1e30, "9223372036854775808"], ids=repr)
def test_a_batch_with_one_huge_time(db: Database, client: TestClient, world: World, bad: Any) -> None:
    readings: list[dict[str, Any]] = [{"channel": "value", "t": T + i * 600_000, "value": 0.5} for i in range(4)]
    readings.insert(1, {"channel": "value", "t": bad, "value": 9.0})
    status, report, raw = _post(client, {"deviceId": "ALPHA-D1", "apikey": world.a.device_key, "readings": readings})
    assert status == 200, report
    assert (report["accepted"], report["rejected"], report["reasons"]) == (4, 1, {"bad_time": 1})
    with db.read() as s:
        stored = sorted(s.scalars(select(Observation.t_ms).where(Observation.value == 0.5)))
    assert stored == [T + i * 600_000 for i in range(4)]
    r = client.get("/api/monitoring/dead-letters", headers=login(client, "alpha_administrator"),
                   params={"reason": "bad_time"})  # fmt: skip
    assert r.status_code == 200, r.text
    [letter] = r.json()["items"]
    assert letter["device_code"] == "ALPHA-D1" and letter["source"] == "http"
    assert letter["detail"].startswith("bad_time: readings[1]: time out of range")
    assert letter["payload_text"] == raw.decode()


def test_a_platform_message_with_a_huge_time_is_refused_not_a_server_error(client: TestClient, world: World) -> None:
    body = {"deviceId": "ALPHA-D1", "apikey": world.a.device_key,
            "data": [{"value": 0.5, "ts": T}, {"value": 1.0, "ts": 9223372036854775808}]}  # fmt: skip
    status, report, _ = _post(client, body)
    assert (status, report["accepted"], report["rejected"], report["reasons"]) == (200, 1, 1, {"bad_time": 1})
    status, report, _ = _post(client, {**body, "ts": 1e30, "data": {"value": 2.0}})
    assert (status, report["accepted"], report["reasons"]) == (200, 0, {"bad_time": 1})


def test_a_query_time_out_of_range_is_a_422(client: TestClient, world: World) -> None:
    r = client.get("/api/monitoring/dead-letters", headers=login(client, "alpha_administrator"),
                   params={"since": "9223372036854775808"})  # fmt: skip
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
