"""Township A's administrator can read, list, count, export or change nothing of township B.

The walk covers every route of the app: ``ROUTE_TABLE`` says how to exercise each (method, path)
against B, and the first test fails when a route is added that the table does not know, so no
future route can skip scoping.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from geowarn.api.app import api_routes
from geowarn.auth.models import ApiToken
from geowarn.auth.scope import unit_filter
from geowarn.db import Base, Database
from geowarn.inventory.models import RiskZoneSite, SiteStatusChange
from geowarn.io.models import ImportRejection
from geowarn.warning.models import RuleOverride
from geowarn.warning.product_models import ProductVersion
from tests.api.apiworld import PASSWORD, TOWN_A, TOWN_B, World, login
from tests.dissemination import scoping as dissemination_scoping
from tests.fieldwork import scoping_walk as fieldwork_scoping

B_MARKERS = ("beta", TOWN_B, "13987654321", "350922199202029876")
WIDE = {"type": "Polygon", "coordinates": [[[118.0, 25.0], [121.0, 25.0], [121.0, 27.0], [118.0, 27.0], [118.0, 25.0]]]}


@dataclass
class Ctx:
    client: TestClient
    h: dict[str, str]
    w: World

    def get(self, url: str, **kw: Any) -> httpx2.Response:
        return self.client.get(url, headers=self.h, **kw)

    def send(self, method: str, url: str, **kw: Any) -> httpx2.Response:
        return self.client.request(method, url, headers=self.h, **kw)


def clean(r: httpx2.Response, *, status: int = 200, echo: str = "") -> None:
    """The response succeeded and carries nothing of B (beyond ``echo``, what the caller sent)."""
    assert r.status_code == status, r.text
    text = r.content.decode("utf-8", errors="replace").lower()
    for part in echo.lower().split("/"):
        text = text.replace(part, "") if part else text
    for marker in B_MARKERS:
        assert marker.lower() not in text, f"{marker!r} leaked in {r.request.url}"


def hidden(r: httpx2.Response) -> None:
    """B's record answered as absent, without its data."""
    assert r.status_code == 404, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["title"] == "Not found"
    clean(r, status=404, echo=r.request.url.path)


def refused(r: httpx2.Response, *statuses: int) -> None:
    assert r.status_code in (statuses or (403,)), r.text


def ids_of(r: httpx2.Response) -> set[int]:
    body = r.json()
    items = body["items"] if isinstance(body, dict) else body
    return {i.get("site", i)["id"] for i in items}


# --- how each route is exercised against B ---------------------------------------------------


def list_route(path: str, b_attr: str | None = None) -> Callable[[Ctx], None]:
    def run(c: Ctx) -> None:
        r = c.get(path, params={"limit": 1000})
        clean(r)
        if b_attr:
            assert getattr(c.w.b, b_attr) not in ids_of(r)
            assert getattr(c.w.a, b_attr) in ids_of(r)  # the list works: A's record is there

    return run


def item_route(template: str, b_attr: str) -> Callable[[Ctx], None]:
    def run(c: Ctx) -> None:
        hidden(c.get(template.format(getattr(c.w.b, b_attr))))
        clean(c.get(template.format(getattr(c.w.a, b_attr))))

    return run


def patch_route(
    template: str, b_attr: str, move: dict[str, Any], *, bad_ref: dict[str, Any] | None = None
) -> Callable[[Ctx], None]:
    def run(c: Ctx) -> None:
        hidden(
            c.send(
                "PATCH",
                template.format(getattr(c.w.b, b_attr)),
                json={"version": 1, "remarks": "x"} if "sites" in template else {},
            )
        )
        mine = template.format(getattr(c.w.a, b_attr))
        refused(c.send("PATCH", mine, json={**move, **({"version": 1} if "sites" in template else {})}), 403)
        if bad_ref:
            refused(
                c.send(
                    "PATCH",
                    mine,
                    json={k: getattr(c.w.b, v) for k, v in bad_ref.items()}
                    | ({"version": 1} if "sites" in template else {}),
                ),
                422,
            )

    return run


def create_route(
    path: str, body: Callable[[World], dict[str, Any]], bad_ref: dict[str, str] | None = None
) -> Callable[[Ctx], None]:
    def run(c: Ctx) -> None:
        refused(c.send("POST", path, json={**body(c.w), "unit_code": TOWN_B}), 403)
        if bad_ref:
            refs = {k: getattr(c.w.b, v) for k, v in bad_ref.items()}
            refused(c.send("POST", path, json={**body(c.w), "unit_code": TOWN_A, **refs}), 422)

    return run


