"""CRUD of the rest of the register, units and users through the API."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.apiworld import TOWN_A, World, login

SQUARE = {
    "type": "Polygon",
    "coordinates": [[[119.0, 26.0], [119.03, 26.0], [119.03, 26.03], [119.0, 26.03], [119.0, 26.0]]],
}


def test_risk_zone_crud_and_sites(client: TestClient, world: World) -> None:
    h = login(client, "alpha_operator")
    r = client.post(
        "/api/risk-zones",
        headers=h,
        json={"code": "Z9", "name": "北坡", "grade": "medium", "geometry": SQUARE, "unit_code": TOWN_A},
    )
    assert r.status_code == 201 and r.json()["geometry"]["type"] == "MultiPolygon"
    zid = r.json()["id"]
    site = {"code": "S9", "name": "点9", "hazard_type": "landslide", "lon": 119.01, "lat": 26.01, "unit_code": TOWN_A}
    sid = client.post("/api/sites", headers=h, json=site).json()["id"]
    assert [s["id"] for s in client.get(f"/api/risk-zones/{zid}/sites", headers=h).json()["items"]] == [sid]
    r = client.patch(f"/api/risk-zones/{zid}", headers=h, json={"grade": "high", "people": 12})
    assert r.json()["grade"] == "high" and r.json()["people"] == 12
    assert client.get("/api/risk-zones", headers=h, params={"grade": "high"}).json()["total"] == 2
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
    assert client.patch(f"/api/risk-zones/{zid}", headers=h, json={"geometry": bowtie}).status_code == 422


def test_shelter_household_resident_person_organisation(client: TestClient, world: World) -> None:
    h = login(client, "alpha_operator")
    org = client.post(
        "/api/organisations",
        headers=h,
        json={"name": "自然资源所", "department": "natural_resources", "unit_code": TOWN_A},
    )
    assert org.status_code == 201
    person = client.post(
        "/api/persons",
        headers=h,
        json={
            "name": "赵六",
            "phone": "13500001111",
            "roles": ["monitor"],
            "unit_code": TOWN_A,
            "organisation_id": org.json()["id"],
        },
    )
    assert person.status_code == 201 and person.json()["roles"] == ["monitor"]
    pid = person.json()["id"]
    assert [p["id"] for p in client.get("/api/persons", headers=h, params={"role": "monitor"}).json()["items"]] == [pid]
    assert client.patch(f"/api/persons/{pid}", headers=h, json={"active": False}).json()["active"] is False
    assert client.delete(f"/api/persons/{pid}", headers=h).status_code == 405
    shelter = client.post(
        "/api/shelters",
        headers=h,
        json={
            "code": "H9",
            "name": "小学",
            "lon": 119.03,
            "lat": 26.03,
            "capacity": 200,
            "unit_code": TOWN_A,
            "contact_id": pid,
        },
    )
    assert shelter.status_code == 201
    hh = client.post(
        "/api/households",
        headers=h,
        json={
            "code": "HH9",
            "head_name": "钱七",
            "lon": 119.02,
            "lat": 26.02,
            "unit_code": TOWN_A + "001",
            "site_id": world.a.site,
            "shelter_id": shelter.json()["id"],
            "residents": [{"name": "钱七"}, {"name": "孙八", "vulnerable": True}],
        },
    )
    assert hh.status_code == 201, hh.text
    body = hh.json()
    assert body["size"] == 2 and [r["name"] for r in body["residents"]] == ["钱七", "孙八"]
    assert {r["unit_code"] for r in body["residents"]} == {TOWN_A + "001"}
    hid = body["id"]
    added = client.post(f"/api/households/{hid}/residents", headers=h, json={"name": "周九"})
    assert added.status_code == 201
    rid = added.json()["id"]
    assert (
        client.patch(f"/api/households/{hid}/residents/{rid}", headers=h, json={"relation": "子"}).json()["relation"]
        == "子"
    )
    moved = client.patch(f"/api/households/{hid}", headers=h, json={"unit_code": TOWN_A})
    assert {r["unit_code"] for r in moved.json()["residents"]} == {TOWN_A}
    assert client.get("/api/households", headers=h, params={"site_id": world.a.site}).json()["total"] == 2
    assert (
        client.patch(f"/api/shelters/{shelter.json()['id']}", headers=h, json={"capacity": 250}).json()["capacity"]
        == 250
    )


def test_units(client: TestClient, world: World) -> None:
    h = login(client, "alpha_administrator")
    r = client.post("/api/units", headers=h, json={"code": TOWN_A + "002", "name": "二村", "boundary": SQUARE})
    assert r.status_code == 201 and r.json()["level"] == "village" and r.json()["boundary"]["type"] == "MultiPolygon"
    tree = client.get("/api/units", headers=h).json()
    assert [c["code"] for c in tree[0]["children"]] == [TOWN_A + "001", TOWN_A + "002"]
    assert client.get(f"/api/units/{TOWN_A}", headers=h).json()["boundary"] is None
    assert (
        client.get(f"/api/units/{TOWN_A}", headers=h, params={"boundary": True}).json()["boundary"]["type"]
        == "MultiPolygon"
    )
    assert client.patch(f"/api/units/{TOWN_A}002", headers=h, json={"name": "新二村"}).json()["name"] == "新二村"
    assert client.post("/api/units", headers=h, json={"code": TOWN_A + "002", "name": "重"}).status_code == 409
    operator = login(client, "alpha_operator")
    assert client.post("/api/units", headers=operator, json={"code": TOWN_A + "003", "name": "三村"}).status_code == 403


def test_users(client: TestClient, world: World) -> None:
    county = login(client, "county_admin")
    r = client.post(
        "/api/users",
        headers=county,
        json={"username": "a_new_admin", "password": "long enough pw", "role": "administrator", "unit_code": TOWN_A},
    )
    assert r.status_code == 201
    uid = r.json()["id"]
    a_admin = login(client, "alpha_administrator")
    assert client.get(f"/api/users/{uid}", headers=a_admin).status_code == 200
    assert client.get(f"/api/users/{world.county_admin}", headers=a_admin).status_code == 404
    r = client.patch(f"/api/users/{uid}", headers=a_admin, json={"role": "viewer", "display_name": "新"})
    assert r.json()["role"] == "viewer"
    users = client.get("/api/users", headers=county).json()
    assert users["total"] == 10  # 4 per township, the county's and the new one
