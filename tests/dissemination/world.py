"""A small county for the dissemination tests: one village with a landslide, its people, and officials.

County 350922 (示范县) → township 350922100 (甲镇) → village 350922100001 (上村). The site's danger
zone holds households H1 and H2 (H2 is linked only geometrically), H3 is in a risk zone, H4 is far
away. The monitor also lives in H1 (same phone as resident 李二), so the two are one recipient.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import shapely
from sqlalchemy.orm import Session

from geowarn.admin.models import AdminUnit
from geowarn.db import Database
from geowarn.inventory.models import HazardSite, Household, Organisation, Person, Resident, RiskZone, Shelter

COUNTY, TOWN, VILLAGE = "350922", "350922100", "350922100001"
T0 = 1_782_864_000_000  # 2026-07-01 08:00 China time
MIN = 60_000


@dataclass
class W:
    site: int = 0
    shelter: int = 0
    households: dict[str, int] = field(default_factory=dict)
    persons: dict[str, int] = field(default_factory=dict)
    zone: int = 0


def _person(
    s: Session, w: W, key: str, name: str, phone: str | None, roles: list[str], unit: str, org: int | None = None
) -> Person:
    p = Person(name=name, phone=phone, roles=roles, unit_code=unit, organisation_id=org, active=True)
    s.add(p)
    s.flush()
    w.persons[key] = p.id
    return p


def build(db: Database) -> W:
    w = W()
    with db.write(actor="seed") as s:
        s.add_all(
            [
                AdminUnit(code=COUNTY, name="示范县", level="county"),
                AdminUnit(code=TOWN, name="甲镇", level="township", parent_code=COUNTY),
                AdminUnit(code=VILLAGE, name="上村", level="village", parent_code=TOWN),
            ]
        )
        nr = Organisation(name="示范县自然资源局", department="natural_resources", unit_code=COUNTY)
        water = Organisation(name="示范县水利局", department="water", unit_code=COUNTY)
        s.add_all([nr, water])
        s.flush()
        resp = _person(s, w, "responsible", "王责任", "13900000001", ["responsible"], VILLAGE)
        mon = _person(s, w, "monitor", "李监测", "139-0000-0002", ["monitor"], VILLAGE)
        _person(s, w, "village", "赵村干", "13900000003", ["duty_official"], VILLAGE)
        _person(s, w, "township", "钱镇长", "13900000004", ["duty_official", "leader"], TOWN)
        _person(s, w, "county", "孙值班", "13900000005", ["duty_official"], COUNTY)
        _person(s, w, "nr_contact", "周联络", "13900000006", ["contact"], COUNTY, nr.id)
        _person(s, w, "water_contact", "吴水利", "13900000007", ["contact"], COUNTY, water.id)
        shelter = Shelter(
            code="SH1",
            name="上村小学避险点",
            lon=119.02,
            lat=26.02,
            geom=shapely.Point(119.02, 26.02),
            capacity=200,
            address="沿村道向东500米",
            unit_code=VILLAGE,
        )
        dz = shapely.MultiPolygon([shapely.box(119.0, 26.0, 119.01, 26.01)])
        site = HazardSite(
            code="HP001",
            name="上村滑坡",
            hazard_type="landslide",
            lon=119.005,
            lat=26.012,
            geom=shapely.Point(119.005, 26.012),
            danger_zone_geom=dz,
            unit_code=VILLAGE,
            township_code=TOWN,
            responsible_person_id=resp.id,
            monitor_id=mon.id,
            threatened_households=2,
            threatened_people=7,
            extra={},
        )
        zone = RiskZone(
            code="FX1",
            name="上村风险区",
            grade="high",
            unit_code=VILLAGE,
            geom=shapely.MultiPolygon([shapely.box(119.05, 26.0, 119.06, 26.01)]),
        )
        s.add_all([shelter, site, zone])
        s.flush()
        w.site, w.shelter, w.zone = site.id, shelter.id, zone.id
        homes: list[tuple[str, str, str | None, float, float, int | None, int | None, list[tuple[str, str | None]]]] = [
            (
                "H1",
                "李大",
                "13900000010",
                119.002,
                26.002,
                site.id,
                None,
                [("李二", "+86 139 0000 0002"), ("李三", None)],
            ),
            ("H2", "张大", None, 119.008, 26.008, None, None, [("张二", "13900000020")]),
            ("H3", "刘大", "13900000030", 119.055, 26.005, None, zone.id, []),
            ("H4", "陈大", "13900000040", 119.5, 26.5, None, None, []),
        ]
        for code, head, phone, lon, lat, site_id, zone_id, residents in homes:
            h = Household(
                code=code,
                head_name=head,
                phone=phone,
                size=1 + len(residents),
                lon=lon,
                lat=lat,
                geom=shapely.Point(lon, lat),
                unit_code=VILLAGE,
                site_id=site_id,
                risk_zone_id=zone_id,
                shelter_id=shelter.id,
            )
            s.add(h)
            s.flush()
            w.households[code] = h.id
            for name, rphone in residents:
                s.add(Resident(household_id=h.id, name=name, phone=rphone, unit_code=VILLAGE))
    return w


def seed_outbox(db: Database, n: int, *, channel: str = "sms", level: int = 4, t: int = T0) -> int:
    """An issue with ``n`` messages to distinct numbers (for dispatcher tests); returns the issue id."""
    from sqlalchemy import insert

    from geowarn.dissemination.models import OutboxMessage, WarningIssue

    with db.write(actor="seed") as s:
        issue = WarningIssue(
            subject=f"test:{t}",
            version=1,
            kind="initial",
            warning_type="regional",
            level=level,
            previous_level=0,
            unit_code=COUNTY,
            issued_ms=t,
            title="测试预警",
            cap_identifier=f"350922TEST{t}",
            context={},
        )
        s.add(issue)
        s.flush()
        rows = [
            {
                "issue_id": issue.id,
                "channel": channel,
                "address": f"139{i:08d}",
                "idem_key": f"{issue.id}:p{i}:{channel}",
                "level": level,
                "subject": "测试预警",
                "body": f"第{i}条测试消息",
                "segments": 1,
                "status": "pending",
                "attempts": 0,
                "next_attempt_ms": t,
                "created_ms": t,
                "unit_code": VILLAGE,
            }
            for i in range(n)
        ]
        s.execute(insert(OutboxMessage), rows)
        return issue.id