def site_body(w: World) -> dict[str, Any]:
    return {"code": "NEW-S", "name": "新点", "hazard_type": "rockfall", "lon": 119.15, "lat": 26.05}


def spatial_near(c: Ctx) -> None:
    r = c.get("/api/sites/near", params={"lon": 119.1, "lat": 26.05, "radius_m": 100_000})
    clean(r)
    assert ids_of(r) == {c.w.a.site}


def spatial_nearest(c: Ctx) -> None:
    r = c.get("/api/sites/nearest", params={"lon": 119.15, "lat": 26.05, "k": 10})
    clean(r)
    assert ids_of(r) == {c.w.a.site}


def spatial_within(c: Ctx) -> None:
    r = c.send("POST", "/api/sites/within", json=WIDE)
    clean(r)
    assert ids_of(r) == {c.w.a.site}


def zone_sites(c: Ctx) -> None:
    hidden(c.get(f"/api/risk-zones/{c.w.b.zone}/sites"))
    r = c.get(f"/api/risk-zones/{c.w.a.zone}/sites")  # A's zone is linked to B's site too (see the test)
    clean(r)
    assert ids_of(r) == {c.w.a.site}


def zone_links_get(c: Ctx) -> None:
    hidden(c.get(f"/api/risk-zones/{c.w.b.zone}/site-links"))
    r = c.get(f"/api/risk-zones/{c.w.a.zone}/site-links")  # A's zone declares B's site too: not listed
    clean(r)
    assert c.w.b.site not in r.json()["site_ids"]


def zone_links_put(c: Ctx) -> None:
    hidden(c.send("PUT", f"/api/risk-zones/{c.w.b.zone}/site-links", json={"site_ids": [c.w.a.site]}))
    refused(c.send("PUT", f"/api/risk-zones/{c.w.a.zone}/site-links", json={"site_ids": [c.w.b.site]}), 422)
    r = c.send("PUT", f"/api/risk-zones/{c.w.a.zone}/site-links", json={"site_ids": []})  # B's link stays
    clean(r)


def zones_of_site(c: Ctx) -> None:
    list_route("/api/risk-zones", "zone")(c)
    r = c.get("/api/risk-zones", params={"site_id": c.w.b.site})
    clean(r)
    assert r.json()["total"] == 0


def households_filtered(c: Ctx) -> None:
    list_route("/api/households", "household")(c)
    for key, attr in (("site_id", "site"), ("risk_zone_id", "zone"), ("shelter_id", "shelter")):
        r = c.get("/api/households", params={key: getattr(c.w.b, attr)})
        clean(r)
        assert r.json()["total"] == 0


def site_list(c: Ctx) -> None:
    list_route("/api/sites", "site")(c)
    for params in ({"township": TOWN_B}, {"bbox": "119.1,26.0,119.2,26.1"}, {"q": "BETA"}, {"format": "geojson"}):
        clean(c.get("/api/sites", params=params))
    assert c.get("/api/sites", params={"township": TOWN_B}).json()["total"] == 0


def units_tree(c: Ctx) -> None:
    r = c.get("/api/units")
    clean(r)
    assert [n["code"] for n in r.json()] == [TOWN_A]


def unit_item(c: Ctx) -> None:
    for code in (TOWN_B, TOWN_B + "001", "350922"):  # a sibling, its village, and the county above
        hidden(c.get(f"/api/units/{code}", params={"boundary": True}))
    clean(c.get(f"/api/units/{TOWN_A}", params={"boundary": True}))


def unit_create(c: Ctx) -> None:
    for code in (TOWN_B + "002", "350922102", "350922"):
        refused(c.send("POST", "/api/units", json={"code": code, "name": "新"}), 403)


def unit_patch(c: Ctx) -> None:
    for code in (TOWN_B, "350922"):
        hidden(c.send("PATCH", f"/api/units/{code}", json={"name": "改"}))


def status_change(c: Ctx) -> None:
    body = {"to_status": "under_treatment", "reason": "开工治理", "effective_on": "2024-05-01"}
    hidden(c.send("POST", f"/api/sites/{c.w.b.site}/status", json=body))


def add_resident(c: Ctx) -> None:
    hidden(c.send("POST", f"/api/households/{c.w.b.household}/residents", json={"name": "新人"}))


def patch_resident(c: Ctx) -> None:
    hidden(c.send("PATCH", f"/api/households/{c.w.b.household}/residents/{c.w.b.resident}", json={"name": "改"}))
    # B's resident through A's household is not found either
    hidden(c.send("PATCH", f"/api/households/{c.w.a.household}/residents/{c.w.b.resident}", json={"name": "改"}))


