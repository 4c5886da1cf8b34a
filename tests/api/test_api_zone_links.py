"""A risk zone's declared site links (风险区关联隐患点) and the zones of a site, as the site page edits them."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from geowarn.audit.models import AuditEntry
from geowarn.db import Database
from geowarn.inventory.models import RiskZoneSite
from tests.api.apiworld import TOWN_A, World, login

FAR = {
    "type": "Polygon",
    "coordinates": [[[110.0, 20.0], [110.01, 20.0], [110.01, 20.01], [110.0, 20.01], [110.0, 20.0]]],
}


def test_links_are_replaced_audited_and_list_the_zones_of_a_site(
    client: TestClient, world: World, db: Database
) -> None:
    h = login(client, "alpha_operator")
    site = world.a.site
    zone = world.a.zone
    assert client.get(f"/api/risk-zones/{zone}/site-links", headers=h).json() == {"zone_id": zone, "site_ids": [site]}
    assert [z["id"] for z in client.get("/api/risk-zones", headers=h, params={"site_id": site}).json()["items"]] == [
        zone
    ]

    # A zone far away, linked to the site by declaration only: it becomes one of the site's zones.
    far = client.post(
        "/api/risk-zones",
        headers=h,
        json={"code": "FAR1", "name": "远区", "grade": "low", "geometry": FAR, "unit_code": TOWN_A},
    ).json()["id"]
    assert client.get("/api/risk-zones", headers=h, params={"site_id": site}).json()["total"] == 1
    r = client.put(f"/api/risk-zones/{far}/site-links", headers=h, json={"site_ids": [site, site]})
    assert r.status_code == 200, r.text
    assert r.json()["site_ids"] == [site]
    zones = client.get("/api/risk-zones", headers=h, params={"site_id": site}).json()["items"]
    assert sorted(z["id"] for z in zones) == sorted([zone, far])

    # Unlinked again: gone from the site's zones; both changes are in the audit log, on the zone's unit.
    assert client.put(f"/api/risk-zones/{far}/site-links", headers=h, json={"site_ids": []}).json()["site_ids"] == []
    assert client.get("/api/risk-zones", headers=h, params={"site_id": site}).json()["total"] == 1
    with db.read() as s:
        entries = list(
            s.scalars(select(AuditEntry).where(AuditEntry.entity == "risk_zone", AuditEntry.entity_id == str(far)))
        )
        assert [e.changes.get("site_ids") for e in entries if "site_ids" in e.changes] == [[[], [site]], [[site], []]]
        assert {e.actor for e in entries} == {"alpha_operator"} and all(e.unit_code == TOWN_A for e in entries)
        assert s.scalar(select(RiskZoneSite).where(RiskZoneSite.zone_id == far)) is None

    # Unchanged links write no entry; an unknown site is refused whole; a viewer may not change links.
    client.put(f"/api/risk-zones/{far}/site-links", headers=h, json={"site_ids": []})
    bad = client.put(f"/api/risk-zones/{far}/site-links", headers=h, json={"site_ids": [site, 999_999]})
    assert bad.status_code == 422 and "999999" in bad.json()["detail_zh"]
    viewer = login(client, "alpha_viewer")
    assert client.put(f"/api/risk-zones/{far}/site-links", headers=viewer, json={"site_ids": [site]}).status_code == 403
    with db.read() as s:
        n = sum(
            "site_ids" in e.changes
            for e in s.scalars(
                select(AuditEntry).where(AuditEntry.entity == "risk_zone", AuditEntry.entity_id == str(far))
            )
        )
    assert n == 2
