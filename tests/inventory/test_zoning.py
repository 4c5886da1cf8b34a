"""Risk-zone assignment: boundaries, holes and overlaps, on both backends (and against PostGIS)."""

from __future__ import annotations

import pytest
import shapely
from shapely.geometry import MultiPolygon, Polygon
from sqlalchemy import select, text

from geowarn.db import Database
from geowarn.inventory.models import HazardSite, Household, RiskZone, RiskZoneSite
from geowarn.inventory.service import set_site_location
from geowarn.inventory.zoning import assign_households, assign_sites_to_risk_zones, refresh_risk_zone_counts

T1, T2 = "350922101", "350922102"
# Zone A: a square; C overlaps A's east part; B has a hole (its edge belongs to B: ST_Covers).
ZONES = {
    "A": (Polygon([(118.0, 26.0), (118.1, 26.0), (118.1, 26.1), (118.0, 26.1)]), "low", T1),
    "C": (Polygon([(118.05, 26.0), (118.15, 26.0), (118.15, 26.1), (118.05, 26.1)]), "high", T1),
    "B": (
        Polygon(
            [(118.2, 26.0), (118.3, 26.0), (118.3, 26.1), (118.2, 26.1)],
            holes=[[(118.24, 26.04), (118.26, 26.04), (118.26, 26.06), (118.24, 26.06)]],
        ),
        "medium",
        T2,
    ),
}
SITES = {
    "in_a": (118.02, 26.05, T1),
    "a_edge": (118.0, 26.05, T1),  # on A's west edge
    "a_corner": (118.0, 26.0, T1),  # on A's vertex
    "a_and_c": (118.07, 26.05, T1),
    "c_edge_in_a": (118.05, 26.02, T1),  # on C's west edge, inside A
    "in_hole": (118.25, 26.05, T2),
    "hole_edge": (118.24, 26.05, T2),  # on the hole's edge: still covered by B
    "in_b": (118.21, 26.01, T2),
    "outside": (118.5, 26.5, T1),
}
EXPECTED = {
    ("A", "in_a"),
    ("A", "a_edge"),
    ("A", "a_corner"),
    ("A", "a_and_c"),
    ("C", "a_and_c"),
    ("A", "c_edge_in_a"),
    ("C", "c_edge_in_a"),
    ("B", "hole_edge"),
    ("B", "in_b"),
}


def _fill(db: Database) -> tuple[dict[str, int], dict[str, int]]:
    zones, sites = {}, {}
    with db.write("tester") as s:
        for key, (poly, grade, unit) in ZONES.items():
            z = RiskZone(code=f"Z{key}", name=key, grade=grade, geom=MultiPolygon([poly]), unit_code=unit)
            s.add(z)
            s.flush()
            zones[key] = z.id
        for i, (key, (lon, lat, unit)) in enumerate(SITES.items()):
            site = HazardSite(code=f"S{i}", name=key, hazard_type="landslide", unit_code=unit + "201")
            set_site_location(site, lon, lat)
            s.add(site)
            s.flush()
            sites[key] = site.id
    return zones, sites


def _links(db: Database, zones: dict[str, int], sites: dict[str, int]) -> set[tuple[str, str]]:
    zname = {v: k for k, v in zones.items()}
    sname = {v: k for k, v in sites.items()}
    with db.read() as s:
        rows = s.execute(select(RiskZoneSite.zone_id, RiskZoneSite.site_id)).all()
    return {(zname[z], sname[i]) for z, i in rows}


def test_boundaries_holes_and_overlaps(db: Database) -> None:
    zones, sites = _fill(db)
    with db.write("tester") as s:
        n = assign_sites_to_risk_zones(s)
    assert n == len(EXPECTED)
    assert _links(db, zones, sites) == EXPECTED
    # Idempotent: a second run replaces, never duplicates.
    with db.write("tester") as s:
        assert assign_sites_to_risk_zones(s) == len(EXPECTED)
    assert _links(db, zones, sites) == EXPECTED
    if db.is_postgres:
        with db.read() as s:
            pg = s.execute(
                text("SELECT z.id, h.id FROM risk_zone z JOIN hazard_site h ON ST_Covers(z.geom, h.geom)")
            ).all()
        assert {(z, i) for z, i in pg} == {(zones[a], sites[b]) for a, b in EXPECTED}


def test_scope_only_touches_its_own_links(db: Database) -> None:
    zones, sites = _fill(db)
    with db.write("tester") as s:
        assign_sites_to_risk_zones(s)
    # Move a T2 site out of B's hole; recompute T1 only: the T2 links must stay as they were.
    with db.write("tester") as s:
        site = s.get(HazardSite, sites["in_hole"])
        assert site is not None
        set_site_location(site, 118.29, 26.09)
    with db.write("tester") as s:
        n1 = assign_sites_to_risk_zones(s, T1)
    assert n1 == sum(1 for z, _ in EXPECTED if z in "AC")
    assert _links(db, zones, sites) == EXPECTED
    with db.write("tester") as s:
        assign_sites_to_risk_zones(s, T2)
    assert _links(db, zones, sites) == EXPECTED | {("B", "in_hole")}


def test_empty_scope(db: Database) -> None:
    with db.write("tester") as s:
        assert assign_sites_to_risk_zones(s, "350922") == 0
        assert assign_households(s, "350922") == 0
        assert refresh_risk_zone_counts(s, "350922") == 0


@pytest.mark.parametrize("scope", [None, "350922"])
def test_households_take_the_highest_grade(db: Database, scope: str | None) -> None:
    zones, _ = _fill(db)
    spots = {"h_ac": (118.07, 26.05, T1, 3), "h_a": (118.02, 26.05, T1, 2), "h_hole": (118.25, 26.05, T2, 4)}
    ids = {}
    with db.write("tester") as s:
        for key, (lon, lat, unit, size) in spots.items():
            h = Household(
                code=key,
                head_name="陈某",
                size=size,
                lon=lon,
                lat=lat,
                geom=shapely.Point(lon, lat),
                unit_code=unit + "201",
            )
            s.add(h)
            s.flush()
            ids[key] = h.id
        assert assign_households(s, scope) == 2
        assert refresh_risk_zone_counts(s, scope) == 3
    with db.read() as s:
        zone_of = dict(s.execute(select(Household.id, Household.risk_zone_id)).all())
        counts = {z.code: (z.households, z.people) for z in s.scalars(select(RiskZone))}
    assert zone_of[ids["h_ac"]] == zones["C"]  # high beats low
    assert zone_of[ids["h_a"]] == zones["A"]
    assert zone_of[ids["h_hole"]] is None
    assert counts == {"ZA": (2, 5), "ZC": (1, 3), "ZB": (0, 0)}