def user_create(c: Ctx) -> None:
    body = {"username": "intruder", "password": PASSWORD, "role": "viewer", "unit_code": TOWN_B}
    refused(c.send("POST", "/api/users", json=body), 403)
    refused(c.send("POST", "/api/users", json={**body, "unit_code": "350922"}), 403)


def user_patch(c: Ctx) -> None:
    hidden(c.send("PATCH", f"/api/users/{c.w.b.admin}", json={"active": False}))
    hidden(c.send("PATCH", f"/api/users/{c.w.county_admin}", json={"active": False}))
    refused(c.send("PATCH", f"/api/users/{c.w.a.users['viewer']}", json={"unit_code": TOWN_B}), 403)


def user_tokens(c: Ctx) -> None:
    hidden(c.get(f"/api/users/{c.w.b.admin}/tokens"))
    clean(c.get(f"/api/users/{c.w.a.users['viewer']}/tokens"))


def user_add_token(c: Ctx) -> None:
    hidden(c.send("POST", f"/api/users/{c.w.b.admin}/tokens", json={"name": "steal"}))


def revoke_token(c: Ctx) -> None:
    b_token = c.b_token_id  # type: ignore[attr-defined]
    hidden(c.send("DELETE", f"/api/tokens/{b_token}"))


def batches(c: Ctx) -> None:
    r = c.get("/api/import/batches")
    clean(r)
    assert {b["id"] for b in r.json()["items"]} == {c.w.a.batch}


def rejections(c: Ctx) -> None:
    hidden(c.get(f"/api/import/batches/{c.w.b.batch}/rejections"))
    clean(c.get(f"/api/import/batches/{c.w.a.batch}/rejections"))


def audit(c: Ctx) -> None:
    r = c.get("/api/audit", params={"limit": 1000})
    clean(r)
    assert r.json()["total"] > 0
    assert all(e["unit_code"].startswith(TOWN_A) for e in r.json()["items"])
    clean(c.get("/api/audit", params={"entity": "hazard_site", "entity_id": str(c.w.b.site)}))


def stats(c: Ctx) -> None:
    r = c.get("/api/stats")
    clean(r)


def export(c: Ctx) -> None:
    pytest.importorskip("geowarn.io.exporter", reason="geowarn.io.exporter is not written yet")
    for kind in ("sites", "risk_zones", "households", "shelters", "units"):
        for fmt in ("csv", "geojson"):
            clean(c.get(f"/api/export/{kind}", params={"format": fmt}))
        r = c.get(f"/api/export/{kind}", params={"format": "xlsx"})
        assert r.status_code == 200
        import openpyxl

        wb = openpyxl.load_workbook(io.BytesIO(r.content), read_only=True)
        cells = " ".join(str(v) for ws in wb.worksheets for row in ws.iter_rows(values_only=True) for v in row)
        assert not any(m.lower() in cells.lower() for m in B_MARKERS)


def import_file(c: Ctx) -> None:
    pytest.importorskip("geowarn.io.importer", reason="geowarn.io.importer is not written yet")
    # A GeoJSON that reuses B's site code and lies in B: neither may change B.
    fc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [119.15, 26.05]},
                "properties": {"code": "BETA-S1", "name": "改名", "hazard_type": "landslide", "unit_code": TOWN_B},
            }
        ],
    }
    files = {"file": ("b.geojson", json.dumps(fc).encode(), "application/geo+json")}
    r = c.send("POST", "/api/import/sites", files=files, data={"skip_bad": "true"})
    assert r.status_code in (200, 422), r.text
    if r.status_code == 200:
        assert (r.json()["created"], r.json()["updated"]) == (0, 0)
    # The problems echo the caller's own values (B's code and unit code); nothing else of B may appear.
    text = r.text.lower()
    for marker in ("beta滑坡", "beta张三", "13987654321", "350922199202029876", "beta乙镇"):
        assert marker.lower() not in text


def not_applicable(reason: str) -> Callable[[Ctx], None]:
    """For routes that take no record id and return only the caller's own data."""

    def run(c: Ctx) -> None:
        assert reason

    return run


def me(c: Ctx) -> None:
    clean(c.get("/api/auth/me"))


def health(c: Ctx) -> None:
    clean(c.client.get("/api/health"))


def token(c: Ctx) -> None:
    r = c.client.post("/api/auth/token", data={"username": "alpha_viewer", "password": PASSWORD})
    clean(r)


