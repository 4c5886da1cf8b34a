"""The list routes the map reads on every load answer exactly as before they read plain rows.

``/api/alerts``, ``/api/shelters`` and ``/api/products`` now select columns and write their JSON with
orjson; ``/api/monitoring/latest`` already did. Each is compared, for every demo role and a spread of
filters and pages, with a reference kept here: the implementation they replaced (ORM objects, and for
shelters the pydantic ``Page[ShelterPublic]`` the route used to return), run on the same database.
The bodies must match in keys, key order, values, scoping, pagination and totals.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from geowarn.api import create_app
from geowarn.api.routes.monitoring_data import iso_column
from geowarn.api.schemas.common import Page
from geowarn.api.schemas.monitoring import iso_ms
from geowarn.api.schemas.register import ShelterPublic
from geowarn.api.scoping import page, scope_filter
from geowarn.auth.models import User
from geowarn.auth.scope import unit_filter
from geowarn.config import Settings
from geowarn.db import Database
from geowarn.demo import DemoSummary
from geowarn.inventory.models import HazardSite, Shelter
from geowarn.monitoring.models import Device, Sensor, SensorLatest
from geowarn.warning import products as wf
from geowarn.warning.levels import Level
from geowarn.warning.models import Alert, open_key
from geowarn.warning.product_models import RegionalProduct
from tests.conftest import BACKENDS, DEMO_2021_NETWORK, Datasets, demo_network_2021

CHENGXI = "350922002"
T0 = 1_780_000_000_000  # 2026-05-28, whole seconds
ROLES = ("admin", "operator", "viewer", "chengxi", "weather", "monitor")


LISTS = "demo county and network, seed 2021, with alerts, products and latest readings"


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, datasets: Datasets) -> Iterator[Database]:
    """The demo county and its network, with alerts, products and latest readings of every shape:
    built once per backend (``_lists``), and each test gets its own copy."""
    demo_network_2021(datasets, request.param)
    datasets.dataset(request.param, LISTS, _lists, on=DEMO_2021_NETWORK)
    with datasets.copy(request.param, LISTS) as database:
        yield database


@pytest.fixture
def demo(db: Database, datasets: Datasets) -> DemoSummary:
    summary, _ = demo_network_2021(datasets, db.backend)
    assert isinstance(summary, DemoSummary)
    return summary


def _lists(db: Database) -> None:
    """Alerts, products and latest readings of every shape, on the demo county and its network."""
    with db.write("test") as s:
        monitor_unit = s.scalar(select(User.unit_code).where(User.username == "monitor"))
        assert monitor_unit is not None
        sites = _sites(s, [monitor_unit, CHENGXI, "350922001", "350922100"])
        devices = list(s.execute(select(Device.id, Device.station_id).order_by(Device.id).limit(3)).all())
        for k, site in enumerate(sites):
            _alerts_of(s, k, site)
        for k, (device_id, _) in enumerate(devices):
            unit = s.scalar(select(Sensor.unit_code).where(Sensor.device_id == device_id).limit(1)) or CHENGXI
            s.add(Alert(kind="device_offline", device_id=device_id, rule_id="offline", rule_name=None, unit_code=unit,
                        status="open" if k else "closed", level=1, max_level=1, opened_ms=T0 + 5_000 * k,
                        updated_ms=T0 + 5_000 * k, closed_ms=None if k else T0 + 9_999, reason={},
                        open_key=open_key("device_offline", "offline", None, device_id) if k else None))  # fmt: skip
        plan = [("350922", "issued", 3), ("350922", "lifted", 0), (CHENGXI, "draft", 0), (monitor_unit, "review", 2),
                ("350922", "withdrawn", 1)]  # fmt: skip
        for k, (unit, status, level) in enumerate(plan):
            s.add(RegionalProduct(
                code=f"{unit}-2026052{k}-01", unit_code=unit, title=f"测试预警{k}", status=status, level=level,
                current_version=1 if status in ("issued", "lifted") else 0, created_ms=T0 + 60_000 * (k % 3),
                created_by="operator" if k % 2 else None, issued_ms=T0 + 120_000 if status != "draft" else None,
                lifted_ms=T0 + 180_500 if status == "lifted" else None,
            ))  # fmt: skip
        sensors = list(s.scalars(select(Sensor.id).order_by(Sensor.id)))
        for k, sensor_id in enumerate(sensors[::3]):
            unit = s.scalar(select(Sensor.unit_code).where(Sensor.id == sensor_id))
            s.add(SensorLatest(sensor_id=sensor_id, unit_code=unit, t_ms=T0 + 1000 * k + (250 if k == 2 else 0),
                               value=None if k == 1 else 0.1 * k, flag=1 if k % 4 else 3))  # fmt: skip


def _sites(s: Session, units: list[str]) -> list[HazardSite]:
    """The first site of each unit (once each)."""
    out: dict[int, HazardSite] = {}
    for unit in units:
        site = s.scalar(select(HazardSite).where(HazardSite.unit_code.startswith(unit)).order_by(HazardSite.id))
        assert site is not None, unit
        out.setdefault(site.id, site)
    return list(out.values())


def _alerts_of(s: Session, k: int, site: HazardSite) -> None:
    """Four alerts of a site: open at each level, one closed, one acknowledged, one with a forecast."""
    for j in range(4):
        level = 1 + (k + j) % 4
        opened = T0 + 60_000 * j + (123 if j == 1 else 0)  # one time with milliseconds; ties across sites
        closed = j == 3
        s.add(
            Alert(
                kind="site_rule", site_id=site.id, rule_id=f"rule{j}", rule_name=f"规则{j}", unit_code=site.unit_code,
                status="closed" if closed else "open", level=level, max_level=min(4, level + j % 2),
                opened_ms=opened, updated_ms=opened + 30_000, closed_ms=opened + 90_000 if closed else None,
                reason={"rule": f"rule{j}", "terms": [{"value": 12.5 + k, "threshold": 10.0, "op": ">="}],
                        "说明": "测试", "n": None},
                forecast={"t_failure_ms": T0 + 86_400_000, "r2": 0.93} if j == 2 else None, flaps=j,
                acknowledged_ms=opened + 1_500 if j == 1 else None, acknowledged_by="operator" if j == 1 else None,
                ack_comment="已通知监测员" if j == 1 else None,
                open_key=None if closed else open_key("site_rule", f"rule{j}", site.id, None),
            )
        )  # fmt: skip


@pytest.fixture
def client(db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(db, settings=Settings(warning_engine=False))) as c:
        yield c


def _headers(client: TestClient, summary: DemoSummary) -> dict[str, dict[str, str]]:
    out = {}
    for u in summary.users:
        r = client.post("/api/auth/token", data={"username": u.username, "password": u.password})
        assert r.status_code == 200, r.text
        out[u.username] = {"Authorization": f"Bearer {r.json()['access_token']}"}
    return out


def _users(db: Database) -> dict[str, User]:
    with db.read() as s:
        return {u.username: u for u in s.scalars(select(User))}


def _same(got: Any, expected: Any, what: str) -> None:
    """Equal values with the keys of every object in the same order (JSON text without sorting)."""
    assert got == expected, what
    assert json.dumps(got, ensure_ascii=False) == json.dumps(expected, ensure_ascii=False), what


# --- the references: the implementations the routes replaced -------------------------------------

KIND_ZH = {"site_rule": "监测预警", "device_offline": "设备离线"}


def _old_alert_json(a: Alert, site: tuple[str, str] | None = None) -> dict[str, Any]:
    level = Level(a.level)
    return {
        "id": a.id, "kind": a.kind, "kind_zh": KIND_ZH.get(a.kind, a.kind), "status": a.status,
        "level": a.level, "colour": level.colour, "level_zh": level.site_label, "max_level": a.max_level,
        "site_id": a.site_id, "site_code": site[0] if site else None, "site_name": site[1] if site else None,
        "device_id": a.device_id, "rule_id": a.rule_id, "rule_name": a.rule_name, "unit_code": a.unit_code,
        "opened": iso_ms(a.opened_ms), "updated": iso_ms(a.updated_ms), "closed": iso_ms(a.closed_ms),
        "reason": a.reason, "forecast": a.forecast, "flaps": a.flaps, "acknowledged": iso_ms(a.acknowledged_ms),
        "acknowledged_by": a.acknowledged_by, "ack_comment": a.ack_comment,
    }  # fmt: skip


def _old_alerts(s: Session, user: User, p: dict[str, Any]) -> dict[str, Any]:
    limit, offset = p.get("limit", 100), p.get("offset", 0)
    stmt = (
        select(Alert, HazardSite.code, HazardSite.name)
        .outerjoin(HazardSite, HazardSite.id == Alert.site_id)
        .where(scope_filter(Alert, user), Alert.max_level >= p.get("min_level", 0))
        .order_by(Alert.opened_ms.desc(), Alert.id.desc())
    )
    if "status" in p:
        stmt = stmt.where(Alert.status == p["status"])
    if "kind" in p:
        stmt = stmt.where(Alert.kind == p["kind"])
    if "site_id" in p:
        stmt = stmt.where(Alert.site_id == p["site_id"])
    if "unit" in p:
        stmt = stmt.where(unit_filter(Alert.unit_code, p["unit"]))
    if "since" in p:
        stmt = stmt.where(Alert.opened_ms >= p["since"])
    if "until" in p:
        stmt = stmt.where(Alert.opened_ms < p["until"])
    total = s.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    counts = dict(
        s.execute(
            select(Alert.level, func.count())
            .where(scope_filter(Alert, user), Alert.status == "open")
            .group_by(Alert.level)
        ).all()
    )
    items = [_old_alert_json(a, (c, n) if c else None) for a, c, n in s.execute(stmt.limit(limit).offset(offset))]
    open_by_level = {Level(lv).colour: int(counts.get(lv, 0)) for lv in (1, 2, 3, 4)}
    return {"items": items, "total": int(total), "limit": limit, "offset": offset, "open_by_level": open_by_level}


def _old_products(s: Session, user: User, p: dict[str, Any]) -> dict[str, Any]:
    stmt = select(RegionalProduct).where(scope_filter(RegionalProduct, user))
    if "status" in p:
        stmt = stmt.where(RegionalProduct.status == p["status"])
    total = s.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = s.scalars(stmt.order_by(RegionalProduct.created_ms.desc(), RegionalProduct.id.desc())
                     .limit(p.get("limit", 100)).offset(p.get("offset", 0)))  # fmt: skip
    items = []
    for r in rows:
        level = Level(r.level)
        items.append({
            "id": r.id, "code": r.code, "unit_code": r.unit_code, "title": r.title, "status": r.status,
            "status_zh": wf.STATE_ZH.get(r.status, r.status), "level": r.level, "colour": level.colour,
            "level_zh": level.regional_label, "current_version": r.current_version, "created": iso_ms(r.created_ms),
            "created_by": r.created_by, "issued": iso_ms(r.issued_ms), "lifted": iso_ms(r.lifted_ms),
        })  # fmt: skip
    return {"items": items, "total": int(total)}


def _old_shelters(s: Session, user: User, p: dict[str, Any]) -> dict[str, Any]:
    limit, offset = p.get("limit", 100), p.get("offset", 0)
    stmt = select(Shelter).where(scope_filter(Shelter, user)).order_by(Shelter.code, Shelter.id)
    if "q" in p:
        q = p["q"]
        stmt = stmt.where(Shelter.name.icontains(q, autoescape=True) | Shelter.code.icontains(q, autoescape=True))
    rows, total = page(s, stmt, limit, offset)
    body = Page[ShelterPublic](
        items=[ShelterPublic.model_validate(r) for r in rows], total=total, limit=limit, offset=offset
    )
    return json.loads(body.model_dump_json())


def _reference_latest(s: Session, user: User) -> dict[str, Any]:
    rows = s.execute(
        select(Sensor, Device.station_id, SensorLatest)
        .join(Device, Device.id == Sensor.device_id)
        .outerjoin(SensorLatest, SensorLatest.sensor_id == Sensor.id)
        .where(scope_filter(Sensor, user), Sensor.active)
        .order_by(Sensor.id)
    ).all()
    seen = [latest.t_ms for _, _, latest in rows if latest is not None]
    times = iter(iso_column(np.array(seen, dtype=np.int64)))  # one format for the column, as the route
    items = [
        {"sensor_id": x.id, "code": x.code, "type": x.sensor_type, "channel": x.channel, "unit": x.unit,
         "station_id": station, "lon": x.lon, "lat": x.lat, "t": next(times) if latest else None,
         "value": latest.value if latest else None, "flag": latest.flag if latest else None}
        for x, station, latest in rows
    ]  # fmt: skip
    return {"count": len(items), "items": items}


# --- the comparisons ----------------------------------------------------------------------------


def _query(p: dict[str, Any]) -> str:
    return urlencode(p)


def test_alert_list_answers_as_the_orm_implementation(db: Database, demo: DemoSummary, client: TestClient) -> None:
    headers, users = _headers(client, demo), _users(db)
    with db.read() as s:
        site_id = s.scalar(select(Alert.site_id).where(Alert.site_id.is_not(None)).order_by(Alert.id))
    variants: list[dict[str, Any]] = [
        {"status": "open", "limit": 1000}, {"limit": 1000}, {}, {"status": "closed"}, {"min_level": 3},
        {"limit": 3, "offset": 2}, {"limit": 5, "offset": 500}, {"kind": "device_offline"}, {"site_id": site_id},
        {"unit": CHENGXI}, {"since": T0 + 60_000, "until": T0 + 180_000}, {"status": "open", "min_level": 4},
    ]  # fmt: skip
    seen_items = 0
    for username in ROLES:
        for p in variants:
            r = client.get(f"/api/alerts?{_query(p)}", headers=headers[username])
            assert r.status_code == 200, r.text
            with db.read() as s:
                expected = _old_alerts(s, users[username], p)
            _same(r.json(), expected, f"{username} {p}")
            seen_items += len(expected["items"])
    assert seen_items > 100  # the comparison saw real alerts, not only empty pages
    every = client.get("/api/alerts?limit=1000", headers=headers["admin"]).json()
    assert {a["status"] for a in every["items"]} == {"open", "closed"}
    assert any(a["ack_comment"] for a in every["items"]) and any(a["forecast"] for a in every["items"])
    assert any(a["site_id"] is None for a in every["items"])
    assert any(".123+08:00" in a["opened"] for a in every["items"])
    township = client.get("/api/alerts?limit=1000", headers=headers["chengxi"]).json()
    assert 0 < township["total"] < every["total"]
    assert all(a["unit_code"].startswith(CHENGXI) for a in township["items"])


def test_shelter_list_answers_as_the_pydantic_page(db: Database, demo: DemoSummary, client: TestClient) -> None:
    headers, users = _headers(client, demo), _users(db)
    with db.read() as s:
        name = s.scalar(select(Shelter.name).order_by(Shelter.id))
    assert name
    variants: list[dict[str, Any]] = [
        {"limit": 1000}, {}, {"limit": 5, "offset": 3}, {"limit": 5, "offset": 5000}, {"q": name[-2:]},
        {"q": "BX3509220"}, {"q": "%"}, {"q": "小", "limit": 2, "offset": 1},
    ]  # fmt: skip
    seen_items = 0
    for username in ROLES:
        for p in variants:
            r = client.get(f"/api/shelters?{_query(p)}", headers=headers[username])
            assert r.status_code == 200, r.text
            with db.read() as s:
                expected = _old_shelters(s, users[username], p)
            _same(r.json(), expected, f"{username} {p}")
            seen_items += len(expected["items"])
    assert seen_items > 100
    every = client.get("/api/shelters?limit=1000", headers=headers["admin"]).json()
    township = client.get("/api/shelters?limit=1000", headers=headers["chengxi"]).json()
    assert 0 < township["total"] < every["total"] == len(every["items"])
    # The list still documents its body: the OpenAPI document names the model it answers with.
    doc = client.get("/api/openapi.json").json()
    schema = doc["paths"]["/api/shelters"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert "ShelterPublic" in schema["$ref"]


def test_product_list_answers_as_the_orm_implementation(db: Database, demo: DemoSummary, client: TestClient) -> None:
    headers, users = _headers(client, demo), _users(db)
    variants: list[dict[str, Any]] = [
        {"limit": 50}, {}, {"status": "issued"}, {"status": "lifted"}, {"limit": 2, "offset": 1},
        {"limit": 2, "offset": 100},
    ]  # fmt: skip
    seen_items = 0
    for username in ROLES:
        for p in variants:
            r = client.get(f"/api/products?{_query(p)}", headers=headers[username])
            assert r.status_code == 200, r.text
            with db.read() as s:
                expected = _old_products(s, users[username], p)
            _same(r.json(), expected, f"{username} {p}")
            seen_items += len(expected["items"])
    assert seen_items > 20
    assert client.get("/api/products?limit=2&offset=100", headers=headers["admin"]).json()["total"] == 5


def test_latest_answers_as_the_orm_reading(db: Database, demo: DemoSummary, client: TestClient) -> None:
    headers, users = _headers(client, demo), _users(db)
    for username in ROLES:
        r = client.get("/api/monitoring/latest", headers=headers[username])
        assert r.status_code == 200, r.text
        with db.read() as s:
            expected = _reference_latest(s, users[username])
        _same(r.json(), expected, username)
    body = client.get("/api/monitoring/latest", headers=headers["admin"]).json()
    assert any(i["t"] for i in body["items"]) and any(i["t"] is None for i in body["items"])
