"""Time series, latest values, rainfall windows, online rate, offline events and dead letters over HTTP."""

from __future__ import annotations

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert

from geowarn.db import Database
from geowarn.monitoring.models import DeviceEvent, Observation
from tests.api.apiworld import TOWN_A, TOWN_B, World, login

DAY0 = 1_782_921_600_000  # 2026-07-02 00:00 China time
MIN = 60_000
CYCLE = (0.5, 0.4, 0.6)  # 1.5 mm an hour, never a flat line


@pytest.fixture
def day(client: TestClient, world: World) -> None:
    """A's rain gauge reports every 20 min on 2026-07-02 (72 of the 144 expected reports); 999 mm at 08:00 fails QC."""
    readings = []
    for i in range(72):
        t = DAY0 + i * 20 * MIN
        readings.append({"channel": "value", "t": t, "value": 999.0 if t == DAY0 + 8 * 60 * MIN else CYCLE[i % 3]})
        readings.append({"channel": "totalValue", "t": t, "value": 100.0 + i})
    body = {"deviceId": "ALPHA-D1", "apikey": world.a.device_key, "readings": readings}
    r = client.post("/api/ingest", content=orjson.dumps(body))
    assert r.status_code == 200 and r.json()["accepted"] == 144, r.text


def test_raw_readings_carry_each_tests_flag(client: TestClient, world: World, day: None, as_a: dict[str, str]) -> None:
    url = f"/api/monitoring/sensors/{world.a.sensor}/observations"
    r = client.get(url, headers=as_a, params={"start": "2026-07-02T08:00:00+08:00", "end": "2026-07-02 09:00"})
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [i["t"] for i in items] == ["2026-07-02T08:00:00+08:00", "2026-07-02T08:20:00+08:00",
                                       "2026-07-02T08:40:00+08:00"]  # fmt: skip
    assert items[0]["value"] == 999.0 and items[0]["flag"] == 4
    assert items[0]["qc"]["gross_range"] == 4 and items[0]["qc"]["timestamp"] == 1
    assert all(i["qc"]["gross_range"] == 1 for i in items[1:])
    r = client.get(url, headers=as_a, params={"start": DAY0 + 8 * 60 * MIN, "end": DAY0 + 9 * 60 * MIN, "max_flag": 3})
    assert [i["value"] for i in r.json()["items"]] == [0.4, 0.6]


def test_buckets(client: TestClient, world: World, day: None, as_a: dict[str, str]) -> None:
    url = f"/api/monitoring/sensors/{world.a.sensor}/observations"
    r = client.get(url, headers=as_a, params={"start": "2026-07-02", "end": "2026-07-03", "bucket": "1h"})
    hours = r.json()["items"]
    assert len(hours) == 24 and hours[0]["t"] == "2026-07-02T00:00:00+08:00"
    assert (hours[8]["count"], hours[8]["sum"], hours[8]["max"]) == (2, 1.0, 0.6)  # the failed 999 is left out
    assert (hours[9]["count"], hours[9]["sum"]) == (3, pytest.approx(1.5))
    r = client.get(url, headers=as_a, params={"start": "2026-07-01", "end": "2026-07-03", "bucket": "1day"})
    assert [(d["t"], d["count"], d["sum"]) for d in r.json()["items"]] == [
        ("2026-07-01T00:00:00+08:00", 1, 1.5),
        ("2026-07-02T00:00:00+08:00", 71, pytest.approx(35.5)),
    ]
    bad = client.get(url, headers=as_a, params={"start": "2026-07-03", "end": "2026-07-02"})
    assert bad.status_code == 422
    assert client.get(url, headers=as_a, params={"start": "soon"}).status_code == 422


def test_raw_range_is_bounded(db: Database, client: TestClient, world: World, as_a: dict[str, str]) -> None:
    t0 = DAY0 + 30 * 60 * 60 * 1000
    rows = [
        {"sensor_id": world.a.sensor, "t_ms": t0 + i * 1000, "value": 0.0, "flag": 1, "qc": 0, "received_ms": t0}
        for i in range(100_001)
    ]
    with db.writer_engine.begin() as conn:
        conn.execute(insert(Observation), rows)
    url = f"/api/monitoring/sensors/{world.a.sensor}/observations"
    params = {"start": t0, "end": t0 + 200_000_000}
    r = client.get(url, headers=as_a, params=params)
    assert r.status_code == 422 and "100000" in r.json()["detail"]
    assert client.get(url, headers=as_a, params={**params, "bucket": "1h"}).status_code == 200


def test_latest_for_the_map(client: TestClient, world: World, as_a: dict[str, str]) -> None:
    r = client.get("/api/monitoring/latest", headers=as_a)
    assert r.status_code == 200
    items = {i["code"]: i for i in r.json()["items"]}
    assert set(items) == {"ALPHA-D1.value", "ALPHA-D1.totalValue"}
    v = items["ALPHA-D1.value"]
    assert (v["sensor_id"], v["type"], v["unit"], v["station_id"]) == (world.a.sensor, "RAIN", "mm", world.a.station)
    assert (v["t"], v["value"], v["flag"], v["lon"], v["lat"]) == ("2026-07-01T08:00:00+08:00", 1.5, 1, 119.05, 26.05)
    assert items["ALPHA-D1.totalValue"]["t"] is None  # no reading yet
    county = client.get("/api/monitoring/latest", headers=login(client, "county_admin")).json()
    assert county["count"] == 4