def logout(c: Ctx) -> None:
    other = login(c.client, "alpha_viewer")
    assert c.client.post("/api/auth/logout", headers=other).status_code == 204
    assert c.client.get("/api/auth/me", headers=other).status_code == 401


# --- the monitoring network ------------------------------------------------------------------


def ingest_walk(c: Ctx) -> None:
    """A user token is no device key: B's device cannot be fed with it (and no B record changes)."""
    body = {"deviceId": "BETA-D1", "data": {"value": 1.0, "totalValue": 2.0}}
    r = c.send("POST", "/api/ingest", json=body)
    assert r.status_code == 401, r.text
    r = c.client.post("/api/ingest", content=b"{}", headers={**c.h, "X-Device-Key": "x" * 32})
    assert r.status_code == 401, r.text


def monitoring_device_create(c: Ctx) -> None:
    body = {"station_id": c.w.b.station, "device_code": "NEW-D", "device_type": "LF"}
    refused(c.send("POST", "/api/monitoring/devices", json=body), 422)


def monitoring_devices(c: Ctx) -> None:
    list_route("/api/monitoring/devices", "device")(c)
    for params in ({"station_id": c.w.b.station}, {"online": "false"}, {"type": "RAIN"}):
        r = c.get("/api/monitoring/devices", params=params)
        clean(r)
        assert c.w.b.device not in ids_of(r)


def monitoring_import(c: Ctx) -> None:
    header = "监测点编号,监测点名称,经度,纬度,设备编号,设备类型,隐患点编号\n"
    rows = (
        "NEW-ST,新点,119.15,26.05,NEW-D9,LF,\n"  # a station placed in B
        "NEW-ST2,新点,119.05,26.05,BETA-D1,RAIN,\n"  # B's deviceId at A's place
        "NEW-ST3,新点,119.05,26.05,NEW-D8,LF,BETA-S1\n"  # linked to B's site
        "BETA-ST1,新点,119.05,26.05,NEW-D7,LF,\n"  # B's station code
    )
    for skip in ("false", "true"):
        files = {"file": ("d.csv", (header + rows).encode(), "text/csv")}
        r = c.send("POST", "/api/monitoring/devices/import", files=files, data={"skip_bad": skip})
        if skip == "false":
            assert r.status_code == 422, r.text
            assert {p["row"] for p in r.json()["problems"]} == {1, 2, 3, 4}
        else:
            assert r.status_code == 200, r.text
            assert (r.json()["created"], r.json()["updated"], r.json()["rejected"]) == (0, 0, 4)
        for marker in ("beta监测点", "beta滑坡", "beta乙镇", TOWN_B):
            assert marker.lower() not in r.text.lower()


def monitoring_latest(c: Ctx) -> None:
    r = c.get("/api/monitoring/latest")
    clean(r)
    ids = {i["sensor_id"] for i in r.json()["items"]}
    assert c.w.a.sensor in ids and c.w.b.sensor not in ids


def monitoring_rainfall(c: Ctx) -> None:
    r = c.get("/api/monitoring/rainfall", params={"at": "2026-07-01T09:00:00+08:00"})
    clean(r)
    assert [i["sensor_id"] for i in r.json()["items"]] == [c.w.a.sensor]


def monitoring_online_rate(c: Ctx) -> None:
    for by in ("device", "site", "township"):
        r = c.get("/api/monitoring/online-rate", params={"date": "2026-07-01", "by": by})
        clean(r)
        assert r.json()["total"]["devices"] == 1


def monitoring_events(c: Ctx) -> None:
    r = c.get("/api/monitoring/events")
    clean(r)
    assert [e["id"] for e in r.json()["items"]] == [c.w.a.event]


def monitoring_letters(c: Ctx) -> None:
    r = c.get("/api/monitoring/dead-letters", params={"limit": 1000})
    clean(r)
    ids = {d["id"] for d in r.json()["items"]}
    assert c.w.b.letter not in ids and c.w.a.letter in ids


def monitoring_letter_payload(c: Ctx) -> None:
    hidden(c.get(f"/api/monitoring/dead-letters/{c.w.b.letter}/payload"))
    r = c.get(f"/api/monitoring/dead-letters/{c.w.a.letter}/payload")
    assert r.status_code == 200 and b"ALPHA-D1" in r.content


# --- the warning engine ----------------------------------------------------------------------

CONTENT = {"valid_from": "2026-07-01T08:00:00+08:00", "valid_to": "2026-07-02T08:00:00+08:00", "areas": {}}


