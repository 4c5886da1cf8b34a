"""Regional weather-driven warning (地质灾害气象风险预警): rainfall grids → levels → areas → exposure.

``run_regional`` ties the pure cores together: :mod:`.grid` (the raster type), :mod:`.readers`
(GeoTIFF, NetCDF, ESRI ASCII), :mod:`.idw` (gauges onto a grid), :mod:`.model` (effective rainfall,
thresholds per susceptibility grade), :mod:`.areas` (warning-area polygons), :mod:`.exposure`
(sites, zones, townships). :mod:`.store` is the adapter to the register and the product workflow.
"""

from geowarn.regional.areas import WarningAreas, polygon_area_km2, warning_areas
from geowarn.regional.exposure import Exposure, LevelExposure, Sites, Zones, assess_exposure
from geowarn.regional.grid import Grid
from geowarn.regional.model import (
    FUJIAN,
    ModelConfig,
    ThresholdTable,
    effective_rainfall,
    warning_levels,
    warning_period_rain,
)
from geowarn.regional.pipeline import RegionalResult, run_regional
from geowarn.regional.readers import READERS, read_grid, register_reader, write_grid
from geowarn.regional.susceptibility import Zoning

__all__ = [
    "FUJIAN",
    "READERS",
    "Exposure",
    "Grid",
    "LevelExposure",
    "ModelConfig",
    "RegionalResult",
    "Sites",
    "ThresholdTable",
    "WarningAreas",
    "Zones",
    "Zoning",
    "assess_exposure",
    "effective_rainfall",
    "polygon_area_km2",
    "read_grid",
    "register_reader",
    "run_regional",
    "warning_areas",
    "warning_levels",
    "warning_period_rain",
    "write_grid",
]
