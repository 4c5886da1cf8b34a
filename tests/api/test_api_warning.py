"""The alert and regional-product routes: acknowledgement, silences, and the joint sign-off workflow."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import orjson
from fastapi.testclient import TestClient
from sqlalchemy import update

from geowarn.auth.service import create_user
from geowarn.db import Database
from geowarn.monitoring.models import Observation
from geowarn.regional.grid import Grid
from geowarn.regional.readers import write_grid
from tests.api.apiworld import COUNTY, PASSWORD, T_OBS, TOWN_A, World, login

AREA = {"type": "Polygon", "coordinates": [[[119.0, 26.0], [119.1, 26.0], [119.1, 26.1], [119.0, 26.1], [119.0, 26.0]]]}


def test_alerts_list_acknowledge_and_history(client: TestClient, world: World) -> None:
    op = login(client, "alpha_operator")
    r = client.get("/api/alerts", headers=op, params={"status": "open"})
    assert r.status_code == 200
    body = r.json()
    assert body["total"] == 1 and body["open_by_level"] == {"blue": 0, "yellow": 1, "orange": 0, "red": 0}
    (item,) = body["items"]
    assert (item["level_zh"], item["site_code"], item["colour"]) == ("警示", "ALPHA-S1", "yellow")
    viewer = login(client, "alpha_viewer")
    assert client.post(f"/api/alerts/{item['id']}/acknowledge", headers=viewer, json={}).status_code == 403
    monitor = login(client, "alpha_monitor")
    r = client.post(f"/api/alerts/{item['id']}/acknowledge", headers=monitor, json={"comment": "已现场核查"})
    assert r.status_code == 200 and r.json()["ack_comment"] == "已现场核查"
    again = client.post(f"/api/alerts/{item['id']}/acknowledge", headers=monitor, json={})
    assert again.status_code == 409 and "已确认" in again.json()["detail_zh"]
    history = client.get(f"/api/alerts/{item['id']}", headers=op).json()["history"]
    assert [(h["kind"], h["actor"], h["comment"]) for h in history] == [("acknowledged", "alpha_monitor", "已现场核查")]
    assert client.get("/api/alerts", headers=op, params={"min_level": 3}).json()["total"] == 0


def test_silences_need_the_warn_permission_and_can_be_cancelled(client: TestClient, world: World) -> None:
    end = int(time.time() * 1000) + 7 * 86_400_000
    body = {"site_id": world.a.site, "end": str(end), "reason": "治理施工"}
    assert client.post("/api/alerts/silences", headers=login(client, "alpha_monitor"), json=body).status_code == 403
    op = login(client, "alpha_operator")
    r = client.post("/api/alerts/silences", headers=op, json=body)
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    assert sid in {
        s["id"] for s in client.get("/api/alerts/silences", headers=op, params={"active": True}).json()["items"]
    }
    bad = client.post("/api/alerts/silences", headers=op, json={**body, "end": "2020-01-01"})
    assert bad.status_code == 422
    assert client.delete(f"/api/alerts/silences/{sid}", headers=op).status_code == 200
    assert client.delete(f"/api/alerts/silences/{sid}", headers=op).status_code == 409
    active = client.get("/api/alerts/silences", headers=op, params={"active": True}).json()["items"]
    assert sid not in {s["id"] for s in active}


def test_an_orange_product_is_issued_only_after_both_sign_offs(db: Database, client: TestClient, world: World) -> None:
    with db.write("seed") as s:
        create_user(s, "forecaster", PASSWORD, "weather", COUNTY)
    op = login(client, "alpha_operator")
    body = {"title": "甲镇地质灾害气象风险预警", "unit_code": TOWN_A, "valid_from": "2026-07-01T20:00:00+08:00",
            "valid_to": "2026-07-02T20:00:00+08:00", "areas": {"3": AREA}, "message": "橙色预警"}  # fmt: skip
    r = client.post("/api/products", headers=op, json=body)
    assert r.status_code == 201, r.text
    product = r.json()
    pid = product["id"]
    (v1,) = product["versions"]
    assert (v1["level"], v1["state"], v1["required_signoffs"]) == (3, "draft", ["natural_resources", "weather"])
    assert 100 < v1["areas"][0]["area_km2"] < 120  # 0.1° x 0.1° at 26°N is about 111 km2
    assert client.post(f"/api/products/{pid}/versions/1/submit", headers=op).status_code == 200
    sign = {"department": "natural_resources", "decision": "approve", "comment": "同意"}
    assert client.post(f"/api/products/{pid}/versions/1/sign", headers=op, json=sign).status_code == 200
    early = client.post(f"/api/products/{pid}/versions/1/issue", headers=op)
    assert early.status_code == 409 and "气象部门" in early.json()["detail_zh"]
    wx = login(client, "forecaster")
    denied = client.post(f"/api/products/{pid}/versions/1/sign", headers=wx, json=sign)
    assert denied.status_code == 403
    ok = client.post(f"/api/products/{pid}/versions/1/sign", headers=wx, json={**sign, "department": "weather"})
    assert ok.status_code == 200, ok.text
    issued = client.post(f"/api/products/{pid}/versions/1/issue", headers=op)
    assert issued.status_code == 200 and issued.json()["status"] == "issued" and issued.json()["level_zh"] == "二级"
    areas = client.get(f"/api/products/{pid}/versions/1/areas", headers=op).json()
    assert [f["properties"]["level"] for f in areas["features"]] == [3]
    lift = {"kind": "lift", "valid_from": "2026-07-02T08:00:00+08:00", "valid_to": "2026-07-02T20:00:00+08:00"}
    r = client.post(f"/api/products/{pid}/versions", headers=op, json=lift)
    assert r.status_code == 201 and r.json()["required_signoffs"] == ["natural_resources"]
    bad = client.post("/api/products", headers=op, json={**body, "areas": {"7": AREA}})
    assert bad.status_code == 422


def test_site_rules_override_and_a_reading_raises_the_alert_through_the_engine(
    client: TestClient, world: World
) -> None:
    op = login(client, "alpha_operator")
    levels = {
        "yellow": {"all": [{"series": "rain_24h", "value": 1}]},
        "red": {"all": [{"series": "rain_24h", "value": 5}]},
    }
    rules = {"rules": [{"id": "rain_24h", "name": "本点24小时雨量", "levels": levels}]}
    bad = client.put(f"/api/sites/{world.a.site}/rules", headers=op, json={"rules": [{"id": "x", "levels": {}}]})
    assert bad.status_code == 422 and "rules.0.name" in bad.json()["detail"]
    r = client.put(f"/api/sites/{world.a.site}/rules", headers=op, json=rules)
    assert r.status_code == 200, r.text
    effective = {x["id"]: x for x in client.get(f"/api/sites/{world.a.site}/rules", headers=op).json()["effective"]}
    assert effective["rain_24h"]["name"] == "本点24小时雨量" and "tangent_angle" in effective
    body = {"deviceId": "ALPHA-D1", "apikey": world.a.device_key,
            "data": {"value": 6.0, "totalValue": 16.0, "ts": T_OBS + 600_000}}  # fmt: skip
    r = client.post("/api/ingest", json=body)
    assert r.status_code == 200 and r.json()["accepted"] == 2, r.text
    deadline = time.monotonic() + 20
    alert: dict[str, object] = {}
    while time.monotonic() < deadline:
        alert = client.get(f"/api/alerts/{world.a.alert}", headers=op).json()
        if alert["level"] == 4:
            break
        time.sleep(0.05)
    assert alert["level"] == 4 and alert["rule_name"] == "本点24小时雨量"
    assert alert["reason"]["terms"][0]["value"] == 7.5  # the world's 1.5 mm reading and the new 6 mm
    assert [h["kind"] for h in alert["history"]] == ["escalated"]  # type: ignore[union-attr]
    assert client.delete(f"/api/sites/{world.a.site}/rules", headers=op).json()["deleted"] is True


def test_compute_a_product_from_uploaded_grids(client: TestClient, world: World, tmp_path: Path) -> None:
    values = np.full((4, 5), 20.0)
    values[:, :2] = 120.0  # the western 0.2°, which holds township A's site (119.05, 26.05)
    today = write_grid(Grid.regular(118.95, 26.2, 0.1, values), tmp_path / "today.tif", "geotiff")
    yesterday = write_grid(Grid.regular(118.95, 26.2, 0.1, np.full((4, 5), 5.0)), tmp_path / "d1.asc", "ascii")
    op = login(client, "alpha_operator")
    files = [("rain", ("today.tif", today.read_bytes())), ("rain", ("d1.asc", yesterday.read_bytes()))]
    r = client.post("/api/products/compute", headers=op, files=files, data={"unit_code": TOWN_A})
    assert r.status_code == 201, r.text
    (v1,) = r.json()["versions"]
    # 120 + 0.8·5 = 124 mm: orange in the west; 20 + 4 = 24 mm elsewhere: nothing
    assert v1["level"] == 3 and [a["level"] for a in v1["areas"]] == [3]
    listed = [i for ids in v1["summary"]["site_ids"].values() for i in ids]
    assert v1["summary"]["site_ids"]["3"] == [world.a.site] and world.b.site not in listed
    assert v1["summary"]["levels"]["orange"]["sites"] == 1
    # the same rain on medium susceptibility (thresholds ×1.25): 124 mm is below 137.5, so yellow
    zone = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"grade": "中易发"},
            "geometry": {"type": "Polygon", "coordinates": [[[118.9, 25.7], [119.5, 25.7], [119.5, 26.3],
                                                             [118.9, 26.3], [118.9, 25.7]]]}}]}  # fmt: skip
    files.append(("susceptibility", ("zoning.geojson", orjson.dumps(zone))))
    r = client.post("/api/products/compute", headers=op, files=files, data={"unit_code": TOWN_A})
    assert r.status_code == 201 and r.json()["versions"][0]["level"] == 2, r.text
    bad = client.post("/api/products/compute", headers=op, files=[("rain", ("x.tif", b"not a tiff"))])
    assert bad.status_code == 422 and "upload.tif" in bad.json()["detail"]


def test_compute_from_the_rain_gauges_by_idw(db: Database, client: TestClient, world: World) -> None:
    op = login(client, "alpha_operator")
    r = client.post("/api/products/compute", headers=op, data={"unit_code": TOWN_A})
    assert r.status_code == 422 and "雨量站" in r.json()["detail_zh"]  # the world's reading is months old
    now = int(time.time() * 1000)
    for k in range(13):  # 130 mm in 10 mm steps (one 130 mm reading in 10 minutes is suspect by QC)
        body = {
            "deviceId": "ALPHA-D1",
            "apikey": world.a.device_key,
            "data": {"value": 10.0, "totalValue": 10.0 * (k + 1), "ts": now - (13 - k) * 600_000},
        }
        assert client.post("/api/ingest", json=body).json()["accepted"] == 2
    r = client.post("/api/products/compute", headers=op, data={"unit_code": TOWN_A})
    assert r.status_code == 201, r.text
    (v1,) = r.json()["versions"]
    # one gauge: the whole township gets its 130 mm → orange (110 ≤ 130 < 160)
    assert v1["level"] == 3 and v1["inputs"]["rain_files"][0].startswith("rain gauges")
    # the same readings flagged suspect (QC 3) are left out, as the site rules leave them out
    with db.write("test") as w:
        w.execute(update(Observation).where(Observation.t_ms >= now - 13 * 600_000).values(flag=3))
    r = client.post("/api/products/compute", headers=op, data={"unit_code": TOWN_A})
    assert r.status_code == 422 and "雨量站" in r.json()["detail_zh"]


def test_rules_come_as_yaml_too_and_hostile_documents_are_refused(client: TestClient, world: World) -> None:
    """A county sends its hazard-type rules as YAML in the form of the defaults file; aliases (a YAML
    bomb), malformed YAML, non-objects and huge bodies get a clear 4xx and change nothing."""
    op = login(client, "alpha_operator")
    url = "/api/warning/rules/types/landslide"
    yaml_rules = """
