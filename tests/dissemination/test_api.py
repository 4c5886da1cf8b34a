"""The dissemination and response API on both backends: what was sent, confirmation links, templates,
masking, CAP and the feed, transfer records through HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import shapely
from fastapi.testclient import TestClient
from lxml import etree
from sqlalchemy import select

from geowarn.api import create_app
from geowarn.auth.models import User
from geowarn.auth.service import create_user
from geowarn.config import Settings
from geowarn.db import Database
from geowarn.dissemination.cap import CapSchema
from geowarn.dissemination.models import IssueRecipient, OutboxMessage
from geowarn.warning import alerts
from geowarn.warning import products as wf
from geowarn.warning.levels import Level
from tests.api.apiworld import PASSWORD, login
from tests.dissemination.world import COUNTY, MIN, T0, TOWN, VILLAGE, W, build

HOUR = 60 * MIN


@pytest.fixture
def world(db: Database) -> W:
    w = build(db)
    with db.write("seed") as s:
        for name, role, unit in (
            ("county_op", "operator", COUNTY),
            ("viewer", "viewer", COUNTY),
            ("town_monitor", "monitor", TOWN),
        ):
            create_user(s, name, PASSWORD, role, unit)
    return w


@pytest.fixture
def client(db: Database) -> Iterator[TestClient]:
    app = create_app(db, settings=Settings(token_ttl_hours=12, max_upload_mb=1))
    with TestClient(app) as c:
        yield c


def _red_alert(db: Database, w: W) -> None:
    with db.write("engine") as s:
        alerts.apply_level(
            s,
            kind=alerts.SITE_RULE,
            rule_id="rate",
            unit_code=VILLAGE,
            level=Level.RED,
            now_ms=T0,
            site_id=w.site,
            rule_name="位移速率",
        )


def test_who_was_told_what_masked_for_viewers(db: Database, world: W, client: TestClient) -> None:
    _red_alert(db, world)
    op, viewer = login(client, "county_op"), login(client, "viewer")
    (item,) = client.get("/api/dissemination/warnings", headers=op).json()["items"]
    assert (item["kind"], item["colour"], item["recipients"]) == ("initial", "red", 9)
    detail = client.get(f"/api/dissemination/warnings/{item['id']}", headers=op).json()
    assert detail["by_channel"]["sms"] == {"pending": 8} and detail["by_channel"]["voice"] == {"pending": 4}
    full = client.get(f"/api/dissemination/warnings/{item['id']}/recipients", headers=op).json()["items"]
    masked = client.get(f"/api/dissemination/warnings/{item['id']}/recipients", headers=viewer).json()["items"]
    assert "13900000010" in {r["phone"] for r in full}
    assert all(r["phone"] is None or "*" in r["phone"] for r in masked)
    msgs = client.get(f"/api/dissemination/warnings/{item['id']}/messages", headers=viewer).json()["items"]
    assert all(m["body"] is None for m in msgs)


def test_the_link_in_the_message_confirms_without_login(db: Database, world: W, client: TestClient) -> None:
    _red_alert(db, world)
    with db.read() as s:
        r = s.scalars(select(IssueRecipient).where(IssueRecipient.name == "李大")).one()
        body = (
            s.scalars(
                select(OutboxMessage).where(OutboxMessage.address == "13900000010", OutboxMessage.channel == "sms")
            )
            .one()
            .body
        )
    link = body[body.index("http://") :].split("确认")[0]
    path = link.removeprefix("http://127.0.0.1:8000")
    page = client.get(path)
    assert page.status_code == 200 and "已确认收到" in page.text
    assert client.post("/api/dissemination/ack", json={"phone": "13900000001", "code": "000000"}).status_code == 422
    with db.read() as s:
        resp = s.scalars(select(IssueRecipient).where(IssueRecipient.name == "王责任")).one()
    ok = client.post("/api/dissemination/ack", json={"phone": "13900000001", "code": resp.code})
    assert ok.status_code == 200
    with db.read() as s:
        got = {x.name: x.ack_via for x in s.scalars(select(IssueRecipient)) if x.acked_ms}
    assert got == {"李大": "link", "王责任": "code"} and r.acked_ms is None


def test_operators_edit_templates_in_a_sandbox(db: Database, world: W, client: TestClient) -> None:
    op = login(client, "county_op")
    bad = client.put(
        "/api/dissemination/templates/site.resident", headers=op, json={"body": "{{ name.__class__.__mro__ }}"}
    )
    assert bad.status_code == 422 and "unsafe" in bad.json()["detail"] and "模板" in bad.json()["detail_zh"]
    assert (
        client.put(
            "/api/dissemination/templates/site.resident", headers=op, json={"body": "{{ nosuchname }}"}
        ).status_code
        == 422
    )
    assert client.put("/api/dissemination/templates/x", headers=op, json={"body": "a"}).status_code == 422
    assert (
        client.put(
            "/api/dissemination/templates/site.resident", headers=login(client, "viewer"), json={"body": "a"}
        ).status_code
        == 403
    )
    r = client.put(
        "/api/dissemination/templates/site.resident.red",
        headers=op,
        json={"body": "【{{ sender }}】{{ site_name }}红色警报，马上去{{ shelter }}！回复{{ code }}"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["sample_segments"] == 1
    _red_alert(db, world)
    with db.read() as s:
        body = (
            s.scalars(
                select(OutboxMessage).where(OutboxMessage.address == "13900000010", OutboxMessage.channel == "sms")
            )
            .one()
            .body
        )
        code = s.scalars(select(IssueRecipient).where(IssueRecipient.name == "李大")).one().code
    assert body == f"【示范县自然资源局】上村滑坡（HP001）红色警报，马上去上村小学避险点！回复{code}"
    listed = client.get("/api/dissemination/templates", headers=op).json()
    assert [o["key"] for o in listed["overrides"]] == ["site.resident.red"] and "site.resident" in listed["defaults"]
    # the zero-report reminder (issue 7) has its own names: a warning's names are refused there
    reminder = "/api/dissemination/templates/zero_report.official.short"
    assert client.put(reminder, headers=op, json={"body": "{{ site_name }}"}).status_code == 422
    r = client.put(reminder, headers=op, json={"body": "【{{ sender }}】{{ township }}请于{{ deadline }}前报零报告"})
    assert r.status_code == 200, r.text
    assert r.json()["sample"] == "【<sender>】<township>请于<deadline>前报零报告"


def test_transfers_through_the_api_and_cap_and_feed(db: Database, world: W, client: TestClient) -> None:
    op, monitor = login(client, "county_op"), login(client, "town_monitor")
    area = shapely.box(118.99, 25.99, 119.07, 26.03)
    content = wf.VersionContent(T0, T0 + 24 * HOUR, areas={4: area}, areas_km2={4: 70.0}, message="特大暴雨")
    operator = User(username="county_op", role="operator", unit_code=COUNTY)
    weather = User(username="weather", role="weather", unit_code=COUNTY)
    with db.write("operator") as s:
        p = wf.create(s, operator, COUNTY, "示范县地质灾害气象风险红色预警", content, T0)
        v = p.versions[0]
        wf.submit(v, T0 + 1)
        wf.sign(s, v, operator, "natural_resources", "approve", None, T0 + 2)
        wf.sign(s, v, weather, "weather", "approve", None, T0 + 3)
        wf.issue(s, v, operator, T0 + 4)
    tasks = client.get("/api/response/tasks", params={"kind": "transfer"}, headers=monitor).json()["items"]
    (order,) = tasks
    detail = client.get(f"/api/response/tasks/{order['id']}", headers=monitor).json()
    assert all("*" in h["head"] for h in detail["plan"]["households"])  # monitors see no names
    for h in detail["plan"]["households"]:
        r = client.post(
            f"/api/response/tasks/{order['id']}/transfers",
            headers=monitor,
            json={"household_id": h["household_id"], "people": h["people"]},
        )
        assert r.status_code == 201, r.text
    assert r.json()["task_status"] == "done"
    occ = client.get("/api/response/shelters", headers=monitor).json()["items"]
    assert occ == [
        {
            "id": world.shelter,
            "code": "SH1",
            "name": "上村小学避险点",
            "capacity": 200,
            "occupancy": 6,
            "unit_code": VILLAGE,
        }
    ]
    refused = client.post(f"/api/response/tasks/{order['id']}/return", headers=monitor)
    assert refused.status_code == 409 and "不得返回" in refused.json()["detail_zh"]
    (warning,) = client.get("/api/dissemination/warnings", headers=op).json()["items"]
    cap = client.get(f"/api/dissemination/warnings/{warning['id']}/cap", headers=op)
    assert cap.headers["content-type"].startswith("application/cap+xml") and CapSchema().errors(cap.content) == []
    feed = etree.fromstring(client.get("/api/dissemination/feed.atom", headers=op).content)
    links = feed.findall("{http://www.w3.org/2005/Atom}entry/{http://www.w3.org/2005/Atom}link")
    assert [x.get("href", "").endswith(f"/warnings/{warning['id']}/cap") for x in links] == [True]
    tl = client.get(f"/api/dissemination/warnings/{warning['id']}/timeline", headers=op).json()
    (town,) = tl["townships"]
    assert town["township"] == TOWN and town["transfer_complete_ms"] is not None and town["transfer_orders"] == 1
