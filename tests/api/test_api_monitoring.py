"""The monitoring register over HTTP (stations, devices, sensors, keys) and HTTP ingestion by device key."""

from __future__ import annotations

import json
from collections.abc import Iterator

import orjson
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from geowarn.db import Database
from geowarn.monitoring.models import DeadLetter, Device, Observation, Sensor
from tests.api.apiworld import TOWN_A, World

T = 1_782_950_400_000  # 2026-07-02 08:00 China time


def ingest(client: TestClient, body: bytes | dict[str, object], **headers: str) -> tuple[int, dict[str, object]]:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    r = client.post("/api/ingest", content=content, headers={"Content-Type": "application/json", **headers})
    return r.status_code, r.json()


def letters(db: Database) -> list[DeadLetter]:
    with db.read() as s:
        return list(s.scalars(select(DeadLetter).order_by(DeadLetter.id)))


def rain(device: str, key: str | None, t: int, value: float = 0.5, total: float = 10.0) -> dict[str, object]:
    body: dict[str, object] = {"deviceId": device, "data": {"value": value, "totalValue": total, "ts": t}}
    if key is not None:
        body["apikey"] = key
    return body


# --- registration -----------------------------------------------------------------------------


def test_register_station_and_device_key_shown_once(client: TestClient, world: World, as_a: dict[str, str]) -> None:
    r = client.post(
        "/api/monitoring/stations",
        headers=as_a,
        json={"code": "ST-NEW", "name": "新监测点", "lon": 119.05, "lat": 26.06, "site_id": world.a.site},
    )
    assert r.status_code == 201, r.text
    station = r.json()
    assert station["unit_code"] == TOWN_A  # from the site
    body = {"station_id": station["id"], "device_code": "GNSS-9", "device_type": "GP", "reporting_interval_s": 1800,
            "vendor": "北斗", "installed_at": "2026-06-01T08:00:00+08:00"}  # fmt: skip
    r = client.post("/api/monitoring/devices", headers=as_a, json=body)
    assert r.status_code == 201, r.text
    created = r.json()
    key = created["apikey"]
    assert len(key) == 32
    assert [x["channel"] for x in created["sensors"]] == ["gpsTotalX", "gpsTotalY", "gpsTotalZ"]
    assert created["installed_at"] == "2026-06-01T08:00:00+08:00"
    again = client.get(f"/api/monitoring/devices/{created['id']}", headers=as_a)
    assert "apikey" not in again.json() and key not in again.text
    listed = client.get("/api/monitoring/devices", headers=as_a, params={"station_id": station["id"]}).text
    assert "GNSS-9" in listed and key not in listed
    # The issued key works at once through the app's ingestor.
    status, rep = ingest(client, {"deviceId": "GNSS-9", "apikey": key, "data": {"gpsTotalX": 1, "gpsTotalY": 2,
                                  "gpsTotalZ": 3, "ts": T}})  # fmt: skip
    assert (status, rep.get("accepted")) == (200, 3), rep
    dev = client.get(f"/api/monitoring/devices/{created['id']}", headers=as_a).json()
    assert dev["last_seen"] == "2026-07-02T08:00:00+08:00"
    # A duplicate deviceId is a conflict.
    assert client.post("/api/monitoring/devices", headers=as_a, json=body).status_code == 409


def test_rotate_retire_and_cache_follows(client: TestClient, world: World, as_a: dict[str, str]) -> None:
    old = world.a.device_key
    assert ingest(client, rain("ALPHA-D1", old, T))[0] == 200  # loads the device into the cache
    r = client.post(f"/api/monitoring/devices/{world.a.device}/apikey", headers=as_a)
    assert r.status_code == 200
    new = r.json()["apikey"]
    assert new != old and r.json()["device_code"] == "ALPHA-D1"
    assert ingest(client, rain("ALPHA-D1", old, T + 600_000))[0] == 401
    assert ingest(client, rain("ALPHA-D1", new, T + 600_000))[0] == 200
    r = client.patch(f"/api/monitoring/devices/{world.a.device}", headers=as_a, json={"status": "retired"})
    assert r.status_code == 200 and r.json()["status"] == "retired"
    assert ingest(client, rain("ALPHA-D1", new, T + 1_200_000))[0] == 403
    bad = client.patch(f"/api/monitoring/devices/{world.a.device}", headers=as_a, json={"status": "broken"})
    assert bad.status_code == 422


def test_sensor_qc_overrides_are_validated(client: TestClient, world: World, as_a: dict[str, str]) -> None:
    url = f"/api/monitoring/sensors/{world.a.sensor}"
    r = client.patch(url, headers=as_a, json={"qc_overrides": {"flat_line": {"suspect_seconds": "soon"}}})
    assert r.status_code == 422, r.text
    assert "flat_line" in r.json()["detail"]
    r = client.patch(url, headers=as_a, json={"qc_overrides": {"flat_line": {"suspect_seconds": 7200}}})
    assert r.status_code == 200, r.text
    assert client.get(url, headers=as_a).json()["qc_overrides"] == {"flat_line": {"suspect_seconds": 7200}}
    viewer = client.post("/api/auth/token", data={"username": "alpha_viewer", "password": "correct horse battery"})
    h = {"Authorization": f"Bearer {viewer.json()['access_token']}"}
    assert client.patch(url, headers=h, json={"active": False}).status_code == 403


