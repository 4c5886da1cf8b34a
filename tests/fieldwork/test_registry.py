"""Write-offs through the site lifecycle with county approval, annual targets, register hygiene lists."""

from __future__ import annotations

import csv
import datetime as dt
import io

import openpyxl
from fastapi.testclient import TestClient
from sqlalchemy import select

from geowarn.db import Database
from geowarn.fieldwork.domain import write_off_target
from geowarn.inventory.models import HazardSite, Household, SiteStatusChange
from tests.api.apiworld import TOWN_A, TOWN_B, World, login
from tests.fieldwork.helpers import patrol_form

TODAY = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date().isoformat()


def statuses(db: Database, site_id: int) -> list[tuple[str | None, str]]:
    with db.read() as s:
        rows = s.scalars(
            select(SiteStatusChange).where(SiteStatusChange.site_id == site_id).order_by(SiteStatusChange.id)
        )
        return [(c.from_status, c.to_status) for c in rows]


def test_write_off_goes_through_the_lifecycle_with_county_approval(
    db: Database, client: TestClient, world: World
) -> None:
    township, county = login(client, "alpha_operator"), login(client, "county_admin")
    # Registered → treatment is not finished: a treatment write-off is refused (the lifecycle says so).
    body = {"site_id": world.a.site, "basis": "treatment", "evidence": "竣工验收报告", "effective_on": TODAY}
    assert client.post("/api/fieldwork/write-offs", json=body, headers=township).status_code == 409
    # Relocation done: the application moves the site to relocated, then the county approves.
    body = {"site_id": world.a.site, "basis": "relocation", "evidence": "搬迁安置协议及拆除照片", "effective_on": TODAY}
    r = client.post("/api/fieldwork/write-offs", json=body, headers=township)
    assert r.status_code == 201, r.text
    wid = r.json()["id"]
    assert client.post("/api/fieldwork/write-offs", json=body, headers=township).status_code == 409  # one pending
    decision = {"approve": True, "effective_on": TODAY, "comment": "同意核销"}
    # A township may not approve its own write-off.
    assert client.post(f"/api/fieldwork/write-offs/{wid}/decision", json=decision, headers=township).status_code == 403
    r = client.post(f"/api/fieldwork/write-offs/{wid}/decision", json=decision, headers=county)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "approved" and r.json()["decided_by"] == "county_admin"
    assert statuses(db, world.a.site)[-2:] == [("registered", "relocated"), ("relocated", "written_off")]
    with db.read() as s:
        site = s.get(HazardSite, world.a.site)
        assert site is not None and site.status == "written_off"
    assert client.post(f"/api/fieldwork/write-offs/{wid}/decision", json=decision, headers=county).status_code == 409
    history = client.get(f"/api/sites/{world.a.site}/history", headers=county).json()
    assert any(a["action"] == "transition" for a in history["audit"])
    # Patrols of a written-off site are refused.
    r = client.post("/api/fieldwork/patrols", data=patrol_form(world.a.site), headers=login(client, "alpha_monitor"))
    assert r.status_code == 409


def test_rejection_keeps_the_site_and_needs_a_reason(db: Database, client: TestClient, world: World) -> None:
    township, county = login(client, "beta_operator"), login(client, "county_admin")
    client.post(f"/api/sites/{world.b.site}/status", headers=township,
                json={"to_status": "under_treatment", "reason": "开工治理", "effective_on": TODAY})  # fmt: skip
    body = {"site_id": world.b.site, "basis": "treatment", "evidence": "竣工验收报告", "effective_on": TODAY}
    wid = client.post("/api/fieldwork/write-offs", json=body, headers=township).json()["id"]
    assert statuses(db, world.b.site)[-1] == ("under_treatment", "treated")
    no = {"approve": False, "effective_on": TODAY}
    assert client.post(f"/api/fieldwork/write-offs/{wid}/decision", json=no, headers=county).status_code == 422
    r = client.post(f"/api/fieldwork/write-offs/{wid}/decision", json=no | {"comment": "验收资料不全"}, headers=county)
    assert r.json()["status"] == "rejected"
    with db.read() as s:
        site = s.get(HazardSite, world.b.site)
        assert site is not None and site.status == "treated"
    assert client.get(f"/api/fieldwork/write-offs/{wid}", headers=login(client, "alpha_operator")).status_code in (
        404,
        405,
    )
    listed = client.get("/api/fieldwork/write-offs", headers=login(client, "alpha_operator")).json()
    assert listed["total"] == 0