def silence_create(c: Ctx) -> None:
    body = {"end": str(int(time.time() * 1000) + 86_400_000), "reason": "维护检修"}
    refused(c.send("POST", "/api/alerts/silences", json={**body, "site_id": c.w.b.site}), 422)
    refused(c.send("POST", "/api/alerts/silences", json={**body, "device_id": c.w.b.device}), 422)


def product_version_route(method: str, suffix: str, body: dict[str, Any] | None = None) -> Callable[[Ctx], None]:
    def run(c: Ctx) -> None:
        hidden(c.send(method, f"/api/products/{c.w.b.product}{suffix}", json=body))

    return run


RULES = {
    "rules": [{"id": "rain_24h", "name": "本点", "levels": {"red": {"all": [{"series": "rain_24h", "value": 99}]}}}]
}


def type_rules_put(c: Ctx) -> None:
    """A township's hazard-type override is stored for its own unit and never reaches B's sites."""
    r = c.send("PUT", "/api/warning/rules/types/landslide", json=RULES)
    assert r.status_code == 200, r.text
    with c.w_db.read() as s:  # type: ignore[attr-defined]
        (unit,) = s.execute(select(RuleOverride.unit_code)).one()
    assert unit == TOWN_A


def map_sites(c: Ctx) -> None:
    r = c.get("/api/map/sites")
    clean(r)
    assert c.w.a.site in r.json()["id"] and c.w.b.site not in r.json()["id"]


def map_boundaries(c: Ctx) -> None:
    r = c.get("/api/map/boundaries")
    clean(r)
    assert [f["properties"]["code"] for f in r.json()["features"]] == [TOWN_A]


def map_zones(c: Ctx) -> None:
    for params in ({}, {"bbox": "118.0,25.0,121.0,27.0"}):
        r = c.get("/api/map/zones", params=params)
        clean(r)
        ids = {f["id"] for f in r.json()["features"]}
        assert f"rz{c.w.a.zone}" in ids and f"rz{c.w.b.zone}" not in ids


def map_stations(c: Ctx) -> None:
    r = c.get("/api/map/stations")
    clean(r)
    assert [s["id"] for s in r.json()["items"]] == [c.w.a.station]