def test_rainfall_windows(client: TestClient, world: World, day: None, as_a: dict[str, str]) -> None:
    r = client.get("/api/monitoring/rainfall", headers=as_a, params={"at": "2026-07-02T09:00:00+08:00"})
    [gauge] = r.json()["items"]
    assert (gauge["station_code"], gauge["site_code"], gauge["device_code"]) == ("ALPHA-ST1", "ALPHA-S1", "ALPHA-D1")
    assert gauge["rain_mm"] == {"1h": 1.5, "3h": 4.0, "6h": 8.5, "12h": 13.5, "24h": 13.5, "72h": 15.0}
    assert r.json()["at"] == "2026-07-02T09:00:00+08:00"


def test_online_rate_of_a_day(client: TestClient, world: World, day: None) -> None:
    h = login(client, "county_admin")
    r = client.get("/api/monitoring/online-rate", headers=h, params={"date": "2026-07-02", "by": "device"})
    by_code = {i["device_code"]: i for i in r.json()["items"]}
    assert (by_code["ALPHA-D1"]["received"], by_code["ALPHA-D1"]["expected"], by_code["ALPHA-D1"]["rate"]) == (
        72, 144, 0.5,
    )  # fmt: skip
    assert (by_code["BETA-D1"]["received"], by_code["BETA-D1"]["rate"]) == (0, 0.0)
    assert r.json()["total"] == {"received": 72, "expected": 288, "devices": 2, "rate": 0.25}
    r = client.get("/api/monitoring/online-rate", headers=h, params={"date": "2026-07-02", "by": "township"})
    assert [(i["unit_code"], i["unit_name"], i["rate"]) for i in r.json()["items"]] == [
        (TOWN_A, "ALPHA甲镇", 0.5), (TOWN_B, "BETA乙镇", 0.0),
    ]  # fmt: skip
    r = client.get("/api/monitoring/online-rate", headers=h, params={"date": "2026-07-02", "by": "site"})
    assert {i["site_code"]: i["devices"] for i in r.json()["items"]} == {"ALPHA-S1": 1, "BETA-S1": 1}
    # The day before: only the world's one reading at 08:00.
    r = client.get("/api/monitoring/online-rate", headers=h, params={"date": "2026-07-01"})
    assert {i["device_code"]: i["received"] for i in r.json()["items"]} == {"ALPHA-D1": 1, "BETA-D1": 1}
    assert client.get("/api/monitoring/online-rate", headers=h, params={"date": "July"}).status_code == 422


def test_offline_events(db: Database, client: TestClient, world: World, as_a: dict[str, str]) -> None:
    with db.write("test") as s:
        s.add(DeviceEvent(device_id=world.a.device, kind="offline", started_ms=DAY0 - 86_400_000 * 5,
                          ended_ms=DAY0 - 86_400_000 * 4, unit_code=TOWN_A))  # fmt: skip
    r = client.get("/api/monitoring/events", headers=as_a, params={"open": "true"})
    [e] = r.json()["items"]
    assert (e["id"], e["device_code"], e["station_code"], e["site_code"]) == (
        world.a.event, "ALPHA-D1", "ALPHA-ST1", "ALPHA-S1",
    )  # fmt: skip
    assert (e["start"], e["end"], e["open"]) == ("2026-07-01T08:30:00+08:00", None, True)
    closed = client.get("/api/monitoring/events", headers=as_a, params={"open": "false"}).json()["items"]
    assert [(x["start"], x["end"]) for x in closed] == [("2026-06-27T00:00:00+08:00", "2026-06-28T00:00:00+08:00")]
    recent = client.get("/api/monitoring/events", headers=as_a, params={"since": "2026-06-30"}).json()
    assert [x["id"] for x in recent["items"]] == [world.a.event] and recent["total"] == 1
    devices = client.get("/api/monitoring/devices", headers=as_a, params={"online": "false"}).json()["items"]
    assert [(d["device_code"], d["open_event"]["id"]) for d in devices] == [("ALPHA-D1", world.a.event)]
    assert client.get("/api/monitoring/devices", headers=as_a, params={"online": "true"}).json()["total"] == 0


def test_dead_letters_are_scoped(client: TestClient, world: World) -> None:
    junk = b"\xff\xfe" + "坏".encode() * 5000  # not JSON, not even UTF-8: an administrator's letter
    assert client.post("/api/ingest", content=junk).status_code == 422

    def ids(user: str, **params: str) -> set[int]:
        r = client.get("/api/monitoring/dead-letters", headers=login(client, user), params=params)
        assert r.status_code == 200, r.text
        return {d["id"] for d in r.json()["items"]}

    everything = ids("county_admin")
    new = max(everything)
    assert everything == {world.a.letter, world.b.letter, world.unitless_letter, new}
    assert ids("alpha_viewer") == ids("alpha_operator") == {world.a.letter}
    assert ids("alpha_administrator") == {world.a.letter, world.unitless_letter, new}
    assert ids("beta_viewer") == {world.b.letter}
    assert ids("county_admin", reason="bad_json") == {new}
    assert ids("county_admin", source="mqtt") == {world.a.letter, world.b.letter}
    assert ids("county_admin", since="2099-01-01") == set()

    h = login(client, "alpha_administrator")
    [letter] = [d for d in client.get("/api/monitoring/dead-letters", headers=h).json()["items"] if d["id"] == new]
    assert letter["payload_size"] == len(junk) and len(letter["payload_text"]) == 4096
    assert letter["payload_text"].startswith("\ufffd\ufffd坏坏") and letter["source"] == "http"
    assert letter["received_at"].endswith("+08:00")
    raw = client.get(f"/api/monitoring/dead-letters/{new}/payload", headers=h)
    assert raw.content == junk and raw.headers["content-type"] == "application/octet-stream"
    viewer = login(client, "alpha_viewer")
    assert client.get(f"/api/monitoring/dead-letters/{new}/payload", headers=viewer).status_code == 404
    assert client.get(f"/api/monitoring/dead-letters/{world.a.letter}/payload", headers=viewer).status_code == 200
