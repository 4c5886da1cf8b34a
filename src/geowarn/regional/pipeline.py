"""The regional warning run: rain grids + susceptibility → level grid → areas → exposure."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from geowarn.regional import areas, exposure, model
from geowarn.regional.grid import Grid
from geowarn.warning.levels import Level


@dataclass(slots=True)
class RegionalResult:
    levels: npt.NDArray[np.uint8]
    grid: Grid  # the effective rainfall (mm), aligned with ``levels``
    polygons: dict[int, Any]
    areas_km2: dict[int, float]
    site_levels: npt.NDArray[np.uint8] | None = None
    zone_levels: npt.NDArray[np.uint8] | None = None
    townships: list[dict[str, Any]] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)

    @property
    def max_level(self) -> Level:
        return Level(int(self.levels.max()) if self.levels.size else 0)

    def summary(self, sites: exposure.Sites | None = None, zones: exposure.Zones | None = None) -> dict[str, Any]:
        """JSON-ready per-level counts (sites, zones, people, households) and the township table."""
        per_level: dict[str, dict[str, float | int]] = {}
        for lv in range(1, 5):
            row: dict[str, float | int] = {"area_km2": round(self.areas_km2.get(lv, 0.0), 1)}
            if sites is not None and self.site_levels is not None:
                sel = self.site_levels == lv
                row.update(sites=int(sel.sum()), site_people=int(sites.people[sel].sum()),
                           site_households=int(sites.households[sel].sum()))  # fmt: skip
            if zones is not None and self.zone_levels is not None:
                sel = self.zone_levels == lv
                row.update(zones=int(sel.sum()), zone_people=int(zones.people[sel].sum()),
                           zone_households=int(zones.households[sel].sum()))  # fmt: skip
            per_level[Level(lv).colour] = row
        return {"max_level": int(self.max_level), "levels": per_level, "townships": self.townships}


def run_regional(
    rain_days: list[Grid],
    *,
    susceptibility: Grid | None = None,
    table: model.ThresholdTable | None = None,
    k: float = 0.8,
    sites: exposure.Sites | None = None,
    zones: exposure.Zones | None = None,
    polygons: bool = True,
) -> RegionalResult:
    """Run the model; every step is timed (``timings_s``)."""
    t: dict[str, float] = {}
    start = time.perf_counter()
    effective = model.effective_rainfall(rain_days, k)
    levels = model.level_grid(effective, susceptibility, table or model.ThresholdTable())
    t["levels"] = time.perf_counter() - start
    mark = time.perf_counter()
    polys = areas.dissolve(levels, effective) if polygons else {}
    t["polygons"] = time.perf_counter() - mark
    mark = time.perf_counter()
    km2 = areas.areas_km2(levels, effective)
    result = RegionalResult(levels, effective, polys, km2)
    if sites is not None:
        result.site_levels = exposure.site_levels(levels, effective, sites)
        result.townships = exposure.township_summary(sites, result.site_levels)
    if zones is not None:
        result.zone_levels = exposure.zone_levels(levels, effective, zones)
    t["exposure"] = time.perf_counter() - mark
    t["total"] = time.perf_counter() - start
    result.timings_s = t
    return result