ROUTE_TABLE: dict[tuple[str, str], Callable[[Ctx], None]] = {
    ("GET", "/api/map/sites"): map_sites,
    ("GET", "/api/map/boundaries"): map_boundaries,
    ("GET", "/api/map/zones"): map_zones,
    ("GET", "/api/map/stations"): map_stations,
    ("GET", "/api/health"): health,
    ("POST", "/api/auth/token"): token,
    ("GET", "/api/auth/me"): me,
    ("POST", "/api/auth/logout"): logout,
    ("GET", "/api/units"): units_tree,
    ("GET", "/api/units/{code}"): unit_item,
    ("POST", "/api/units"): unit_create,
    ("PATCH", "/api/units/{code}"): unit_patch,
    ("GET", "/api/sites"): site_list,
    ("GET", "/api/sites/{site_id}"): item_route("/api/sites/{}", "site"),
    ("POST", "/api/sites"): create_route(
        "/api/sites", site_body, {"responsible_person_id": "person", "monitor_id": "person"}
    ),
    ("PATCH", "/api/sites/{site_id}"): patch_route(
        "/api/sites/{}", "site", {"unit_code": TOWN_B}, bad_ref={"monitor_id": "person"}
    ),
    ("POST", "/api/sites/{site_id}/status"): status_change,
    ("GET", "/api/sites/{site_id}/history"): item_route("/api/sites/{}/history", "site"),
    ("GET", "/api/sites/near"): spatial_near,
    ("GET", "/api/sites/nearest"): spatial_nearest,
    ("POST", "/api/sites/within"): spatial_within,
    ("GET", "/api/risk-zones"): zones_of_site,
    ("GET", "/api/risk-zones/{zone_id}"): item_route("/api/risk-zones/{}", "zone"),
    ("GET", "/api/risk-zones/{zone_id}/sites"): zone_sites,
    ("GET", "/api/risk-zones/{zone_id}/site-links"): zone_links_get,
    ("PUT", "/api/risk-zones/{zone_id}/site-links"): zone_links_put,
    ("POST", "/api/risk-zones"): create_route(
        "/api/risk-zones", lambda w: {"code": "NEW-Z", "name": "新区", "grade": "low", "geometry": WIDE}
    ),
    ("PATCH", "/api/risk-zones/{zone_id}"): patch_route("/api/risk-zones/{}", "zone", {"unit_code": TOWN_B}),
    ("GET", "/api/shelters"): list_route("/api/shelters", "shelter"),
    ("GET", "/api/shelters/{shelter_id}"): item_route("/api/shelters/{}", "shelter"),
    ("POST", "/api/shelters"): create_route(
        "/api/shelters",
        lambda w: {"code": "NEW-H", "name": "新点", "lon": 119.05, "lat": 26.05},
        {"contact_id": "person"},
    ),
    ("PATCH", "/api/shelters/{shelter_id}"): patch_route(
        "/api/shelters/{}", "shelter", {"unit_code": TOWN_B}, bad_ref={"contact_id": "person"}
    ),
    ("GET", "/api/households"): households_filtered,
    ("GET", "/api/households/{household_id}"): item_route("/api/households/{}", "household"),
    ("POST", "/api/households"): create_route(
        "/api/households",
        lambda w: {"code": "NEW-HH", "head_name": "新户", "lon": 119.05, "lat": 26.05},
        {"site_id": "site", "risk_zone_id": "zone", "shelter_id": "shelter"},
    ),
    ("PATCH", "/api/households/{household_id}"): patch_route(
        "/api/households/{}", "household", {"unit_code": TOWN_B}, bad_ref={"site_id": "site", "shelter_id": "shelter"}
    ),
    ("POST", "/api/households/{household_id}/residents"): add_resident,
    ("PATCH", "/api/households/{household_id}/residents/{resident_id}"): patch_resident,
    ("GET", "/api/persons"): list_route("/api/persons", "person"),
    ("GET", "/api/persons/{person_id}"): item_route("/api/persons/{}", "person"),
    ("POST", "/api/persons"): create_route("/api/persons", lambda w: {"name": "新人"}, {"organisation_id": "org"}),
    ("PATCH", "/api/persons/{person_id}"): patch_route(
        "/api/persons/{}", "person", {"unit_code": TOWN_B}, bad_ref={"organisation_id": "org"}
    ),
    ("GET", "/api/organisations"): list_route("/api/organisations", "org"),
    ("GET", "/api/organisations/{organisation_id}"): item_route("/api/organisations/{}", "org"),
    ("POST", "/api/organisations"): create_route(
        "/api/organisations", lambda w: {"name": "新单位", "department": "water"}
    ),
    ("PATCH", "/api/organisations/{organisation_id}"): patch_route(
        "/api/organisations/{}", "org", {"unit_code": TOWN_B}
    ),
    ("GET", "/api/users"): list_route("/api/users", "admin"),
    ("GET", "/api/users/{user_id}"): item_route("/api/users/{}", "admin"),
    ("POST", "/api/users"): user_create,
    ("PATCH", "/api/users/{user_id}"): user_patch,
    ("GET", "/api/users/{user_id}/tokens"): user_tokens,
    ("POST", "/api/users/{user_id}/tokens"): user_add_token,
    ("DELETE", "/api/tokens/{token_id}"): revoke_token,
    ("GET", "/api/audit"): audit,
    ("GET", "/api/stats"): stats,
    ("GET", "/api/import/batches"): batches,
    ("GET", "/api/import/batches/{batch_id}/rejections"): rejections,
    ("POST", "/api/import/{kind}"): import_file,
    ("GET", "/api/export/{kind}"): export,
    ("POST", "/api/ingest"): ingest_walk,
    ("GET", "/api/monitoring/stations"): list_route("/api/monitoring/stations", "station"),
    ("GET", "/api/monitoring/stations/{station_id}"): item_route("/api/monitoring/stations/{}", "station"),
    ("POST", "/api/monitoring/stations"): create_route(
        "/api/monitoring/stations",
        lambda w: {"code": "NEW-ST", "name": "新点", "lon": 119.05, "lat": 26.05},
        {"site_id": "site"},
    ),
    ("PATCH", "/api/monitoring/stations/{station_id}"): patch_route(
        "/api/monitoring/stations/{}", "station", {"unit_code": TOWN_B}, bad_ref={"site_id": "site"}
    ),
    ("GET", "/api/monitoring/devices"): monitoring_devices,
    ("GET", "/api/monitoring/devices/{device_id}"): item_route("/api/monitoring/devices/{}", "device"),
    ("POST", "/api/monitoring/devices"): monitoring_device_create,
    ("PATCH", "/api/monitoring/devices/{device_id}"): lambda c: hidden(
        c.send("PATCH", f"/api/monitoring/devices/{c.w.b.device}", json={"status": "retired"})
    ),
    ("POST", "/api/monitoring/devices/{device_id}/apikey"): lambda c: hidden(
        c.send("POST", f"/api/monitoring/devices/{c.w.b.device}/apikey")
    ),
    ("POST", "/api/monitoring/devices/import"): monitoring_import,
    ("GET", "/api/monitoring/sensors/{sensor_id}"): item_route("/api/monitoring/sensors/{}", "sensor"),
    ("PATCH", "/api/monitoring/sensors/{sensor_id}"): lambda c: hidden(
        c.send("PATCH", f"/api/monitoring/sensors/{c.w.b.sensor}", json={"active": False})
    ),
    ("GET", "/api/monitoring/sensors/{sensor_id}/observations"): item_route(
        "/api/monitoring/sensors/{}/observations?start=2026-07-01&end=2026-07-02", "sensor"
    ),
    ("GET", "/api/monitoring/latest"): monitoring_latest,
    ("GET", "/api/monitoring/rainfall"): monitoring_rainfall,
    ("GET", "/api/monitoring/online-rate"): monitoring_online_rate,
    ("GET", "/api/monitoring/events"): monitoring_events,
    ("GET", "/api/monitoring/dead-letters"): monitoring_letters,
    ("GET", "/api/monitoring/dead-letters/{letter_id}/payload"): monitoring_letter_payload,
    ("GET", "/api/alerts"): list_route("/api/alerts", "alert"),
    ("GET", "/api/alerts/{alert_id}"): item_route("/api/alerts/{}", "alert"),
    ("POST", "/api/alerts/{alert_id}/acknowledge"): lambda c: hidden(
        c.send("POST", f"/api/alerts/{c.w.b.alert}/acknowledge", json={"comment": "x"})
    ),
    ("GET", "/api/alerts/silences"): list_route("/api/alerts/silences", "silence"),
    ("POST", "/api/alerts/silences"): silence_create,
    ("DELETE", "/api/alerts/silences/{silence_id}"): lambda c: hidden(
        c.send("DELETE", f"/api/alerts/silences/{c.w.b.silence}")
    ),
    ("GET", "/api/products"): list_route("/api/products", "product"),
    ("GET", "/api/products/{product_id}"): item_route("/api/products/{}", "product"),
    ("POST", "/api/products"): create_route("/api/products", lambda w: {"title": "新预警", **CONTENT}),
    ("GET", "/api/products/{product_id}/versions/{number}/areas"): item_route(
        "/api/products/{}/versions/1/areas", "product"
    ),
    ("POST", "/api/products/{product_id}/versions"): product_version_route(
        "POST", "/versions", {"kind": "update", **CONTENT}
    ),
    ("PUT", "/api/products/{product_id}/versions/{number}"): product_version_route("PUT", "/versions/1", CONTENT),
    ("POST", "/api/products/{product_id}/versions/{number}/submit"): product_version_route(
        "POST", "/versions/1/submit"
    ),
    ("POST", "/api/products/{product_id}/versions/{number}/sign"): product_version_route(
        "POST", "/versions/1/sign", {"department": "natural_resources", "decision": "approve"}
    ),
    ("POST", "/api/products/{product_id}/versions/{number}/issue"): product_version_route("POST", "/versions/1/issue"),
    ("POST", "/api/products/compute"): lambda c: refused(
        c.send("POST", "/api/products/compute", files=[("rain", ("r.asc", b""))], data={"unit_code": TOWN_B}), 403
    ),
    ("GET", "/api/warning/rules/defaults"): lambda c: clean(c.get("/api/warning/rules/defaults")),
    ("GET", "/api/warning/rules/types/{hazard_type}"): lambda c: clean(c.get("/api/warning/rules/types/landslide")),
    ("PUT", "/api/warning/rules/types/{hazard_type}"): type_rules_put,
    ("GET", "/api/sites/{site_id}/rules"): item_route("/api/sites/{}/rules", "site"),
    ("PUT", "/api/sites/{site_id}/rules"): lambda c: hidden(
        c.send("PUT", f"/api/sites/{c.w.b.site}/rules", json=RULES)
    ),
    ("DELETE", "/api/sites/{site_id}/rules"): lambda c: hidden(c.send("DELETE", f"/api/sites/{c.w.b.site}/rules")),
}