def test_station_patch_moves_devices_and_sensors(db: Database, client: TestClient, world: World) -> None:
    from tests.api.apiworld import login

    county = login(client, "county_admin")
    r = client.patch(f"/api/monitoring/stations/{world.a.station}", headers=county,
                     json={"unit_code": TOWN_A + "001", "lon": 119.06})  # fmt: skip
    assert r.status_code == 200, r.text
    with db.read() as s:
        assert s.scalar(select(Device.unit_code).where(Device.id == world.a.device)) == TOWN_A + "001"
        sensors = s.scalars(select(Sensor).where(Sensor.device_id == world.a.device)).all()
        assert {(x.unit_code, x.lon) for x in sensors} == {(TOWN_A + "001", 119.06)}


# --- ingestion --------------------------------------------------------------------------------


def test_ingest_counts_duplicates_and_header_key(client: TestClient, world: World) -> None:
    key = world.a.device_key
    status, rep = ingest(client, rain("ALPHA-D1", key, T))
    assert (status, rep) == (200, {"accepted": 2, "duplicate": 0, "rejected": 0, "reasons": {}})
    assert ingest(client, rain("ALPHA-D1", key, T))[1]["duplicate"] == 2
    readings = {"deviceId": "ALPHA-D1", "readings": [{"channel": "value", "t": "2026-07-02T09:00:00+08:00",
                                                       "value": 1.5}]}  # fmt: skip
    status, rep = ingest(client, readings, **{"X-Device-Key": key})
    assert (status, rep["accepted"]) == (200, 1)


def test_refused_payloads_are_dead_lettered(db: Database, client: TestClient, world: World) -> None:
    status, problem = ingest(client, rain("ALPHA-D1", "0" * 32, T))
    assert status == 401 and problem["title"] == "Authentication failed"
    assert ingest(client, rain("NOPE-9", "0" * 32, T))[0] == 401
    assert ingest(client, rain("ALPHA-D1", None, T))[0] == 401  # no key at all
    status, problem = ingest(client, b'{"deviceId": "ALPHA-D1", "apikey": ')
    assert status == 422 and problem["status"] == 422
    got = [(d.reason, d.device_code, d.unit_code, d.source) for d in letters(db)[-4:]]
    assert got == [
        ("unauthorised", "ALPHA-D1", TOWN_A, "http"),
        ("unknown_device", "NOPE-9", None, "http"),
        ("bad_identity", None, None, "http"),
        ("bad_json", None, None, "http"),
    ]
    assert letters(db)[-1].payload == b'{"deviceId": "ALPHA-D1", "apikey": '


def test_body_size_limits(client: TestClient, world: World) -> None:
    big = b" " * (8 * 1024 * 1024 + 1)
    r = client.post("/api/ingest", content=big)
    assert r.status_code == 413 and r.headers["content-type"].startswith("application/problem+json")

    def chunks() -> Iterator[bytes]:  # no Content-Length: the real size is counted
        for _ in range(9):
            yield b" " * (1024 * 1024)

    assert client.post("/api/ingest", content=chunks()).status_code == 413


def test_ten_thousand_readings_in_one_request(db: Database, client: TestClient, world: World) -> None:
    readings = [{"channel": "value", "t": T + 30_000 - i * 60_000, "value": 0.1} for i in range(10_000)]
    body = {"deviceId": "ALPHA-D1", "apikey": world.a.device_key, "readings": readings}
    status, rep = ingest(client, body)
    assert (status, rep["accepted"], rep["rejected"]) == (200, 10_000, 0)
    pretty = json.dumps(body, indent=4).encode()  # over the parser's 1 MB, under 8 MB
    assert len(pretty) > 1_048_576
    status, rep = ingest(client, pretty)
    assert (status, rep["duplicate"]) == (200, 10_000)
    status, problem = ingest(client, {**body, "readings": [*readings, {"channel": "value", "t": T, "value": 1}]})
    assert status == 422 and "10000" in problem["detail"]


def test_hostile_mix_gives_precise_counts(db: Database, client: TestClient, world: World) -> None:
    key = world.a.device_key.encode()
    body = (
        b'{"deviceId":"ALPHA-D1","apikey":"' + key + b'","readings":['
        b'{"channel":"value","t":%d,"value":1.0},'
        b'{"channel":"value","t":%d,"value":NaN},'
        b'{"channel":"value","t":%d,"value":"1; DROP TABLE observation; --"},'
        b'{"channel":"value","t":%d,"value":{"nested":[1,{"deep":true}]}},'
        b'{"channel":"value","t":%d,"value":"2.5"},'
        b'{"channel":"bogus","t":%d,"value":1},'
        b'{"channel":"value","t":"not a time","value":1},'
        b'{"channel":"value","t":%d,"value":true},'
        b'{"channel":"x\'); DELETE FROM device; --","t":%d,"value":1},'
        b'{"channel":"value","t":%d,"value":-Infinity}'
        b"]}"
    ) % tuple(T + i * 1000 for i in range(9))
    status, rep = ingest(client, body)
    assert status == 200, rep
    assert (rep["accepted"], rep["duplicate"], rep["rejected"]) == (2, 0, 8)
    # every rejected reading under its own reason (one dead letter holds the message and all of them)
    assert rep["reasons"] == {"bad_value": 5, "unknown_channel": 2, "bad_time": 1}
    with db.read() as s:
        values = s.scalars(select(Observation.value).where(Observation.t_ms >= T).order_by(Observation.t_ms)).all()
        assert values == [1.0, 2.5]
        assert s.scalar(select(func.count()).select_from(Device)) == 2
    detail = letters(db)[-1].detail
    assert "unknown_channel" in detail and "bad_time" in detail
