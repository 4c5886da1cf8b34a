"""Inverse-distance weighting of gauge rainfall, against hand-computed weights."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pyproj import Transformer

from geowarn.errors import GridRejected
from geowarn.regional import idw as idw_mod
from geowarn.regional.grid import EARTH_RADIUS_KM, Grid
from geowarn.regional.idw import idw

GK = 4527  # CGCS2000 / 3-degree Gauss–Krüger zone 39 (metres, with the zone prefix)


def gk_row(cols: int) -> Grid:
    return Grid.regular(39_450_000.0, 3_080_000.0, 1000.0, np.zeros((1, cols)), crs=GK)


def test_by_hand_on_a_projected_grid() -> None:
    like = gk_row(5)
    xs, ys = like.centres()
    out = idw([xs[0], xs[3]], [ys[0], ys[0]], [10.0, 30.0], like).values[0]
    # column 1: 1 km and 2 km → weights 1 and 1/4 → (10 + 30/4) / 1.25 = 14
    # column 2: 2 km and 1 km → (10/4 + 30) / 1.25 = 26; column 4: 4 km and 1 km → (10/16 + 30) / (17/16)
    np.testing.assert_allclose(out, [10.0, 14.0, 26.0, 30.0, (10 / 16 + 30) / (17 / 16)])
    cubic = idw([xs[0], xs[3]], [ys[0], ys[0]], [10.0, 30.0], like, power=3).values[0]
    assert cubic[1] == pytest.approx((10 + 30 / 8) / (1 + 1 / 8))


def test_exact_at_gauges_and_chord_distances_on_lon_lat() -> None:
    like = Grid.regular(118.0, 26.05, 0.1, np.zeros((1, 5)))
    lon, lat, v = [118.05, 118.45], [26.0, 26.0], [10.0, 30.0]
    out = idw(lon, lat, v, like, max_km=100).values[0]
    assert out[0] == 10.0 and out[4] == 30.0  # a cell centre on a gauge takes its value
    assert out[2] == pytest.approx(20.0)  # equidistant

    def chord(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
        p1, p2, dl = math.radians(lat1), math.radians(lat2), math.radians(lon2 - lon1)
        hav = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
        return 2 * EARTH_RADIUS_KM * math.sqrt(hav)

    w = [1 / chord(118.15, 26.0, x, y) ** 2 for x, y in zip(lon, lat, strict=True)]
    assert out[1] == pytest.approx((w[0] * 10 + w[1] * 30) / sum(w), rel=1e-9)


def test_neighbours_radius_and_missing_gauges() -> None:
    like = gk_row(5)
    xs, ys = like.centres()
    nearest = idw([xs[0], xs[3]], [ys[0], ys[0]], [10.0, 30.0], like, k=1).values[0]
    np.testing.assert_array_equal(nearest, [10, 10, 30, 30, 30])
    near = idw([xs[0]], [ys[0]], [10.0], like, max_km=2.5).values[0]
    np.testing.assert_array_equal(near, [10, 10, 10, np.nan, np.nan])
    skipped = idw([xs[0], np.nan, xs[4]], [ys[0], ys[0], ys[0]], [10.0, 50.0, np.nan], like).values[0]
    np.testing.assert_allclose(skipped, np.full(5, 10.0))
    assert np.isnan(idw([], [], [], like).values).all()
    with pytest.raises(GridRejected, match=r"1 gauge.* negative rainfall"):
        idw([xs[0], xs[1]], [ys[0], ys[0]], [10.0, -1.0], like)
    with pytest.raises(GridRejected, match="must be positive"):
        idw([xs[0]], [ys[0]], [1.0], like, k=0)
    with pytest.raises(GridRejected, match="values"):
        idw([xs[0]], [ys[0], ys[0]], [1.0], like)


def test_gauges_in_lon_lat_onto_a_projected_grid_and_chunking(monkeypatch: pytest.MonkeyPatch) -> None:
    like = Grid.regular(39_450_000.0, 3_080_000.0, 1000.0, np.zeros((6, 7)), crs=GK)
    rng = np.random.default_rng(3)
    gx = rng.uniform(39_450_000, 39_457_000, 9)
    gy = rng.uniform(3_074_000, 3_080_000, 9)
    v = rng.gamma(2, 20, 9)
    in_gk = idw(gx, gy, v, like, k=4).values
    lon, lat = Transformer.from_crs(GK, 4490, always_xy=True).transform(gx, gy)
    np.testing.assert_allclose(idw(lon, lat, v, like, k=4, crs=4490).values, in_gk, rtol=1e-9)
    monkeypatch.setattr(idw_mod, "CHUNK_CELLS", 5)
    np.testing.assert_array_equal(idw(gx, gy, v, like, k=4).values, in_gk)