ROUTE_TABLE.update(dissemination_scoping.ROUTES)
ROUTE_TABLE.update(fieldwork_scoping.ROUTES)


def test_route_table_covers_every_route(client: TestClient) -> None:
    served = set(api_routes(client.app))  # type: ignore[arg-type]
    documented = {
        (m.upper(), p)
        for p, ops in client.app.openapi()["paths"].items()
        for m in ops  # type: ignore[attr-defined]
    }
    assert documented <= served
    assert served - set(ROUTE_TABLE) == set(), "new routes need an entry in ROUTE_TABLE (scoping walk)"
    assert set(ROUTE_TABLE) - served == set(), "ROUTE_TABLE names routes the app no longer has"


def snapshot_b(db: Database, w: World) -> dict[str, list[str]]:
    """Every row of B: tables with a unit code, plus B's tokens, status changes, links, rejections."""
    out: dict[str, list[str]] = {}
    with db.read() as s:
        for table in Base.metadata.sorted_tables:
            col = table.c.get("unit_code")
            if table.name == "admin_unit":
                col = table.c.code
            if col is None:
                continue
            rows = s.execute(select(table).where(unit_filter(col, TOWN_B))).all()
            out[table.name] = sorted(repr(tuple(r)) for r in rows)
        b_users = [w.b.admin, *w.b.users.values()]
        extra = {
            # every column but last_used_at, which B's own use of the token moves
            "api_token": select(ApiToken.id, ApiToken.token_hash, ApiToken.expires_at, ApiToken.revoked).where(
                ApiToken.user_id.in_(b_users)
            ),
            "site_status_change": select(SiteStatusChange.__table__).where(SiteStatusChange.site_id == w.b.site),
            "risk_zone_site": select(RiskZoneSite.__table__).where(
                (RiskZoneSite.zone_id == w.b.zone) | (RiskZoneSite.site_id == w.b.site)
            ),
            "import_rejection": select(ImportRejection.__table__).where(ImportRejection.batch_id == w.b.batch),
            "product_version": select(ProductVersion.__table__).where(ProductVersion.product_id == w.b.product),
        }
        for name, stmt in extra.items():
            out["+" + name] = sorted(repr(tuple(r)) for r in s.execute(stmt).all())
    return out


