"""Sites through the API: create, read, filter, update with versions, lifecycle, history, audit, masking."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from geowarn.audit.models import AuditEntry
from geowarn.db import Database
from geowarn.inventory.models import HazardSite, SiteStatusChange
from tests.api.apiworld import TOWN_A, World, login

NEW_SITE: dict[str, Any] = {
    "code": "ALPHA-S2",
    "name": "后山崩塌",
    "hazard_type": "rockfall",
    "lon": 119.02,
    "lat": 26.02,
    "unit_code": TOWN_A + "001",
    "threatened_people": 7,
    "threatened_households": 2,
    "threatened_property_wan": "12.3456",
    "location_text": "一村后山",
}


@pytest.fixture
def h(client: TestClient, world: World) -> dict[str, str]:
    return login(client, "alpha_operator")


def test_create_read_and_money_in_wan(client: TestClient, h: dict[str, str], db: Database) -> None:
    r = client.post("/api/sites", headers=h, json=NEW_SITE)
    assert r.status_code == 201, r.text
    site = r.json()
    assert site["threatened_property_wan"] == 12.3456 and site["status"] == "registered"
    assert site["township_code"] == TOWN_A and r.headers["etag"] == '"1"'
    with db.read() as s:
        row = s.get(HazardSite, site["id"])
        assert row is not None and row.threatened_property_yuan == 123_456
        assert s.scalar(select(func.count()).where(SiteStatusChange.site_id == site["id"])) == 1
    got = client.get(f"/api/sites/{site['id']}", headers=h)
    assert got.json()["code"] == "ALPHA-S2" and got.headers["etag"] == '"1"'
    assert client.post("/api/sites", headers=h, json=NEW_SITE).status_code == 409  # code taken
    bad = {**NEW_SITE, "code": "X2", "threatened_property_wan": "0.00001"}  # below one yuan
    assert client.post("/api/sites", headers=h, json=bad).status_code == 422
    assert client.post("/api/sites", headers=h, json={**NEW_SITE, "code": "X3", "status": "treated"}).status_code == 422


def test_filters_pagination_and_geojson(client: TestClient, h: dict[str, str], world: World) -> None:
    for i in range(3):
        body = {**NEW_SITE, "code": f"ALPHA-P{i}", "name": f"坡{i}", "lon": 119.02 + i * 0.01}
        assert client.post("/api/sites", headers=h, json=body).status_code == 201
    page = client.get("/api/sites", headers=h, params={"limit": 2, "offset": 1}).json()
    assert page["total"] == 4 and len(page["items"]) == 2 and page["offset"] == 1
    assert client.get("/api/sites", headers=h, params={"hazard_type": "landslide"}).json()["total"] == 1
    assert client.get("/api/sites", headers=h, params={"q": "坡1"}).json()["total"] == 1
    assert client.get("/api/sites", headers=h, params={"q": "%"}).json()["total"] == 0  # LIKE wildcards escaped
    assert client.get("/api/sites", headers=h, params={"bbox": "119.025,26.0,119.045,26.03"}).json()["total"] == 2
    assert client.get("/api/sites", headers=h, params={"township": TOWN_A}).json()["total"] == 4
    assert client.get("/api/sites", headers=h, params={"bbox": "1,2,3"}).status_code == 422
    fc = client.get("/api/sites", headers=h, params={"format": "geojson", "status": "registered"})
    assert fc.headers["content-type"].startswith("application/geo+json")
    body = fc.json()
    assert body["type"] == "FeatureCollection" and body["numberMatched"] == 4
    assert body["features"][0]["geometry"]["type"] == "Point"


def test_optimistic_locking(client: TestClient, h: dict[str, str], world: World) -> None:
    url = f"/api/sites/{world.a.site}"
    assert client.patch(url, headers=h, json={"name": "改名"}).status_code == 428
    r = client.patch(url, headers={**h, "If-Match": '"1"'}, json={"name": "改名", "threatened_property_wan": 5})
    assert r.status_code == 200 and r.json()["version"] == 2 and r.headers["etag"] == '"2"'
    assert r.json()["threatened_property_wan"] == 5
    stale = client.patch(url, headers=h, json={"name": "又改", "version": 1})
    assert stale.status_code == 409 and stale.json()["current_version"] == 2
    assert client.get(url, headers=h).json()["name"] == "改名"
    assert client.patch(url, headers=h, json={"name": None, "version": 2}).status_code == 422


def test_status_lifecycle_and_history(client: TestClient, h: dict[str, str], world: World, db: Database) -> None:
    url = f"/api/sites/{world.a.site}"
    illegal = client.post(
        f"{url}/status",
        headers=h,
        json={"to_status": "written_off", "reason": "直接核销", "effective_on": "2024-01-01"},
    )
    assert illegal.status_code == 409 and illegal.json()["title"] == "Invalid status transition"
    steps = [("under_treatment", "2024-03-01"), ("treated", "2024-09-01"), ("written_off", "2024-12-01")]
    for to, on in steps:
        r = client.post(
            f"{url}/status",
            headers=h,
            json={"to_status": to, "reason": f"转为{to}", "effective_on": on, "evidence": "验收报告"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["status"] == to
    assert (
        client.post(
            f"{url}/status", headers=h, json={"to_status": "registered", "reason": "恢复", "effective_on": "2025-01-01"}
        ).status_code
        == 409
    )
    hist = client.get(f"{url}/history", headers=h).json()
    assert [c["to_status"] for c in hist["status_changes"]] == [
        "registered",
        "under_treatment",
        "treated",
        "written_off",
    ]
    assert [e["action"] for e in hist["audit"] if e["action"] == "transition"] == ["transition"] * 3
    assert client.delete(url, headers=h).status_code == 405  # nothing is deleted
    with db.read() as s:
        assert s.get(HazardSite, world.a.site) is not None


def test_every_write_is_audited_with_the_user(
    client: TestClient, h: dict[str, str], world: World, db: Database
) -> None:
    with db.read() as s:
        start = s.scalar(select(func.max(AuditEntry.id))) or 0
    client.patch(f"/api/sites/{world.a.site}", headers=h, json={"name": "新名", "version": 1})
    client.patch(f"/api/persons/{world.a.person}", headers=h, json={"title": "村主任"})
    client.post("/api/organisations", headers=h, json={"name": "水利站", "department": "water", "unit_code": TOWN_A})
    client.patch(f"/api/households/{world.a.household}", headers=h, json={"size": 4})
    with db.read() as s:
        entries = s.scalars(select(AuditEntry).where(AuditEntry.id > start).order_by(AuditEntry.id)).all()
    assert {e.actor for e in entries} == {"alpha_operator"}
    by_entity = {(e.entity, e.action): e.changes for e in entries}
    assert by_entity[("hazard_site", "update")]["name"] == ["ALPHA滑坡", "新名"]
    assert by_entity[("person", "update")]["title"] == [None, "村主任"]
    assert by_entity[("organisation", "create")]["name"] == "水利站"
    assert by_entity[("household", "update")]["size"] == [3, 4]
    r = client.get("/api/audit", headers=h, params={"actor": "alpha_operator", "entity": "hazard_site"})
    assert r.json()["total"] == 1


@pytest.mark.parametrize(
    ("role", "masked"), [("viewer", True), ("monitor", True), ("operator", False), ("administrator", False)]
)
def test_masking_per_role(client: TestClient, world: World, role: str, masked: bool) -> None:
    h = login(client, f"alpha_{role}")
    hh = client.get(f"/api/households/{world.a.household}", headers=h).json()
    person = client.get(f"/api/persons/{world.a.person}", headers=h).json()
    site = client.get(f"/api/sites/{world.a.site}", headers=h).json()
    if masked:
        assert hh["phone"] == "138****2222" and hh["id_number"] == "350922********5555"
        assert hh["head_name"] == "A******" and hh["residents"][0]["name"].startswith("A*")
        assert hh["residents"][0]["phone"] == "137****4444"
        assert person["phone"] == "139****5678" and person["name"] == "ALPHA张三"  # officials' names are public
        assert site["responsible_person"]["phone"] == "139****5678"
    else:
        assert hh["phone"] == "13811112222" and hh["head_name"] == "ALPHA李四"
        assert hh["residents"][0]["id_number"] == "350922201001016666"
        assert site["responsible_person"]["phone"] == "13912345678"


def test_spatial_queries(client: TestClient, h: dict[str, str], world: World) -> None:
    near = client.get("/api/sites/near", headers=h, params={"lon": 119.05, "lat": 26.06, "radius_m": 2000}).json()
    assert [i["site"]["id"] for i in near["items"]] == [world.a.site]
    assert 1100 < near["items"][0]["distance_m"] < 1120  # 0.01° of latitude
    assert (
        client.get("/api/sites/near", headers=h, params={"lon": 119.05, "lat": 26.06, "radius_m": 1000}).json()["total"]
        == 0
    )
    nearest = client.get("/api/sites/nearest", headers=h, params={"lon": 0, "lat": 0, "k": 3}).json()
    assert [i["site"]["id"] for i in nearest["items"]] == [world.a.site]
    poly = {
        "type": "Polygon",
        "coordinates": [[[119.0, 26.0], [119.05, 26.0], [119.05, 26.05], [119.0, 26.05], [119.0, 26.0]]],
    }
    assert client.post("/api/sites/within", headers=h, json=poly).json()["total"] == 1  # boundary included
    line = {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}
    assert client.post("/api/sites/within", headers=h, json=line).status_code == 422
