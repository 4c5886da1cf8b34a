"""The Grid type: geometry, sampling, exact cell areas, alignment and resampling."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine
from pyproj import CRS, Geod

from geowarn.errors import GridRejected
from geowarn.regional.grid import Grid, require_aligned


def test_geometry_centres_and_sampling() -> None:
    g = Grid.regular(118.0, 27.0, 0.1, np.arange(12.0).reshape(3, 4))
    assert g.shape == (3, 4) and g.cell == (0.1, 0.1)
    assert g.bounds == pytest.approx((118.0, 26.7, 118.4, 27.0))
    xs, ys = g.centres()
    np.testing.assert_allclose(xs, [118.05, 118.15, 118.25, 118.35])
    np.testing.assert_allclose(ys, [26.95, 26.85, 26.75])
    # the cell under each point; outside is NaN; a point on an inner edge belongs to the cell east/south
    v = g.sample([118.05, 118.35, 118.2, 117.99, 118.41, 118.05], [26.95, 26.75, 26.9, 26.9, 26.9, 26.65])
    np.testing.assert_array_equal(v, [0.0, 11.0, 6.0, np.nan, np.nan, np.nan])
    r, c, inside = g.index(np.array([118.1000001, np.nan]), np.array([26.9999, 26.9]))
    assert r.tolist() == [0, 0] and c.tolist() == [1, 0] and inside.tolist() == [True, False]
    assert g.with_values(np.zeros((3, 4))).aligned(g)
    assert g.missing.sum() == 0 and g.with_values(np.full((3, 4), np.nan)).missing.all()


def test_bad_grids_are_refused() -> None:
    with pytest.raises(GridRejected, match="2-D"):
        Grid.regular(0, 0, 1, np.zeros(4))
    with pytest.raises(GridRejected, match="north-up"):
        Grid(np.zeros((2, 2)), Affine(1, 0, 0, 0, 1, 0))  # south-up must be flipped by the reader
    with pytest.raises(GridRejected, match="north-up"):
        Grid(np.zeros((2, 2)), Affine(1, 0.1, 0, 0, -1, 0))
    with pytest.raises(GridRejected, match="CRS"):
        Grid.regular(0, 0, 1, np.zeros((2, 2)), crs="EPSG:999999")
    assert Grid.regular(0, 0, 1, np.zeros((2, 2), np.int32)).values.dtype == np.float64
    assert Grid.regular(0, 0, 1, np.zeros((2, 2), np.float32)).values.dtype == np.float32


@pytest.mark.parametrize("epsg", [4326, 4490])
def test_geographic_cell_areas_are_exact_on_the_ellipsoid(epsg: int) -> None:
    g = Grid.regular(100.0, 50.0, (0.1, 0.2), np.zeros((300, 1)), crs=epsg)  # 50°N to 10°S
    geod = CRS.from_epsg(epsg).get_geod()
    assert isinstance(geod, Geod)
    for row in (0, 115, 195, 299):
        north = 50.0 - 0.2 * row
        south = north - 0.2
        area, _ = geod.polygon_area_perimeter([100, 100.1, 100.1, 100], [south, south, north, north])
        # geodesic edges vs parallels differ by < 1e-6 relative on a 0.1° × 0.2° cell
        assert g.row_cell_area_km2()[row] == pytest.approx(abs(area) / 1e6, rel=1e-6)


def test_projected_cell_areas() -> None:
    g = Grid.regular(39_400_000.0, 3_000_000.0, 1000.0, np.zeros((2, 3)), crs=4527)  # CGCS2000 GK zone 39
    np.testing.assert_allclose(g.row_cell_area_km2(), [1.0, 1.0])
    feet = Grid.regular(0.0, 0.0, 1000.0, np.zeros((1, 1)), crs=2227)  # California III, US survey feet
    assert feet.row_cell_area_km2()[0] == pytest.approx((1000 * 1200 / 3937) ** 2 / 1e6)


def test_alignment_is_checked_and_explained() -> None:
    a = Grid.regular(118.0, 27.0, 0.1, np.zeros((2, 2)), source="a.tif")
    require_aligned([a, Grid.regular(118.0 + 1e-9, 27.0, 0.1, np.ones((2, 2)))], "rain")
    cases = {
        "shape": Grid.regular(118.0, 27.0, 0.1, np.zeros((2, 3))),
        "CRS": Grid.regular(118.0, 27.0, 0.1, np.zeros((2, 2)), crs=4490),
        "cell size": Grid.regular(118.0, 27.0, 0.05, np.zeros((2, 2))),
        "origin": Grid.regular(118.1, 27.0, 0.1, np.zeros((2, 2)), source="b.asc"),
    }
    for why, other in cases.items():
        with pytest.raises(GridRejected, match=why) as err:
            require_aligned([a, other], "rain")
        assert "grid 2" in str(err.value) and "a.tif" in str(err.value)
    assert err.value.extra["file"] == "b.asc"


def test_resampling() -> None:
    coarse = Grid.regular(0.0, 2.0, 1.0, [[1.0, 2.0], [3.0, 4.0]], crs=3857)
    fine = Grid.regular(0.0, 2.0, 0.5, np.zeros((4, 4)), crs=3857)
    np.testing.assert_array_equal(
        coarse.resample_to(fine).values, [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]
    )
    values = np.arange(16.0).reshape(4, 4)
    back = fine.with_values(values)
    np.testing.assert_allclose(back.resample_to(coarse, "average").values, [[2.5, 4.5], [10.5, 12.5]])
    np.testing.assert_allclose(back.resample_to(coarse, "max").values, [[5, 7], [13, 15]])
    # beyond the source: NaN
    wider = Grid.regular(-1.0, 2.0, 1.0, np.zeros((2, 3)), crs=3857)
    assert np.isnan(coarse.resample_to(wider).values[:, 0]).all()
    # reprojection: a constant lon/lat field stays constant on a Gauss–Krüger grid inside it
    ll = Grid.regular(116.0, 28.0, 0.01, np.full((200, 300), 7.0), crs=4490)
    gk = Grid.regular(39_450_000.0, 3_080_000.0, 1000.0, np.zeros((20, 20)), crs=4527)
    np.testing.assert_array_equal(ll.resample_to(gk).values, np.full((20, 20), 7.0))