def test_targets_and_progress(db: Database, client: TestClient, world: World) -> None:
    assert write_off_target(149, 0.10) == 15 and write_off_target(10, 0.10) == 1 and write_off_target(0, 0.1) == 0
    county, township = login(client, "county_admin"), login(client, "alpha_operator")
    year = dt.date.fromisoformat(TODAY).year
    r = client.get("/api/fieldwork/write-off-progress", params={"year": year}, headers=county).json()
    a = next(t for t in r["townships"] if t["code"] == TOWN_A)
    assert (a["registered_at_start"], a["target"], a["target_set"], a["written_off"]) == (1, 1, False, 0)
    assert (
        client.put(
            f"/api/fieldwork/write-off-targets/{TOWN_A}/{year}", json={"target": 3}, headers=township
        ).status_code
        == 403
    )
    r = client.put(f"/api/fieldwork/write-off-targets/{TOWN_A}/{year}", json={"target": 3}, headers=county)
    assert r.status_code == 200, r.text
    body = {"site_id": world.a.site, "basis": "relocation", "evidence": "搬迁完成", "effective_on": TODAY}
    wid = client.post("/api/fieldwork/write-offs", json=body, headers=township).json()["id"]
    pending = client.get("/api/fieldwork/write-off-progress", params={"year": year}, headers=township).json()
    assert [(t["code"], t["target"], t["pending"]) for t in pending["townships"]] == [(TOWN_A, 3, 1)]
    client.post(
        f"/api/fieldwork/write-offs/{wid}/decision", json={"approve": True, "effective_on": TODAY}, headers=county
    )
    done = client.get("/api/fieldwork/write-off-progress", params={"year": year}, headers=county).json()
    a = next(t for t in done["townships"] if t["code"] == TOWN_A)
    assert (a["written_off"], a["pending"], a["percent"]) == (1, 0, 33.3)
    assert done["total"]["written_off"] == 1


def test_hygiene_lists_and_exports(db: Database, client: TestClient, world: World) -> None:
    with db.write(actor="seed") as s:
        site = s.get(HazardSite, world.a.site)
        assert site is not None
        site.responsible_person_id = None
        hh = s.get(Household, world.a.household)
        assert hh is not None
        hh.shelter_id = None
    h = login(client, "alpha_operator")
    r = client.get("/api/fieldwork/hygiene", headers=h)
    assert r.status_code == 200, r.text
    kinds = {(i["kind"], i["record_id"]) for i in r.json()["items"]}
    assert ("site_without_responsible", world.a.site) in kinds
    assert ("household_without_shelter", world.a.household) in kinds
    assert ("monitor_idle", world.a.person) in kinds and ("phone_unverified", world.a.person) in kinds
    assert all(i["township"] == TOWN_A for i in r.json()["items"]) and "BETA" not in r.text
    # A patrol and a phone check clear the monitor's entries.
    form = patrol_form(world.a.site, patrolled_at=dt.datetime.now(dt.UTC).isoformat())
    client.post("/api/fieldwork/patrols", data=form, headers=login(client, "alpha_monitor"))
    assert (
        client.post(
            f"/api/fieldwork/persons/{world.a.person}/phone-checks", json={"method": "call"}, headers=h
        ).status_code
        == 201
    )
    assert (
        client.post(
            f"/api/fieldwork/persons/{world.b.person}/phone-checks", json={"method": "call"}, headers=h
        ).status_code
        == 404
    )
    kinds = {i["kind"] for i in client.get("/api/fieldwork/hygiene", headers=h).json()["items"]}
    assert kinds == {"site_without_responsible", "household_without_shelter"}
    text = client.get("/api/fieldwork/hygiene", params={"format": "csv"}, headers=h).content.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][2] == "问题" and {r[2] for r in rows[1:]} == {"隐患点未落实防灾责任人", "受威胁户未落实避险场所"}
    x = client.get("/api/fieldwork/hygiene", params={"format": "xlsx"}, headers=h)
    ws = openpyxl.load_workbook(io.BytesIO(x.content), read_only=True).worksheets[0]
    assert len(list(ws.iter_rows(values_only=True))) == 3
    assert client.get("/api/fieldwork/hygiene", params={"unit": TOWN_B}, headers=h).status_code == 404
    county = client.get("/api/fieldwork/hygiene", headers=login(client, "county_admin")).json()
    assert {t["code"] for t in county["townships"]} == {TOWN_A, TOWN_B}
