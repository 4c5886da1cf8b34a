"""Warning areas: polygons with holes, exclusive and nested readings, exact areas."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from pyproj import CRS, Geod

from geowarn.regional import areas
from geowarn.regional.grid import Grid

CELL = 0.1
# a target: blue ring, yellow ring, orange centre
TARGET = np.array([[1, 1, 1, 1, 1], [1, 2, 2, 2, 1], [1, 2, 3, 2, 1], [1, 2, 2, 2, 1], [1, 1, 1, 1, 1]], np.uint8)


def like(shape: tuple[int, int], crs: int = 4490) -> Grid:
    return Grid.regular(118.0, 27.0, CELL, np.zeros(shape), crs=crs)


def test_exclusive_polygons_have_their_holes() -> None:
    polys = areas.dissolve(TARGET, like((5, 5)))
    assert sorted(polys) == [1, 2, 3]
    (blue,) = polys[1].geoms
    (yellow,) = polys[2].geoms
    (orange,) = polys[3].geoms
    assert len(blue.interiors) == 1 and len(yellow.interiors) == 1 and len(orange.interiors) == 0
    assert blue.area == pytest.approx(16 * CELL**2) and yellow.area == pytest.approx(8 * CELL**2)
    assert orange.equals(shapely.box(118.2, 26.7, 118.3, 26.8))
    assert shapely.Polygon(blue.interiors[0]).equals(shapely.box(118.1, 26.6, 118.4, 26.9))
    # the levels tile the grid without overlap
    assert shapely.union_all([polys[1], polys[2], polys[3]]).equals(shapely.box(118.0, 26.5, 118.5, 27.0))
    assert shapely.intersection(polys[1], polys[2]).area == pytest.approx(0.0)


def test_at_least_polygons_are_nested_unions() -> None:
    grid = like((5, 5))
    exclusive = areas.dissolve(TARGET, grid)
    nested = areas.dissolve_at_least(TARGET, grid)
    assert nested[1].equals(shapely.box(118.0, 26.5, 118.5, 27.0)) and len(nested[1].geoms[0].interiors) == 0
    assert nested[2].equals(shapely.box(118.1, 26.6, 118.4, 26.9))
    assert nested[3].equals(exclusive[3]) and 4 not in nested
    for lv in (1, 2, 3):
        assert nested[lv].equals(shapely.union_all([exclusive[x] for x in exclusive if x >= lv]))


def test_diagonal_cells_are_separate_polygons_and_islands_are_kept() -> None:
    levels = np.array([[2, 0, 0], [0, 2, 0], [0, 0, 4]], np.uint8)
    polys = areas.dissolve(levels, like((3, 3)))
    assert len(polys[2].geoms) == 2 and len(polys[4].geoms) == 1
    island = np.zeros((5, 5), np.uint8)
    island[1:4, 1:4] = 1
    island[2, 2] = 0  # a hole with an island of red in it
    island[0, 0] = 4
    polys = areas.dissolve(island, like((5, 5)))
    assert len(polys[1].geoms[0].interiors) == 1 and polys[4].area == pytest.approx(CELL**2)


def test_areas_in_km2_are_exact_on_the_ellipsoid() -> None:
    grid = like((5, 5))
    km2 = areas.areas_km2(TARGET, grid)
    geod = CRS.from_epsg(4490).get_geod()
    assert isinstance(geod, Geod)
    polys = areas.dissolve(TARGET, grid)
    for lv in (1, 2, 3):
        dense = shapely.segmentize(polys[lv], 0.005)  # short geodesics follow the parallels
        geodesic = sum(abs(geod.geometry_area_perimeter(p)[0]) for p in shapely.get_parts(dense)) / 1e6
        assert km2[lv] == pytest.approx(geodesic, rel=1e-6)
        assert areas.polygon_area_km2([polys[lv]], grid.crs)[0] == pytest.approx(km2[lv], rel=1e-9)
    assert km2[3] == pytest.approx(grid.row_cell_area_km2()[2])
    assert areas.at_least_km2(km2) == pytest.approx({1: sum(km2.values()), 2: km2[2] + km2[3], 3: km2[3]})
    result = areas.warning_areas(TARGET, grid)
    assert result.km2 == km2 and set(result.at_least) == {1, 2, 3} and result.at_least_km2[2] == km2[2] + km2[3]
    assert areas.warning_areas(TARGET, grid, at_least=False).at_least == {}
    assert areas.areas_km2(np.zeros((2, 2), np.uint8), like((2, 2))) == {}


def test_areas_on_a_projected_grid() -> None:
    gk = Grid.regular(39_450_000.0, 3_080_000.0, 1000.0, np.zeros((5, 5)), crs=4527)
    assert areas.areas_km2(TARGET, gk) == {1: 16.0, 2: 8.0, 3: 1.0}
    polys = areas.dissolve(TARGET, gk)
    assert areas.polygon_area_km2([polys[1], polys[2]], gk.crs).tolist() == [16.0, 8.0]
