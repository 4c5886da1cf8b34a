"""The regional warning end to end: daily rain grids → effective rainfall → levels per cell (with the
susceptibility zoning) → warning areas → exposure of sites, risk zones and townships. Each step is
timed; the result is plain data for the product workflow (:mod:`geowarn.regional.store`)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from geowarn.regional import areas as areas_mod
from geowarn.regional import exposure as exposure_mod
from geowarn.regional.grid import Grid
from geowarn.regional.model import ModelConfig, ThresholdTable, effective_rainfall, warning_levels
from geowarn.regional.susceptibility import Zoning, grades_on
from geowarn.warning.levels import Level

LEVELS = (1, 2, 3, 4)


@dataclass(slots=True)
class RegionalResult:
    """A model run: ``levels`` (uint8 0-4) on the cells of ``grid`` (the effective rainfall, mm)."""

    levels: npt.NDArray[np.uint8]
    grid: Grid
    areas: areas_mod.WarningAreas
    exposure: exposure_mod.Exposure | None = None
    config: ModelConfig = field(default_factory=ModelConfig)
    missing_cells: int = 0  # cells whose warning-period rain is unknown (level 0)
    timings_s: dict[str, float] = field(default_factory=dict)

    @property
    def max_level(self) -> Level:
        return Level(int(self.levels.max()) if self.levels.size else 0)

    @property
    def polygons(self) -> dict[int, Any]:
        """Level → MultiPolygon of the cells at exactly that level (grid CRS)."""
        return self.areas.exclusive

    @property
    def areas_km2(self) -> dict[int, float]:
        return self.areas.km2

    @property
    def site_levels(self) -> npt.NDArray[np.uint8] | None:
        return self.exposure.site_levels if self.exposure is not None else None

    @property
    def zone_levels(self) -> npt.NDArray[np.uint8] | None:
        return self.exposure.zone_levels if self.exposure is not None else None

    @property
    def townships(self) -> list[dict[str, Any]]:
        return self.exposure.townships if self.exposure is not None else []

    def summary(self) -> dict[str, Any]:
        """JSON-ready: per level (keyed by colour) the area and the sites, zones, people and
        households exactly at it and at it or above; the township table; missing cells."""
        per_level: dict[str, dict[str, float | int]] = {}
        at_least: dict[str, dict[str, float | int]] = {}
        for lv in LEVELS:
            colour = Level(lv).colour
            per_level[colour] = {"area_km2": round(self.areas.km2.get(lv, 0.0), 1)}
            at_least[colour] = {"area_km2": round(self.areas.at_least_km2.get(lv, 0.0), 1)}
            if self.exposure is not None:
                per_level[colour].update(self.exposure.by_level[lv].counts())
                at_least[colour].update(self.exposure.at_least[lv].counts())
        return {
            "max_level": int(self.max_level),
            "levels": per_level,
            "at_least": at_least,
            "townships": self.townships,
            "cells": {"total": int(self.levels.size), "missing_rain": self.missing_cells},
            "sites_outside": self.exposure.sites_outside if self.exposure is not None else 0,
        }


def run_regional(
    rain_days: Sequence[Grid],
    *,
    susceptibility: Grid | Zoning | None = None,
    config: ModelConfig | None = None,
    table: ThresholdTable | None = None,
    k: float | None = None,
    antecedent_days: int | None = None,
    sites: exposure_mod.Sites | None = None,
    zones: exposure_mod.Zones | None = None,
    townships: Sequence[str] = (),
    township_boundaries: exposure_mod.Zones | None = None,
    polygons: bool = True,
    at_least: bool = True,
) -> RegionalResult:
    """Run the model on ``rain_days`` (``[R_0, R_1, R_2, ...]``: the warning period, then the days
    before, newest first, all on the same cells).

    ``susceptibility`` is a grades raster (0-3; resampled with ``max`` if on other cells) or zoning
    polygons; without it every cell counts as highly susceptible. ``table``, ``k`` and
    ``antecedent_days`` override ``config``. ``polygons=False`` skips the warning-area polygons (areas
    in km² are still computed), ``at_least=False`` only the nested "level ≥ L" polygons.
    """
    base = config or ModelConfig()
    cfg = ModelConfig(table or base.thresholds, base.k if k is None else k,
                      base.antecedent_days if antecedent_days is None else antecedent_days)  # fmt: skip
    t: dict[str, float] = {}
    start = mark = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        t[name] = now - mark
        mark = now

    effective = effective_rainfall(rain_days, cfg.k, cfg.antecedent_days)
    lap("effective")
    grades = None if susceptibility is None else grades_on(effective, susceptibility)
    levels = warning_levels(effective.values, grades, cfg.thresholds)
    missing = int(np.count_nonzero(np.isnan(effective.values)))
    lap("levels")
    if polygons:
        areas = areas_mod.warning_areas(levels, effective, at_least=at_least)
    else:
        km2 = areas_mod.areas_km2(levels, effective)
        areas = areas_mod.WarningAreas(km2=km2, at_least_km2=areas_mod.at_least_km2(km2))
    lap("polygons")
    exp = None
    if sites is not None or zones is not None or townships or township_boundaries is not None:
        exp = exposure_mod.assess_exposure(levels, effective, sites, zones, townships, township_boundaries)
    lap("exposure")
    t["total"] = time.perf_counter() - start
    return RegionalResult(levels, effective, areas, exp, cfg, missing, t)
