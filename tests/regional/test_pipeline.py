"""``run_regional`` end to end on a small county, by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest
import shapely

from geowarn.errors import GridRejected
from geowarn.regional import FUJIAN, ModelConfig, Sites, ThresholdTable, Zones, Zoning, read_grid, run_regional
from geowarn.regional.grid import Grid
from geowarn.regional.model import HIGH, MEDIUM
from geowarn.regional.readers import write_grid
from geowarn.warning.levels import Level

CELL = 0.1


def day(values: list[list[float]]) -> Grid:
    return Grid.regular(118.0, 27.0, CELL, np.array(values, float), crs=4490)


TODAY = day([[120.0, 60.0, 20.0], [170.0, 45.0, np.nan]])
YESTERDAY = day([[5.0, 20.0, 0.0], [0.0, 10.0, 0.0]])
# effective (k = 0.8): [[124, 76, 20], [170, 53, nan]] → all high: [[3, 2, 0], [4, 1, 0]]


def test_the_county_by_hand(tmp_path: Path) -> None:
    sites = Sites([1, 2, 3, 4], [118.05, 118.15, 118.05, 118.25], [26.95, 26.95, 26.85, 26.85],
                  ["350922101", "350922101", "350922102", "350922102"], [10, 20, 30, 40], [2, 4, 6, 8],
                  crs=4490)  # fmt: skip
    zones = Zones([7], [shapely.box(118.12, 26.82, 118.18, 26.98)], [100], [25], township=["350922101"], crs=4490)
    result = run_regional([TODAY, YESTERDAY], sites=sites, zones=zones, townships=["350922101", "350922102"])
    np.testing.assert_allclose(result.grid.values, [[124, 76, 20], [170, 53, np.nan]])
    assert result.levels.tolist() == [[3, 2, 0], [4, 1, 0]] and result.max_level is Level.RED
    assert result.missing_cells == 1
    assert sorted(result.polygons) == [1, 2, 3, 4] and result.areas.at_least[1].area == pytest.approx(4 * CELL**2)
    assert result.site_levels is not None and result.site_levels.tolist() == [3, 2, 4, 0]
    assert result.zone_levels is not None and result.zone_levels.tolist() == [2]  # cells at 2 and 1
    summary = orjson.loads(orjson.dumps(result.summary()))  # JSON-ready
    assert summary["max_level"] == 4 and summary["cells"] == {"total": 6, "missing_rain": 1}
    assert summary["levels"]["orange"]["sites"] == 1 and summary["levels"]["orange"]["site_people"] == 10
    assert summary["levels"]["yellow"]["zone_people"] == 100
    assert summary["at_least"]["yellow"]["sites"] == 3 and summary["at_least"]["yellow"]["site_people"] == 60
    assert summary["at_least"]["blue"]["area_km2"] == pytest.approx(sum(result.areas_km2.values()), abs=0.1)
    towns = {t["township"]: t["max_level"] for t in summary["townships"]}
    assert towns == {"350922101": 3, "350922102": 4}
    assert set(result.timings_s) == {"effective", "levels", "polygons", "exposure", "total"}
    # the same through files on disk
    paths = [write_grid(TODAY, tmp_path / "r0.tif"), write_grid(YESTERDAY, tmp_path / "r1.nc")]
    again = run_regional([read_grid(p) for p in paths])
    assert again.levels.tolist() == result.levels.tolist() and again.exposure is None


def test_zoning_config_and_options() -> None:
    zoning = Zoning([shapely.box(118.0, 26.8, 118.1, 27.0)], [MEDIUM], crs=4490)  # the west column only
    # west column medium (62.5/87.5/137.5/200): 124 → 2, 170 → 3; elsewhere not susceptible
    result = run_regional([TODAY, YESTERDAY], susceptibility=zoning)
    assert result.levels.tolist() == [[2, 0, 0], [3, 0, 0]]
    raster = Grid.regular(118.0, 27.0, CELL / 2, np.full((4, 6), float(HIGH)), crs=4490)  # finer: resampled
    assert run_regional([TODAY, YESTERDAY], susceptibility=raster).levels.tolist() == [[3, 2, 0], [4, 1, 0]]
    cfg = ModelConfig(ThresholdTable.from_dict({"high": [100, 150, 200, 250]}), k=0.5)
    assert run_regional([TODAY, YESTERDAY], config=cfg).levels.tolist() == [[1, 0, 0], [2, 0, 0]]
    assert run_regional([TODAY, YESTERDAY], config=cfg, k=0.8).config.k == 0.8
    assert run_regional([TODAY, YESTERDAY, YESTERDAY], config=FUJIAN).config.antecedent_days == 3
    quick = run_regional([TODAY], polygons=False)
    assert quick.polygons == {} and quick.areas_km2[4] > 0 and quick.areas.at_least_km2[1] > 0
    assert run_regional([TODAY], at_least=False).areas.at_least == {}
    with pytest.raises(GridRejected, match="does not match"):
        run_regional([TODAY, Grid.regular(118.0, 27.0, CELL, np.zeros((2, 3)))])  # WGS84 vs CGCS2000
