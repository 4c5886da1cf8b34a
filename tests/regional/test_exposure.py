"""Exposure: levels of sites and risk zones, counts per level and per township, by hand and
against a brute-force reference."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from pyproj import Transformer

from geowarn.errors import InvalidInput
from geowarn.regional import exposure
from geowarn.regional.exposure import Sites, Zones, assess_exposure, site_levels, township_summary, zone_levels
from geowarn.regional.grid import Grid

CELL = 0.1
LEVELS = np.array([[3, 1], [0, 4]], np.uint8)  # 118.0-118.2 E, 26.8-27.0 N


def like(shape: tuple[int, int] = (2, 2)) -> Grid:
    return Grid.regular(118.0, 27.0, CELL, np.zeros(shape))


def sites() -> Sites:
    return Sites([1, 2, 3, 4], [118.05, 118.15, 118.15, 120.0], [26.95, 26.95, 26.85, 26.9], ["A", "A", "B", "B"],
                 [10, 20, 30, 40], [3, 5, 7, 9])  # fmt: skip


def test_sites_take_the_level_of_their_cell() -> None:
    assert site_levels(LEVELS, like(), sites()).tolist() == [3, 1, 4, 0]  # the fourth is off the grid
    # the same sites given in Gauss–Krüger coordinates
    s = sites()
    x, y = Transformer.from_crs(4326, 4527, always_xy=True).transform(s.x, s.y)
    gk = Sites(s.ids, x, y, s.township, s.people, s.households, crs=4527)
    assert site_levels(LEVELS, like(), gk).tolist() == [3, 1, 4, 0]
    with pytest.raises(InvalidInput, match="different lengths"):
        Sites([1, 2], [118.0], [27.0], ["A"], [1], [1])


def test_zones_take_the_highest_level_of_the_cells_they_overlap() -> None:
    zones = Zones(
        [7, 8, 9, 10, 11, 12],
        [
            shapely.box(118.02, 26.82, 118.18, 26.88),  # bottom row: cells at 0 and 4 → 4
            shapely.box(118.01, 26.81, 118.02, 26.82),  # tiny, inside the level-0 cell → 0
            shapely.box(118.0, 26.9, 118.1, 27.0),  # exactly the level-3 cell: sharing edges is not overlapping
            shapely.box(118.05, 26.85, 118.15, 26.95),  # overlaps all four → 4; overlaps zone 7 (each keeps its own)
            None,  # no geometry → 0
            shapely.box(119.0, 26.0, 119.1, 26.1),  # off the grid → 0
        ],
        [5, 6, 7, 8, 9, 10],
        [1, 2, 3, 4, 5, 6],
    )
    assert zone_levels(LEVELS, like(), zones).tolist() == [4, 0, 3, 4, 0, 0]


def test_a_zone_on_cell_edges_does_not_take_its_neighbours_level() -> None:
    gk = Grid.regular(39_450_000.0, 3_080_000.0, 1000.0, np.zeros((2, 2)), crs=4527)  # exact coordinates
    cell = shapely.box(39_450_000.0, 3_079_000.0, 39_451_000.0, 3_080_000.0)  # exactly the level-3 cell
    two = shapely.box(39_450_000.0, 3_078_000.0, 39_451_000.0, 3_080_000.0)  # the west column: 3 and 0
    zones = Zones([1, 2], [cell, two], [0, 0], [0, 0], crs=4527)
    assert zone_levels(LEVELS, gk, zones).tolist() == [3, 3]  # the red cell only touches them at a corner


def test_zone_levels_match_a_brute_force_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(11)
    grid = Grid.regular(118.0, 27.0, 0.01, np.zeros((40, 50)))
    levels = rng.integers(0, 5, grid.shape).astype(np.uint8)
    n = 150
    cx, cy = rng.uniform(117.95, 118.55, n), rng.uniform(26.55, 27.05, n)
    r = rng.uniform(0.001, 0.04, n)
    polys = [shapely.Point(x, y).buffer(rad, quad_segs=3) for x, y, rad in zip(cx, cy, r, strict=True)]
    zones = Zones(np.arange(n), polys, np.ones(n), np.ones(n))
    xs, ys = grid.centres()
    expected = []
    for p in polys:
        best = 0
        for i, y in enumerate(ys):
            for j, x in enumerate(xs):
                cell = shapely.box(x - 0.005, y - 0.005, x + 0.005, y + 0.005)
                if p.intersects(cell) and not p.touches(cell):
                    best = max(best, int(levels[i, j]))
        expected.append(best)
    assert zone_levels(levels, grid, zones).tolist() == expected
    monkeypatch.setattr(exposure, "PAIRS_PER_CHUNK", 7)  # many small chunks
    assert zone_levels(levels, grid, zones).tolist() == expected
    monkeypatch.setattr(exposure, "BIG_ZONE_CELLS", 0)  # every zone burnt with GDAL instead
    assert zone_levels(levels, grid, zones).tolist() == expected


def test_counts_per_level_at_least_and_per_township() -> None:
    zones = Zones([7, 8], [shapely.box(118.02, 26.82, 118.18, 26.88), shapely.box(118.01, 26.91, 118.02, 26.92)],
                  [50, 60], [11, 12], township=["B", "C"])  # fmt: skip
    e = assess_exposure(LEVELS, like(), sites(), zones, townships=["A", "B", "C", "D"])
    assert e.site_levels.tolist() == [3, 1, 4, 0] and e.zone_levels.tolist() == [4, 3] and e.sites_outside == 1
    assert e.by_level[3].site_ids.tolist() == [1] and e.by_level[3].zone_ids.tolist() == [8]
    assert e.by_level[4].counts() == {"sites": 1, "site_people": 30, "site_households": 7, "zones": 1,
                                      "zone_people": 50, "zone_households": 11}  # fmt: skip
    assert e.by_level[2].counts()["sites"] == 0
    assert e.at_least[3].site_ids.tolist() == [1, 3] and e.at_least[3].zone_people == 110
    assert e.at_least[1].site_people == 60 and e.at_least[1].site_households == 15
    towns = {t["township"]: t for t in e.townships}
    assert list(towns) == ["A", "B", "C", "D"]  # D has nothing, and is still in the table (zero report)
    assert towns["A"]["max_level"] == 3 and towns["A"]["sites"] == {"1": 1, "2": 0, "3": 1, "4": 0}
    assert towns["A"]["people"] == {"1": 20, "2": 0, "3": 10, "4": 0}
    assert towns["B"]["max_level"] == 4 and towns["B"]["zone_people"]["4"] == 50 and towns["B"]["sites"]["4"] == 1
    assert towns["C"]["max_level"] == 3 and towns["C"]["zones"] == {"1": 0, "2": 0, "3": 1, "4": 0}
    assert towns["D"]["max_level"] == 0 and sum(towns["D"]["sites"].values()) == 0
    # without zone townships the table has no zone columns
    rows = township_summary(sites(), e.site_levels)
    assert [r["township"] for r in rows] == ["A", "B"] and "zones" not in rows[0]
    empty = assess_exposure(LEVELS, like(), None, None, townships=["A"])
    assert empty.townships[0]["max_level"] == 0 and empty.by_level[1].site_ids.size == 0


def test_township_boundaries_give_a_township_the_level_of_its_ground() -> None:
    """Township D has no site and no risk zone but lies under the red cell: with its boundary it gets
    level 4 (and E, under the quiet cell, 0); without boundaries D has only what its sites say."""
    bounds = Zones([0, 1, 2], [shapely.box(118.11, 26.81, 118.19, 26.89), shapely.box(118.01, 26.81, 118.09, 26.89),
                               shapely.box(118.01, 26.91, 118.09, 26.99)],
                   [0, 0, 0], [0, 0, 0], township=["D", "E", "A"])  # fmt: skip
    e = assess_exposure(LEVELS, like(), sites(), None, townships=["D"], boundaries=bounds)
    towns = {t["township"]: t for t in e.townships}
    assert (towns["D"]["max_level"], towns["D"]["area_level"], sum(towns["D"]["sites"].values())) == (4, 4, 0)
    assert (towns["E"]["max_level"], towns["E"]["area_level"]) == (0, 0)
    assert (towns["A"]["max_level"], towns["A"]["area_level"]) == (3, 3)  # its sites and its ground agree
    without = {t["township"]: t for t in assess_exposure(LEVELS, like(), sites(), None, townships=["D"]).townships}
    assert without["D"]["max_level"] == 0 and "area_level" not in without["D"]