rules:
  - id: rain_24h
    name: 本县24小时雨量
    levels:
      yellow: {all: [{series: rain_24h, value: 40}]}
      red:    {all: [{series: rain_24h, value: 120}]}
  - id: tangent_angle
    name: 改进切线角（本县停用）
    levels: {}
    disabled: true
"""
    r = client.put(url, headers={**op, "Content-Type": "application/yaml"}, content=yaml_rules.encode())
    assert r.status_code == 200, r.text
    effective = {x["id"]: x for x in r.json()["effective"]}
    assert effective["rain_24h"]["name"] == "本县24小时雨量" and "tangent_angle" not in effective
    version = r.json()["version"]
    bomb = "a: &a [x, x]\nb: &b [*a, *a]\nc: &c [*b, *b]\nrules: [*c]\n"
    hostile = [
        ("application/yaml", bomb.encode(), 422, "YAML"),
        ("application/yaml", b"rules: [\n  - id: x\n    name: [unclosed", 422, "YAML"),
        ("application/yaml", b"- just\n- a list\n", 422, "rules"),
        ("application/json", b"{not json", 422, "JSON"),
        ("application/yaml", b"rules: []\n# " + b"x" * 300_000, 413, "256"),
        ("application/yaml", yaml_rules.replace("value: 40", "value: forty").encode(), 422, "rules.0.levels"),
    ]
    for kind, body, status, says in hostile:
        r = client.put(url, headers={**op, "Content-Type": kind}, content=body)
        assert r.status_code == status and says in (r.json()["detail"] + r.json()["detail_zh"]), (kind, r.text)
    current = client.get(url, headers=op).json()
    assert current["version"] == version and current["override"]["rules"][0]["name"] == "本县24小时雨量"
