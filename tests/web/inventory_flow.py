"""台账编辑 on a site page, in the browser: run inside ``test_season_in_the_browser`` (its server and pages).

A county officer adds a threatened household to a demo site — first with a size the API refuses,
whose reason appears in Chinese beside the field — edits it and sees the change after a reload;
a role without the personal-data permission gets no phone in the form; the household leaves the
site (it stays in the register); a risk zone's grade is changed; the danger zone is redrawn by
clicking the map, after a pasted self-crossing polygon is refused with the API's reason shown.
"""

from __future__ import annotations

from typing import Any

import orjson
import shapely
from sqlalchemy import select

from geowarn.audit.models import AuditEntry
from geowarn.db import Database
from geowarn.inventory.models import HazardSite, Household, Resident, RiskZone, RiskZoneSite
from tests.web.conftest import LiveServer

CODE = "UI-H1"
BOWTIE = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}


def zoned_site(db: Database) -> tuple[int, int, str]:
    """A demo site linked to a risk zone: (site id, zone id, zone grade)."""
    with db.read() as s:
        site_id, zone_id, grade = s.execute(
            select(RiskZoneSite.site_id, RiskZone.id, RiskZone.grade)
            .join(RiskZone, RiskZone.id == RiskZoneSite.zone_id)
            .order_by(RiskZoneSite.site_id, RiskZone.id)
            .limit(1)
        ).one()
    return site_id, zone_id, grade


def edit_inventory(page: Any, server: LiveServer, db: Database) -> None:
    site_id, zone_id, grade = zoned_site(db)
    page.goto(server.url + f"/#/site/{site_id}")
    page.wait_for_selector("#households-card #household-add")
    row = f'#households tr[data-code="{CODE}"]'

    # Add: a size of 0 is refused by the API and the reason is shown beside the field.
    page.click("#household-add")
    page.fill(".dialog input[name=code]", CODE)
    page.fill(".dialog input[name=head_name]", "林测试")
    page.fill(".dialog input[name=phone]", "13800001234")
    page.fill(".dialog input[name=size]", "0")
    page.select_option(".dialog select[name=shelter_id]", index=1)
    page.click(".dialog .add-resident")
    page.fill('.dialog input[name="r0.name"]', "林小明")
    page.fill('.dialog input[name="r0.relation"]', "子")
    page.click(".dialog button.ok")
    page.wait_for_selector('.dialog .field-error[data-for="size"]')
    assert "不能小于 1" in page.inner_text('.dialog .field-error[data-for="size"]')
    page.fill(".dialog input[name=size]", "4")
    page.click(".dialog button.ok")
    page.wait_for_selector(row)
    assert page.locator(".dialog").count() == 0
    with db.read() as s:
        h = s.scalars(select(Household).where(Household.code == CODE)).one()
        assert (h.site_id, h.size, h.phone, h.head_name) == (site_id, 4, "13800001234", "林测试")
        assert h.shelter_id is not None
        assert [r.name for r in s.scalars(select(Resident).where(Resident.household_id == h.id))] == ["林小明"]
        made = s.scalars(select(AuditEntry).where(AuditEntry.entity == "household", AuditEntry.action == "create"))
        assert [e.actor for e in made if e.changes.get("code") == CODE] == ["admin"]
    household_id = h.id

    # Edit, then reload: the change is there.
    page.click(f"{row} .edit-household")
    page.fill(".dialog input[name=phone]", "13900005678")
    page.fill(".dialog input[name=size]", "5")
    page.click(".dialog button.ok")
    page.wait_for_selector(f"{row} >> text=13900005678")
    page.reload()
    page.wait_for_selector(row)
    cells = page.locator(f"{row} td").all_inner_texts()
    assert cells[2] == "13900005678" and cells[3] == "5"

    # A role without personal_data (as /api/auth/me would say it) gets no name or phone in the form.
    def no_personal_data(route: Any) -> None:
        me = route.fetch().json()
        me["permissions"] = [p for p in me["permissions"] if p != "personal_data"]
        route.fulfill(json=me)

    page.route("**/api/auth/me", no_personal_data)
    page.reload()
    page.wait_for_selector(row)
    page.click(f"{row} .edit-household")
    for name in ("head_name", "phone", "id_number", "r0.name"):
        field = page.locator(f'.dialog input[name="{name}"]')
        assert field.input_value() == "" and "脱敏" in (field.get_attribute("placeholder") or ""), name
    page.fill(".dialog input[name=address]", "后山组 3 号")
    page.click(".dialog button.ok")  # the masked fields left empty are not sent
    page.wait_for_selector(".dialog", state="detached")
    page.unroute("**/api/auth/me")
    with db.read() as s:
        h = s.get_one(Household, household_id)
        assert (h.address, h.phone, h.head_name) == ("后山组 3 号", "13900005678", "林测试")
        assert s.scalars(select(Resident.name).where(Resident.household_id == h.id)).one() == "林小明"
    page.reload()
    page.wait_for_selector(row)

    # Leave the site: gone from the page, kept in the register.
    page.click(f"{row} .leave-household")
    page.click(".dialog button.ok")
    page.wait_for_selector(row, state="detached")
    with db.read() as s:
        assert s.get_one(Household, household_id).site_id is None

    # A risk zone's grade.
    new_grade = "medium" if grade == "high" else "high"
    page.click(f'#site-zones tr[data-zone="{zone_id}"] .edit-zone')
    page.select_option(".dialog select[name=grade]", new_grade)
    page.click(".dialog button.ok")
    page.wait_for_selector(f'#site-zones tr[data-zone="{zone_id}"][data-grade="{new_grade}"]')
    with db.read() as s:
        assert s.get_one(RiskZone, zone_id).grade == new_grade
        assert s.scalar(select(RiskZoneSite).where(RiskZoneSite.zone_id == zone_id, RiskZoneSite.site_id == site_id))

    # The danger zone: a pasted bow-tie is refused with the API's reason; three clicks draw a triangle.
    page.click("#dz-edit")
    page.click("#dz-paste")
    page.fill("#dz-geojson", orjson.dumps(BOWTIE).decode())
    page.click("#dz-save")
    page.wait_for_function("() => document.querySelector('#dz-error').textContent.includes('GeoJSON')")
    assert "自相交" in page.inner_text("#dz-error") or "Self-intersection" in page.inner_text("#dz-error")
    page.fill("#dz-geojson", "{")
    page.click("#dz-save")
    assert "不是有效的 JSON" in page.inner_text("#dz-error")
    page.click("#dz-paste")  # hide the text: the clicked vertices are saved
    page.click("#dz-clear")
    box = page.locator("#site-map").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    for dx, dy in ((-70, -50), (70, -50)):
        page.mouse.click(cx + dx, cy + dy)
    page.click("#dz-save")
    assert "至少需要 3 个顶点" in page.inner_text("#dz-error")
    page.mouse.click(cx, cy + 60)
    assert page.inner_text("#dz-count") == "3 个顶点"
    page.click("#dz-save")
    page.wait_for_selector("#dz-edit")
    with db.read() as s:
        zone = s.scalar(select(HazardSite.danger_zone_geom).where(HazardSite.id == site_id))
    assert zone is not None and len(shapely.get_coordinates(zone)) == 4 and zone.is_valid