FILE_ROUTES = {("POST", "/api/import/{kind}"), ("GET", "/api/export/{kind}")}


def _walk(db: Database, client: TestClient, world: World, routes: set[tuple[str, str]]) -> None:
    """Run the table's entries for ``routes`` as A's administrator; B's rows must not change."""
    # A cross link a careless import could make: A's zone declares B's site.
    with db.write(actor="seed") as s:
        s.add(RiskZoneSite(zone_id=world.a.zone, site_id=world.b.site))
    dissemination_scoping.seed(db, world)  # warnings, recipients and tasks of both townships
    b_headers = login(client, "beta_administrator")
    with db.read() as s:
        b_token_id = s.scalars(select(ApiToken.id).where(ApiToken.user_id == world.b.admin)).one()
    before = snapshot_b(db, world)
    assert all(before[t] for t in ("hazard_site", "household", "resident", "person", "admin_unit", "+api_token"))

    ctx = Ctx(client, login(client, "alpha_administrator"), world)
    ctx.b_token_id = b_token_id  # type: ignore[attr-defined]
    ctx.w_db = db  # type: ignore[attr-defined]
    for key in sorted(routes):
        ROUTE_TABLE[key](ctx)

    assert client.get("/api/auth/me", headers=b_headers).status_code == 200  # B's token still works
    after = snapshot_b(db, world)
    for table in before:
        assert after[table] == before[table], f"B's {table} changed"


def test_township_a_sees_and_changes_nothing_of_b(db: Database, client: TestClient, world: World) -> None:
    _walk(db, client, world, set(ROUTE_TABLE) - FILE_ROUTES)


def test_township_a_cannot_reach_b_through_files(db: Database, client: TestClient, world: World) -> None:
    pytest.importorskip("geowarn.io.importer", reason="geowarn.io.importer is not written yet")
    pytest.importorskip("geowarn.io.exporter", reason="geowarn.io.exporter is not written yet")
    _walk(db, client, world, FILE_ROUTES)


def test_b_sees_its_own(client: TestClient, world: World) -> None:
    """The same walk from B's side finds B's records (the fixtures are symmetric and live)."""
    h = login(client, "beta_administrator")
    r = client.get("/api/sites", headers=h)
    assert [s["code"] for s in r.json()["items"]] == ["BETA-S1"]
    assert client.get(f"/api/sites/{world.a.site}", headers=h).status_code == 404
    county = login(client, "county_admin")
    codes = {s["code"] for s in client.get("/api/sites", headers=county).json()["items"]}
    assert codes == {"ALPHA-S1", "BETA-S1"}
