"""The map's compact routes on the demo county: every site in scope, as columns; township scoping."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from geowarn.api import create_app
from geowarn.config import Settings
from geowarn.db import Database
from geowarn.demo import DemoSummary
from geowarn.inventory.models import HazardSite
from tests.conftest import BACKENDS, DEMO_2021_NETWORK, Datasets, demo_network_2021

CHENGXI = "350922002"


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, datasets: Datasets) -> Iterator[Database]:
    """The demo county of seed 2021 and its network, built once per backend; each test its own copy."""
    demo_network_2021(datasets, request.param)
    with datasets.copy(request.param, DEMO_2021_NETWORK) as database:
        yield database


@pytest.fixture
def demo(db: Database, datasets: Datasets) -> DemoSummary:
    summary, _ = demo_network_2021(datasets, db.backend)
    assert isinstance(summary, DemoSummary)
    return summary


@pytest.fixture
def client(db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(db, settings=Settings(warning_engine=False))) as c:
        yield c


def headers(client: TestClient, summary: DemoSummary, username: str) -> dict[str, str]:
    user = next(u for u in summary.users if u.username == username)
    r = client.post("/api/auth/token", data={"username": user.username, "password": user.password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_map_sites_are_columns_of_every_site_in_scope(db: Database, demo: DemoSummary, client: TestClient) -> None:
    with db.read() as s:
        every: list[Any] = list(
            s.execute(select(HazardSite.id, HazardSite.lon, HazardSite.hazard_type, HazardSite.township_code)).all()
        )
    r = client.get("/api/map/sites", headers=headers(client, demo, "admin"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["count"] == len(every) == demo.hazard_sites + demo.steep_slopes
    assert sorted(body["id"]) == sorted(i for i, *_ in every)
    for key in ("lon", "lat", "type", "status", "town", "people"):
        assert len(body[key]) == body["count"]
    by_id = {i: (lon, t, w) for i, lon, t, w in every}
    for k, ident in enumerate(body["id"]):
        lon, hazard_type, town = by_id[ident]
        assert body["lon"][k] == pytest.approx(lon, abs=1e-6)
        assert body["types"][body["type"][k]] == hazard_type
        assert body["towns"][body["town"][k]] == town

    # The layer is cached per unit, and built again as soon as a site is added or changed.
    site = {"code": "WEB-NEW-1", "name": "新登记滑坡", "hazard_type": "landslide", "lon": 118.9, "lat": 26.6,
            "unit_code": CHENGXI}  # fmt: skip
    admin = headers(client, demo, "admin")
    created = client.post("/api/sites", headers=admin, json=site)
    assert created.status_code == 201, created.text
    again = client.get("/api/map/sites", headers=admin).json()
    assert again["count"] == body["count"] + 1 and created.json()["id"] in again["id"]
    new_id = created.json()["id"]
    r = client.patch(f"/api/sites/{new_id}", headers=admin, json={"version": 1, "hazard_type": "rockfall"})
    assert r.status_code == 200, r.text
    moved = client.get("/api/map/sites", headers=admin).json()
    k = moved["id"].index(created.json()["id"])
    assert moved["types"][moved["type"][k]] == "rockfall"
    body, every = again, [*every, (created.json()["id"], 118.9, "landslide", CHENGXI)]

    township = client.get("/api/map/sites", headers=headers(client, demo, "chengxi")).json()
    with db.read() as s:
        mine = s.scalar(select(func.count()).where(HazardSite.unit_code.startswith(CHENGXI))) or 0
    assert 0 < township["count"] == mine < body["count"]
    assert township["towns"] == [CHENGXI]


def test_boundaries_zones_and_stations_follow_the_scope(db: Database, demo: DemoSummary, client: TestClient) -> None:
    county = headers(client, demo, "admin")
    town = headers(client, demo, "chengxi")
    levels = [f["properties"]["level"] for f in client.get("/api/map/boundaries", headers=county).json()["features"]]
    assert levels.count("county") == 1 and levels.count("township") == demo.townships
    mine = client.get("/api/map/boundaries", headers=town).json()["features"]
    assert [f["properties"]["code"] for f in mine] == [CHENGXI]

    zones = client.get("/api/map/zones", headers=county).json()
    risk = [f for f in zones["features"] if f["properties"]["kind"] == "risk_zone"]
    assert len(risk) == demo.risk_zones and zones["truncated"] is False
    danger = [f for f in zones["features"] if f["properties"]["kind"] == "danger_zone"]
    assert danger and all(f["geometry"]["type"] == "MultiPolygon" for f in danger)
    boxed = client.get("/api/map/zones", headers=county, params={"bbox": "0,0,1,1"}).json()
    assert all(f["properties"]["kind"] == "risk_zone" for f in boxed["features"])
    assert client.get("/api/map/zones", headers=county, params={"bbox": "1,1,0,0"}).status_code == 422

    stations = client.get("/api/map/stations", headers=county).json()["items"]
    assert stations and all(s["state"] == "offline" for s in stations)  # registered, never reported
    town_stations = client.get("/api/map/stations", headers=town).json()["items"]
    site_ids = set(client.get("/api/map/sites", headers=town).json()["id"])
    assert {s["site_id"] for s in town_stations} <= site_ids
    assert len(town_stations) < len(stations)


def test_the_page_and_its_settings_are_served(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200 and "地质灾害监测预警平台" in r.text
    assert "/static/vendor/leaflet/dist/leaflet.js" in r.text
    assert client.get("/static/app/js/main.js").status_code == 200
    assert client.get("/static/vendor/echarts/dist/echarts.min.js").status_code == 200
    assert client.get("/web-config.json").json()["basemap_url"] is None
    configured = create_app(settings=Settings(basemap_url="http://tiles.local/{z}/{x}/{y}.png"))
    with TestClient(configured) as c:
        assert c.get("/web-config.json").json()["basemap_url"] == "http://tiles.local/{z}/{x}/{y}.png"
