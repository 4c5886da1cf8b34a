"""Spatial queries give the same answers on SQLite and PostGIS: both must equal a brute-force answer."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from geowarn.auth.scope import unit_filter
from geowarn.db import Database
from geowarn.inventory.models import HazardSite
from geowarn.spatial import assign_points_to_polygons, geodesic_distance_m, points_in_polygons
from geowarn.spatial import queries as q

RNG = np.random.default_rng(7)
N = 400
LON = 118.9 + RNG.normal(0, 0.15, N)
LAT = 26.6 + RNG.normal(0, 0.12, N)
# A few points exactly on a polygon edge and vertex, to pin down boundary semantics (covers).
LON[:3] = [118.8, 118.9, 118.8]
LAT[:3] = [26.55, 26.5, 26.5]
UNITS = np.where(LON < 118.9, "350922100", "350922101")

POLY = shapely.Polygon(
    [(118.8, 26.5), (119.0, 26.5), (119.05, 26.7), (118.8, 26.7)],
    holes=[[(118.9, 26.6), (118.95, 26.6), (118.95, 26.65)]],
)


def _fill(db: Database) -> None:
    with db.write("test") as s:
        for i in range(N):
            s.add(
                HazardSite(
                    code=f"S{i:04d}",
                    name=f"site {i}",
                    hazard_type="landslide",
                    lon=float(LON[i]),
                    lat=float(LAT[i]),
                    geom=shapely.Point(LON[i], LAT[i]),
                    unit_code=str(UNITS[i]),
                    township_code=str(UNITS[i]),
                )
            )


def _ids_where(mask: np.ndarray) -> list[int]:
    return [int(i) + 1 for i in np.flatnonzero(mask)]


def test_within_polygon_matches_brute_force(db: Database) -> None:
    _fill(db)
    expected = _ids_where(shapely.covers(POLY, shapely.points(LON, LAT)))
    assert 1 in expected and 2 in expected and 3 in expected  # boundary points count
    with db.read() as s:
        assert q.within_polygon(s, HazardSite, POLY) == expected
        scoped = q.within_polygon(s, HazardSite, POLY, where=unit_filter(HazardSite.unit_code, "350922101"))
    assert scoped == [i for i in expected if UNITS[i - 1] == "350922101"]


def test_bbox_matches_brute_force(db: Database) -> None:
    _fill(db)
    box = (118.85, 26.55, 118.95, 26.7)
    expected = _ids_where((box[0] <= LON) & (box[2] >= LON) & (box[1] <= LAT) & (box[3] >= LAT))
    with db.read() as s:
        assert q.in_bbox(s, HazardSite, box) == expected


@pytest.mark.parametrize("metres", [500.0, 5_000.0, 20_000.0])
def test_within_distance_matches_geodesic(db: Database, metres: float) -> None:
    _fill(db)
    d = geodesic_distance_m(LON, LAT, 118.9, 26.6)
    expected = sorted(((int(i) + 1, float(d[i])) for i in np.flatnonzero(d <= metres)), key=lambda p: (p[1], p[0]))
    with db.read() as s:
        got = q.within_distance(s, HazardSite, 118.9, 26.6, metres)
    assert [g[0] for g in got] == [e[0] for e in expected]
    assert np.allclose([g[1] for g in got], [e[1] for e in expected], atol=1e-3)


@pytest.mark.parametrize("k", [1, 5, 40])
def test_nearest_matches_geodesic(db: Database, k: int) -> None:
    _fill(db)
    d = geodesic_distance_m(LON, LAT, 119.02, 26.41)
    order = np.lexsort((np.arange(N), d))[:k]
    with db.read() as s:
        got = q.nearest(s, HazardSite, 119.02, 26.41, k)
    assert [g[0] for g in got] == [int(i) + 1 for i in order]


def test_containing_polygon(db: Database) -> None:
    from geowarn.admin.models import AdminUnit

    east = shapely.box(118.9, 26.5, 119.0, 26.7)
    with db.write("test") as s:
        s.add(AdminUnit(code="350922100", name="A镇", level="township", geom=shapely.MultiPolygon([POLY])))
        s.add(AdminUnit(code="350922101", name="B镇", level="township", geom=shapely.MultiPolygon([east])))
    with db.read() as s:
        assert q.containing(s, AdminUnit, 118.85, 26.6) == ["350922100"]
        assert q.containing(s, AdminUnit, 118.97, 26.55) == ["350922100", "350922101"]
        assert q.containing(s, AdminUnit, 118.92, 26.61) == ["350922101"]  # in A's hole, inside B
        assert q.containing(s, AdminUnit, 120.0, 26.6) == []


def test_points_in_polygons_core_boundary_and_holes() -> None:
    square = shapely.box(0, 0, 10, 10)
    holed = shapely.Polygon([(20, 0), (30, 0), (30, 10), (20, 10)], holes=[[(24, 4), (26, 4), (26, 6), (24, 6)]])
    xs = np.array([0.0, 5, 10, 25, 21, 40, 24])
    ys = np.array([5.0, 5, 10, 5, 1, 40, 4])
    pt, poly = points_in_polygons(xs, ys, [square, holed])
    assert list(zip(pt.tolist(), poly.tolist(), strict=True)) == [(0, 0), (1, 0), (2, 0), (4, 1), (6, 1)]


def test_assign_prefers_rank_then_index() -> None:
    a = shapely.box(0, 0, 10, 10)
    b = shapely.box(5, 5, 15, 15)
    c = shapely.box(5, 5, 15, 15)
    out = assign_points_to_polygons([7, 1, 12, 50], [7, 1, 12, 50], [a, b, c], rank=[2, 1, 1])
    assert out.tolist() == [1, 0, 1, -1]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.floats(-5, 15), st.floats(-5, 15)), min_size=1, max_size=50),
)
def test_assign_agrees_with_naive_loop(points: list[tuple[float, float]]) -> None:
    polys = [shapely.box(0, 0, 6, 6), shapely.box(4, 4, 10, 10), shapely.Point(5, 5).buffer(3)]
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    out = assign_points_to_polygons(xs, ys, polys)
    for i, (x, y) in enumerate(points):
        naive = next((j for j, poly in enumerate(polys) if poly.covers(shapely.Point(x, y))), -1)
        assert out[i] == naive
