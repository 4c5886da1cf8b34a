"""Quick and follow-up reports (灾险情速报/续报): versions kept, resend idempotent, new sites, summary."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from geowarn.db import Database
from geowarn.dissemination.models import WarningIssue
from geowarn.inventory.models import HazardSite, SiteStatusChange
from tests.api.apiworld import COUNTY, TOWN_A, TOWN_B, World, login
from tests.fieldwork.helpers import jpeg

URL = "/api/fieldwork/events"


def quick(**kw: Any) -> dict[str, Any]:
    return {
        "client_uuid": str(uuid.uuid4()),
        "kind": "disaster",
        "hazard_type": "landslide",
        "unit_code": TOWN_A + "001",
        "place": "ALPHA一村后山",
        "lon": 119.05,
        "lat": 26.06,
        "occurred_at": "2026-07-01T05:30:00+08:00",
        "injured": 1,
        "threatened_people": 12,
        "transferred_people": 8,
        "loss_wan": 3.5,
        "description": "后山滑塌约200方，冲毁猪圈一间",
    } | kw


def test_quick_report_then_follow_ups(db: Database, client: TestClient, world: World) -> None:
    h = login(client, "alpha_monitor")
    body = quick()
    r = client.post(URL, json=body, headers=h)
    assert r.status_code == 201, r.text
    ev = r.json()
    assert (ev["injured"], ev["transferred_people"], ev["loss_wan"], ev["versions_count"]) == (1, 8, 3.5, 1)
    assert client.post(URL, json=body, headers=h).json()["id"] == ev["id"]  # resent: the same event
    fu = {"client_uuid": str(uuid.uuid4()), "injured": 2, "transferred_people": 12, "loss_wan": 5, "dead": 0}
    r = client.post(f"{URL}/{ev['id']}/follow-ups", json=fu, headers=h)
    assert r.status_code == 201, r.text
    assert (r.json()["injured"], r.json()["transferred_people"], r.json()["loss_wan"]) == (2, 12, 5)
    assert r.json()["threatened_people"] == 12  # not sent: kept
    again = client.post(f"{URL}/{ev['id']}/follow-ups", json=fu, headers=h)
    assert again.status_code == 200 and again.json()["versions_count"] == 2
    versions = client.get(f"{URL}/{ev['id']}", headers=h).json()["versions"]
    assert [(v["number"], v["kind"], v["data"]["injured"]) for v in versions] == [(1, "quick", 1), (2, "follow_up", 2)]
    closing = {"client_uuid": str(uuid.uuid4()), "status": "closed"}
    assert client.post(f"{URL}/{ev['id']}/follow-ups", json=closing, headers=h).status_code == 201
    late = {"client_uuid": str(uuid.uuid4()), "injured": 3}
    assert client.post(f"{URL}/{ev['id']}/follow-ups", json=late, headers=h).status_code == 409


def test_events_are_scoped(client: TestClient, world: World) -> None:
    h = login(client, "alpha_monitor")
    assert client.post(URL, json=quick(unit_code=TOWN_B), headers=h).status_code == 403
    assert client.post(URL, json=quick(site_id=world.b.site), headers=h).status_code == 404
    ev = client.post(URL, json=quick(site_id=world.a.site), headers=h).json()
    b = login(client, "beta_monitor")
    assert client.get(f"{URL}/{ev['id']}", headers=b).status_code == 404
    fu = {"client_uuid": str(uuid.uuid4()), "injured": 9}
    assert client.post(f"{URL}/{ev['id']}/follow-ups", json=fu, headers=b).status_code == 404
    for bad in ({"loss_wan": -1}, {"injured": "many"}, {"occurred_at": "2999-01-01T00:00:00Z"}, {"hazard_type": "x"}):
        assert client.post(URL, json=quick(**bad), headers=h).status_code == 422, bad


def test_a_report_registers_a_new_site(db: Database, client: TestClient, world: World) -> None:
    ev = client.post(URL, json=quick(kind="danger"), headers=login(client, "alpha_monitor")).json()
    # A monitor reports; registering a site in the register takes an operator or administrator.
    body = {"code": "ALPHA-S9", "name": "ALPHA一村后山滑坡"}
    assert (
        client.post(f"{URL}/{ev['id']}/register-site", json=body, headers=login(client, "alpha_monitor")).status_code
        == 403
    )
    op = login(client, "alpha_operator")
    r = client.post(f"{URL}/{ev['id']}/register-site", json=body, headers=op)
    assert r.status_code == 201, r.text
    assert (
        client.post(f"{URL}/{ev['id']}/register-site", json=body | {"code": "ALPHA-S10"}, headers=op).status_code == 409
    )
    with db.read() as s:
        site = s.scalars(select(HazardSite).where(HazardSite.code == "ALPHA-S9")).one()
        assert (site.status, site.unit_code, site.threatened_people) == ("registered", TOWN_A + "001", 12)
        (change,) = s.scalars(select(SiteStatusChange).where(SiteStatusChange.site_id == site.id)).all()
        assert change.to_status == "registered" and str(ev["id"]) in change.reason
    assert client.get(f"/api/sites/{site.id}", headers=op).status_code == 200


def test_event_photos_and_county_summary(client: TestClient, world: World) -> None:
    a, b = login(client, "alpha_monitor"), login(client, "beta_monitor")
    ev = client.post(URL, json=quick(), headers=a).json()
    client.post(URL, json=quick(kind="danger", loss_wan=0, injured=0), headers=a)
    client.post(URL, json=quick(unit_code=TOWN_B, place="BETA村", hazard_type="rockfall", dead=1), headers=b)
    r = client.post(f"{URL}/{ev['id']}/photos", files=[("photos", ("a.jpg", jpeg(119.05, 26.06), "image/jpeg"))],
                    headers=a)  # fmt: skip
    assert r.status_code == 201 and r.json()[0]["far_from_site"] is False
    county = login(client, "county_admin")
    s = client.get(f"{URL}/summary", params={"start": "2026-07-01", "end": "2026-07-01", "by": "county"},
                   headers=county).json()  # fmt: skip
    assert s["total"]["events"] == 3 and s["total"]["dead"] == 1 and s["total"]["disasters"] == 2
    assert [r["unit_code"] for r in s["rows"]] == [COUNTY]
    by_town = client.get(f"{URL}/summary", params={"start": "2026-07-01", "end": "2026-07-01"}, headers=a).json()
    assert [r["unit_code"] for r in by_town["rows"]] == [TOWN_A] and by_town["total"]["loss_wan"] == 3.5
    assert by_town["rows"][0]["by_type"] == {"landslide": 2}


def test_a_report_raises_an_alert_until_the_event_closes(db: Database, client: TestClient, world: World) -> None:
    monitor = login(client, "alpha_monitor")
    ev = client.post(URL, json=quick(kind="danger", site_id=world.a.site), headers=monitor).json()
    body = {"level": 3, "comment": "后缘裂缝加宽，组织转移"}
    assert client.post(f"{URL}/{ev['id']}/alert", json=body, headers=monitor).status_code == 403
    op = login(client, "alpha_operator")
    r = client.post(f"{URL}/{ev['id']}/alert", json=body, headers=op)
    assert r.status_code == 200, r.text
    alert_id = r.json()["alert_id"]
    alert = client.get(f"/api/alerts/{alert_id}", headers=op).json()
    assert (alert["kind"], alert["level"], alert["status"], alert["site_id"]) == (
        "field_report",
        3,
        "open",
        world.a.site,
    )
    assert client.post(f"{URL}/{ev['id']}/alert", json={"level": 4}, headers=op).json()["alert_id"] == alert_id
    close = {"client_uuid": str(uuid.uuid4()), "status": "closed"}
    assert client.post(f"{URL}/{ev['id']}/follow-ups", json=close, headers=op).status_code == 201
    alert = client.get(f"/api/alerts/{alert_id}", headers=op).json()
    assert (alert["status"], alert["max_level"]) == ("closed", 4)
    assert client.post(f"{URL}/{ev['id']}/alert", json=body, headers=op).status_code == 409
    # people are told of a field alert like an engine alert: initial, update (escalation), lift
    with db.read() as s:
        kinds = s.scalars(
            select(WarningIssue.kind).where(WarningIssue.subject == f"alert:{alert_id}").order_by(WarningIssue.version)
        ).all()
    assert kinds == ["initial", "update", "lift"]
