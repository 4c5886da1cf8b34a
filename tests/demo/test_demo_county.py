"""The demo county: exact figures of seed 003, believable geography, households, shelters, stats."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
import shapely
from pyproj import Geod
from sqlalchemy import func, select

from geowarn.admin.models import AdminUnit
from geowarn.auth.models import User
from geowarn.auth.scope import unit_filter
from geowarn.db import Database
from geowarn.demo import DemoSummary
from geowarn.demo.geography import TOWNSHIP_SITES
from geowarn.demo.names import FAKE_PHONE_PREFIX, gb11643_check_digit
from geowarn.demo.register import danger_grade_of, scale_of
from geowarn.inventory.models import HazardSite, Household, Person, Resident, RiskZone, RiskZoneSite, Shelter
from geowarn.inventory.models import SiteStatusChange as Change
from geowarn.inventory.stats import compute_stats
from geowarn.spatial import queries as q
from tests.conftest import BACKENDS, DEMO, Datasets, demo_county

STEEP = "steep_cut_slope"


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, datasets: Datasets) -> Iterator[Database]:
    """``build_demo_county`` with its default seed, built once per backend; each test its own copy."""
    demo_county(datasets, request.param)
    with datasets.copy(request.param, DEMO) as database:
        yield database


@pytest.fixture
def summary(db: Database, datasets: Datasets) -> DemoSummary:
    """What that ``build_demo_county`` returned."""
    built = demo_county(datasets, db.backend)
    assert isinstance(built, DemoSummary)
    return built


def test_figures_and_stats(db: Database, summary: DemoSummary) -> None:
    assert summary.hazard_sites == 149 and summary.steep_slopes == 32
    assert summary.threatened_people == 4789 and summary.threatened_property_yuan == 72_365_000
    assert [u.username for u in summary.users] == ["admin", "operator", "viewer", "chengxi", "weather", "monitor"]
    with db.read() as s:
        sites = s.scalars(select(HazardSite).where(HazardSite.hazard_type != STEEP)).all()
        slopes = s.scalars(select(HazardSite).where(HazardSite.hazard_type == STEEP)).all()
        names = dict(s.execute(select(AdminUnit.code, AdminUnit.name)).all())
        assert Counter(names[x.township_code] for x in sites) == Counter(TOWNSHIP_SITES)
        assert Counter(x.hazard_type for x in sites) == {"landslide": 81, "rockfall": 66, "debris_flow": 2}
        assert len(slopes) == 32 and len({names[x.township_code] for x in slopes}) >= 8
        assert sum(x.threatened_people for x in sites) == 4789
        assert sum(x.threatened_property_yuan for x in sites) == 72_365_000
        assert len({x.code for x in sites + slopes}) == 181
        assert all(x.code.startswith("3509221") for x in sites) and all(x.code.startswith("3509229") for x in slopes)
        for x in sites + slopes:  # classes agree with the standard's thresholds
            assert x.scale == scale_of(x.hazard_type, x.volume_m3).value
            assert x.danger_grade == danger_grade_of(x.threatened_people, x.threatened_property_yuan).value
            assert x.responsible_person_id is not None and x.monitor_id is not None
        assert Counter(x.scale for x in sites).most_common(1)[0][0] == "small"
        assert 25 <= sum(x.monitoring_mode != "community" for x in sites) <= 35
        statuses = Counter(x.status for x in sites)
        assert statuses["registered"] > 130 and statuses["under_treatment"] >= 3 and statuses["treated"] >= 2
        # history: a registration row for every site, then one row per step
        for x in sites:
            steps = (
                s.execute(select(Change.to_status).where(Change.site_id == x.id).order_by(Change.id)).scalars().all()
            )
            assert steps[0] == "registered" and steps[-1] == x.status
        # townships and villages
        towns = s.scalars(select(AdminUnit).where(AdminUnit.level == "township")).all()
        assert sorted(t.name for t in towns) == sorted(TOWNSHIP_SITES)
        for t in towns:
            n = s.scalar(select(func.count()).select_from(AdminUnit).where(AdminUnit.parent_code == t.code))
            assert 3 <= (n or 0) <= 8
        assert {"350922", "350900", "350000"} <= set(names)
        # stats give exactly the seed's figures
        st = compute_stats(s, "350922")
        hs = st["hazard_sites"]
        assert (hs["sites"], hs["people"], hs["property_wan"]) == (149, 4789, "7236.5")
        assert {g["label"]: g["sites"] for g in hs["by_hazard_type"]} == {"滑坡": 81, "崩塌": 66, "泥石流": 2}
        assert {g["label"]: g["sites"] for g in hs["by_township"]} == TOWNSHIP_SITES
        assert st["steep_slopes"]["sites"] == 32 and st["combined"]["sites"] == 181
        assert st["steep_slopes"]["people"] == summary.slope_people
        west = compute_stats(s, "350922002")
        assert west["hazard_sites"]["sites"] == 25
        assert [g["label"] for g in west["combined"]["by_township"]] == ["城西街道"]
        # people: fake phones only, valid-but-synthetic ID numbers
        phones = s.scalars(select(Person.phone)).all() + s.scalars(select(Household.phone)).all()
        phones += [p for p in s.scalars(select(Resident.phone)).all() if p]
        assert phones and all(p.startswith(FAKE_PHONE_PREFIX) and len(p) == 11 for p in phones)
        ids = [i for i in s.scalars(select(Resident.id_number)).all() if i]
        assert ids and all(
            i[:6] == "350922" and i[10:17] == "0101000" and i[17] == gb11643_check_digit(i[:17]) for i in ids
        )
        users = {u.username: u for u in s.scalars(select(User))}
        assert users["chengxi"].unit_code == "350922002" and users["admin"].role == "administrator"
        monitor = s.get(Person, users["monitor"].person_id)
        assert monitor is not None and "monitor" in monitor.roles
        assert users["admin"].password_hash.startswith("$argon2id$")


def test_geography_households_and_shelters(db: Database) -> None:
    geod = Geod(ellps="WGS84")
    with db.read() as s:
        units = {u.code: u for u in s.scalars(select(AdminUnit))}
        county = units["350922"].geom
        area = abs(geod.geometry_area_perimeter(county)[0]) / 1e6
        assert 1_200 < area < 1_400
        towns = [u for u in units.values() if u.level == "township"]
        # townships partition the county: no overlaps, nothing missing
        assert abs(sum(t.geom.area for t in towns) - county.area) < 1e-9 * county.area + 1e-12
        assert shapely.union_all([t.geom for t in towns]).symmetric_difference(county).area < 1e-6 * county.area
        for t in towns:
            villages = [u for u in units.values() if u.parent_code == t.code]
            assert abs(sum(v.geom.area for v in villages) - t.geom.area) < 1e-6 * t.geom.area
        streets = [t.geom.area for t in towns if t.name.endswith("街道")]
        assert max(streets) < min(t.geom.area for t in towns if not t.name.endswith("街道"))
        # every site lies in its county, township and village (PostGIS ST_Covers on PostgreSQL)
        for x in s.scalars(select(HazardSite)):
            found = q.containing(s, AdminUnit, x.lon, x.lat)
            assert found == sorted(["350922", x.township_code, x.unit_code])
            assert x.unit_code.startswith(x.township_code)
        # households: inside their site's danger zone, sizes add up, residents match sizes
        dz = dict(s.execute(select(HazardSite.id, HazardSite.danger_zone_geom)).all())
        for h in s.scalars(select(Household)):
            assert dz[h.site_id].covers(shapely.Point(h.lon, h.lat))
        sums = s.execute(
            select(Household.site_id, func.count(), func.sum(Household.size)).group_by(Household.site_id)
        ).all()
        per_site = {i: (int(c), int(p)) for i, c, p in sums}
        for x in s.scalars(select(HazardSite)):
            assert per_site[x.id] == (x.threatened_households, x.threatened_people)
        members = dict(s.execute(select(Resident.household_id, func.count()).group_by(Resident.household_id)).all())
        assert all(members[h.id] == h.size for h in s.scalars(select(Household)))
        # shelters: 2–4 per township; each household goes to the nearest shelter of its township
        shelters = s.scalars(select(Shelter)).all()
        per_town = Counter(sh.unit_code[:9] for sh in shelters)
        assert set(per_town) == {t.code for t in towns} and all(2 <= n <= 4 for n in per_town.values())
        load: Counter[int] = Counter()
        for h in s.scalars(select(Household)):
            best = q.nearest(s, Shelter, h.lon, h.lat, k=1, where=unit_filter(Shelter.unit_code, h.unit_code[:9]))
            assert best[0][0] == h.shelter_id
            load[h.shelter_id] += h.size
        assert all(sh.capacity >= load[sh.id] for sh in shelters)
        # risk zones: graded, counts recomputed from the households inside, sites linked
        zones = s.scalars(select(RiskZone)).all()
        assert 40 <= len(zones) <= 60 and {z.grade for z in zones} == {"high", "medium", "low"}
        pts = [(shapely.Point(h.lon, h.lat), h.size) for h in s.scalars(select(Household))]
        for z in zones:
            inside = [n for p, n in pts if z.geom.covers(p)]
            assert (z.households, z.people) == (len(inside), sum(inside))
            assert county.covers(z.geom.representative_point())
        links = s.scalar(select(func.count()).select_from(RiskZoneSite)) or 0
        assert links >= len(zones)
