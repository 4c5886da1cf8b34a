"""The regional model on small grids with hand-computed answers, and every reader on real files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import shapely

from geowarn.errors import GridRejected
from geowarn.regional import areas, exposure, model
from geowarn.regional.grid import Grid
from geowarn.regional.idw import idw
from geowarn.regional.pipeline import run_regional
from geowarn.regional.readers import read_grid, write_grid

CELL = 0.1


def g(values: list[list[float]], west: float = 118.0, north: float = 27.0) -> Grid:
    return Grid.regular(west, north, CELL, np.array(values, float))


def test_effective_rainfall_and_levels_by_hand() -> None:
    today = g([[40, 60], [100, 200]])
    yesterday = g([[20, 20], [20, np.nan]])
    before = g([[10, 10], [10, 10]])
    eff = model.effective_rainfall([today, yesterday, before], k=0.8)
    # 40 + 0.8·20 + 0.64·10 = 62.4; 60 + 16 + 6.4 = 82.4; 100 + 22.4 = 122.4; 200 + 0 + 6.4 = 206.4
    np.testing.assert_allclose(eff.values, [[62.4, 82.4], [122.4, 206.4]])
    levels = model.level_grid(eff, None, model.ThresholdTable())
    assert levels.tolist() == [[1, 2], [3, 4]]  # 50/70/110/160
    sus = g([[model.HIGH, model.MEDIUM], [model.LOW, model.NONE]])
    # medium ×1.25: 82.4 < 87.5 → blue; low ×1.6: 122.4 ≥ 112 → yellow; not susceptible: nothing
    assert model.level_grid(eff, sus, model.ThresholdTable()).tolist() == [[1, 1], [2, 0]]


def test_threshold_tables_are_checked() -> None:
    t = model.ThresholdTable.from_dict({"高易发": [40, 60, 100, 150]})
    assert t.by_grade == {model.HIGH: (40, 60, 100, 150)}
    with pytest.raises(GridRejected, match="increasing"):
        model.ThresholdTable.from_dict({"high": [50, 40, 110, 160]})
    with pytest.raises(GridRejected, match="grade"):
        model.ThresholdTable.from_dict({"severe": [1, 2, 3, 4]})


def test_areas_have_holes_and_exact_cell_areas() -> None:
    levels = np.array([[2, 2, 2], [2, 0, 2], [2, 2, 2]], np.uint8)
    like = g([[0] * 3] * 3)
    polys = areas.dissolve(levels, like)
    (poly,) = polys[2].geoms
    assert len(poly.interiors) == 1
    assert poly.area == pytest.approx(8 * CELL * CELL)
    km2 = areas.areas_km2(levels, like)[2]
    # 8 cells of 0.1° at about 26.85°N: 0.1° × 111.2 km × cos(lat) × 11.12 km each
    assert 8 * 11.12 * 11.12 * np.cos(np.radians(26.95)) < km2 < 8 * 11.12 * 11.12 * np.cos(np.radians(26.75))


def test_idw_is_exact_at_gauges_and_between_them() -> None:
    like = g([[0] * 5] * 1, west=118.0, north=26.05)
    out = idw([118.05, 118.45], [26.0, 26.0], [10.0, 30.0], like, max_km=100)
    assert out.values[0, 0] == 10.0 and out.values[0, 4] == 30.0
    assert out.values[0, 2] == pytest.approx(20.0)  # equidistant
    far = idw([118.05], [26.0], [10.0], like, max_km=5)
    assert np.isnan(far.values[0, 4])


def test_exposure_sites_zones_and_townships() -> None:
    levels = np.array([[3, 1], [0, 4]], np.uint8)
    like = g([[0, 0], [0, 0]])
    sites = exposure.Sites(np.array([1, 2, 3]), np.array([118.05, 118.15, 118.15]), np.array([26.95, 26.95, 26.85]),
                           np.array(["A", "A", "B"]), np.array([10, 20, 30]), np.array([3, 5, 7]))  # fmt: skip
    assert exposure.site_levels(levels, like, sites).tolist() == [3, 1, 4]
    boxes = [shapely.box(118.02, 26.82, 118.18, 26.88), shapely.box(118.01, 26.81, 118.02, 26.82)]
    zones = exposure.Zones(np.array([7, 8]), boxes, np.array([5, 6]), np.array([1, 2]))
    # zone 7 spans the bottom row (0 and 4): the highest, 4; zone 8 is tiny inside the level-0 cell
    assert exposure.zone_levels(levels, like, zones).tolist() == [4, 0]
    result = run_regional([g([[120.0, 55.0], [10.0, 170.0]])], sites=sites, zones=zones)
    summary = result.summary(sites, zones)
    assert summary["max_level"] == 4 and summary["levels"]["orange"]["site_people"] == 10
    town_a = next(t for t in summary["townships"] if t["township"] == "A")
    assert town_a["max_level"] == 3 and town_a["sites"] == {"1": 1, "2": 0, "3": 1, "4": 0}


@pytest.mark.parametrize(("fmt", "suffix"), [("geotiff", ".tif"), ("netcdf", ".nc"), ("ascii", ".asc")])
def test_each_reader_round_trips_a_real_file(tmp_path: Path, fmt: str, suffix: str) -> None:
    rng = np.random.default_rng(5)
    values = rng.gamma(2, 20, (6, 8)).round(1)
    values[2, 3] = np.nan
    grid = Grid.regular(118.5, 27.0, 0.05, values)
    path = write_grid(grid, tmp_path / f"rain{suffix}", fmt)
    back = read_grid(path)
    assert back.shape == (6, 8) and back.transform.almost_equals(grid.transform)
    np.testing.assert_allclose(back.values, values.astype(np.float32), equal_nan=True)
    assert back.crs.is_geographic


def test_bad_grids_are_rejected_with_the_file_and_reason(tmp_path: Path) -> None:
    neg = Grid.regular(118.0, 27.0, 0.1, np.array([[1.0, -3.0]]))
    with pytest.raises(GridRejected, match="negative"):
        read_grid(write_grid(neg, tmp_path / "neg.tif", "geotiff"))
    junk = tmp_path / "junk.tif"
    junk.write_bytes(b"II*\x00not really a tiff" * 10)
    with pytest.raises(GridRejected, match=r"junk\.tif"):
        read_grid(junk)
    with pytest.raises(GridRejected, match="format"):
        read_grid(tmp_path / "rain.xyz")
    text = tmp_path / "bad.asc"
    text.write_text("ncols 2\nnrows 2\nxllcorner 118\nyllcorner 26\ncellsize 0.1\n1 2\n3\n")
    with pytest.raises(GridRejected):
        read_grid(text)
    mm = Grid.regular(118.0, 27.0, 0.1, np.array([[1.0, 25_000.0]]))
    with pytest.raises(GridRejected, match="units"):
        read_grid(write_grid(mm, tmp_path / "mm.asc", "ascii"))
    a, b = g([[1.0]]), Grid.regular(119.0, 27.0, CELL, np.array([[1.0]]))
    with pytest.raises(GridRejected, match="does not match"):
        model.effective_rainfall([a, b])


def test_susceptibility_polygons_from_geojson() -> None:
    like = g([[0, 0], [0, 0]])
    west_half = {
        "type": "Polygon",
        "coordinates": [[[118.0, 26.8], [118.1, 26.8], [118.1, 27.0], [118.0, 27.0], [118.0, 26.8]]],
    }
    doc = {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "geometry": west_half, "properties": {"grade": "中易发"}}],
    }
    sus = model.susceptibility_from_geojson(doc, like)
    assert sus.values.tolist() == [[model.MEDIUM, model.NONE], [model.MEDIUM, model.NONE]]
    bad = {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "geometry": west_half, "properties": {"grade": "extreme"}}],
    }
    with pytest.raises(GridRejected, match="feature 1"):
        model.susceptibility_from_geojson(bad, like)
    with pytest.raises(GridRejected, match="FeatureCollection"):
        model.susceptibility_from_geojson({"type": "Feature"}, like)
