"""The adapter to the register: sites and risk zones of a unit in, a product version's content out
(both backends)."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import MultiPolygon

from geowarn.db import Database
from geowarn.inventory.models import HazardSite, RiskZone
from geowarn.inventory.service import set_site_location
from geowarn.regional import run_regional
from geowarn.regional.grid import Grid
from geowarn.regional.store import load_sites, load_zones, version_content

T1, T2 = "350922101", "350922102"


def _fill(db: Database) -> None:
    with db.write("tester") as s:
        for i, (lon, lat, town, people, status) in enumerate(
            [(118.05, 26.95, T1, 12, "registered"), (118.15, 26.85, T2, 30, "registered"),
             (118.05, 26.85, T1, 99, "written_off"), (120.0, 26.0, "350923101", 5, "registered")]
        ):  # fmt: skip
            site = HazardSite(code=f"S{i}", name=f"s{i}", hazard_type="landslide", unit_code=town + "201",
                              township_code=town, threatened_people=people, threatened_households=people // 3,
                              status=status)  # fmt: skip
            set_site_location(site, lon, lat)
            s.add(site)
        s.add(RiskZone(code="Z1", name="z1", grade="high", unit_code=T2 + "201", people=40, households=10,
                       geom=MultiPolygon([shapely.box(118.11, 26.81, 118.19, 26.89)])))  # fmt: skip
        s.add(RiskZone(code="Z2", name="z2", grade="low", unit_code="350922", people=7, households=2,
                       geom=MultiPolygon([shapely.box(118.01, 26.91, 118.09, 26.99)])))  # fmt: skip


def test_a_run_against_the_register(db: Database) -> None:
    _fill(db)
    with db.read() as s:
        sites, zones = load_sites(s, "350922"), load_zones(s, "350922")
    assert len(sites) == 2 and sites.people.tolist() == [12, 30]  # written off and other county left out
    assert sites.township.tolist() == [T1, T2] and zones.township is not None
    assert zones.township.tolist() == [T2, ""] and zones.people.tolist() == [40, 7]
    rain = Grid.regular(118.0, 27.0, 0.1, np.array([[120.0, 10.0], [10.0, 170.0]]))
    result = run_regional([rain], sites=sites, zones=zones, townships=[T1, T2])
    content = version_content(result, sites, zones, valid_from_ms=0, valid_to_ms=1, inputs={})
    assert content.level == 4 and sorted(content.areas) == [3, 4]
    summary = content.summary
    assert summary["site_ids"]["3"] == [int(sites.ids[0])] and summary["site_ids"]["4"] == [int(sites.ids[1])]
    assert summary["zone_ids"]["4"] == [int(zones.ids[0])] and summary["zone_ids"]["3"] == [int(zones.ids[1])]
    assert summary["levels"]["red"]["zone_people"] == 40 and summary["model"]["k"] == 0.8
    assert [t["max_level"] for t in summary["townships"]] == [3, 3, 4]  # "" (the county's zone), T1, T2
    assert content.areas_km2[4] == pytest.approx(result.areas_km2[4])


def test_areas_of_a_projected_run_are_stored_in_lon_lat() -> None:
    gk = Grid.regular(39_450_000.0, 3_080_000.0, 1000.0, np.array([[200.0, 0.0], [0.0, 0.0]]), crs=4527)
    result = run_regional([gk])
    content = version_content(result, valid_from_ms=0, valid_to_ms=1, inputs={})
    x = [39_450_000.0, 39_451_000.0, 39_451_000.0, 39_450_000.0]
    y = [3_080_000.0, 3_080_000.0, 3_079_000.0, 3_079_000.0]
    lon, lat = Transformer.from_crs(4527, 4326, always_xy=True).transform(x, y)
    corners = shapely.Polygon(zip(lon, lat, strict=True))
    assert shapely.hausdorff_distance(content.areas[4], corners) < 1e-9  # the cell's corners, in lon/lat
