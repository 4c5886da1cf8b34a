"""The explicit statistical model: effective rainfall against thresholds per susceptibility grade.

* Effective rainfall per cell: R_e = R_0 + Σ_{i≥1} k^i · R_i (k ≈ 0.8; Fujian: 3 days, 0.79), where
  R_0 is the rain of the warning period (the next 24 hours' forecast when there is one, else the
  past 24 hours observed) and R_i the observed rain of the i-th day before.
* Levels from a threshold table per susceptibility grade (易发程度): the county example
  50 / 70 / 110 / 160 mm for levels 4 / 3 / 2 / 1 (blue / yellow / orange / red) applies to high
  susceptibility; medium and low susceptibility need more rain for the same level (default factors
  1.25 and 1.6, configurable: calibrate them on the county's record); non-susceptible ground is not
  warned.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from rasterio import features

from geowarn.errors import GridRejected
from geowarn.regional.grid import Grid, require_aligned

#: Susceptibility grades (易发程度) as stored in a susceptibility raster.
NONE, LOW, MEDIUM, HIGH = 0, 1, 2, 3
GRADE_NAMES = {"none": NONE, "low": LOW, "medium": MEDIUM, "high": HIGH, "不易发": NONE, "低易发": LOW,
               "中易发": MEDIUM, "高易发": HIGH}  # fmt: skip
COUNTY_EXAMPLE_MM = (50.0, 70.0, 110.0, 160.0)  # blue, yellow, orange, red


@dataclass(slots=True)
class ThresholdTable:
    """Effective-rainfall thresholds (mm) for levels 1-4 per susceptibility grade."""

    by_grade: dict[int, tuple[float, float, float, float]] = field(
        default_factory=lambda: {
            HIGH: COUNTY_EXAMPLE_MM,
            MEDIUM: tuple(x * 1.25 for x in COUNTY_EXAMPLE_MM),  # type: ignore[dict-item]
            LOW: tuple(x * 1.6 for x in COUNTY_EXAMPLE_MM),  # type: ignore[dict-item]
        }
    )

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> ThresholdTable:
        """``{"high": [50, 70, 110, 160], "medium": [...], ...}`` (Chinese grade names accepted)."""
        table: dict[int, tuple[float, float, float, float]] = {}
        for name, values in doc.items():
            if name not in GRADE_NAMES:
                raise GridRejected(
                    f"thresholds: unknown susceptibility grade {name!r}", message_zh=f"未知易发等级：{name}"
                )
            vals = [float(v) for v in values]
            if len(vals) != 4 or any(b <= a for a, b in itertools.pairwise(vals)) or vals[0] <= 0:
                raise GridRejected(f"thresholds[{name}]: need four increasing positive values, got {values}",
                                   message_zh=f"{name} 阈值须为4个递增的正数")  # fmt: skip
            table[GRADE_NAMES[name]] = (vals[0], vals[1], vals[2], vals[3])
        return cls(table)


def effective_rainfall(days: list[Grid], k: float = 0.8) -> Grid:
    """R_0 + Σ k^i R_i over aligned daily grids (``days[0]`` is the warning period). NaN rain counts 0
    in antecedent days but leaves today's cell unknown."""
    if not days:
        raise GridRejected("no rainfall grid", message_zh="缺少降雨栅格")
    require_aligned(days, "rainfall")
    total = days[0].values.copy()
    for i, g in enumerate(days[1:], start=1):
        total = total + (k**i) * np.nan_to_num(g.values, nan=0.0)
    return Grid(total, days[0].transform, days[0].crs)


def susceptibility_from_polygons(geoms: list[Any], grades: list[int], like: Grid) -> Grid:
    """Rasterise zoning polygons (lon/lat) onto ``like``; overlapping polygons give the higher grade."""
    rows, cols = like.shape
    order = np.argsort(np.asarray(grades))  # burn low grades first so higher grades overwrite
    shapes = [(geoms[i], int(grades[i])) for i in order if geoms[i] is not None]
    if not shapes:
        return Grid(np.zeros((rows, cols)), like.transform, like.crs)
    burnt = features.rasterize(shapes, out_shape=(rows, cols), transform=like.transform, fill=NONE, dtype="uint8")
    return Grid(burnt.astype(np.float64), like.transform, like.crs)


def level_grid(effective: Grid, susceptibility: Grid | None, table: ThresholdTable) -> npt.NDArray[np.uint8]:
    """Level 0-4 of every cell; without a susceptibility grid every cell counts as high."""
    rain = effective.values
    grade = np.full(rain.shape, HIGH, np.int64) if susceptibility is None else np.nan_to_num(
        susceptibility.values, nan=NONE).astype(np.int64)  # fmt: skip
    if susceptibility is not None:
        require_aligned([effective, susceptibility], "susceptibility")
    out = np.zeros(rain.shape, np.uint8)
    finite = np.isfinite(rain)
    for g, limits in table.by_grade.items():
        sel = (grade == g) & finite
        if sel.any():
            out[sel] = np.searchsorted(np.asarray(limits), rain[sel], side="right").astype(np.uint8)
    return out


def susceptibility_from_geojson(document: Any, like: Grid, *, field: str = "grade") -> Grid:
    """Zoning polygons from a GeoJSON FeatureCollection (lon/lat) whose ``field`` property is a grade
    (high/medium/low/none, 高易发/中易发/低易发/不易发, or 0-3), rasterised onto ``like``."""
    import shapely.geometry

    if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
        raise GridRejected(
            "susceptibility: not a GeoJSON FeatureCollection", message_zh="易发性分区须为 GeoJSON 要素集"
        )
    geoms, grades = [], []
    for n, feature in enumerate(document.get("features") or [], start=1):
        props = (feature or {}).get("properties") or {}
        raw = props.get(field)
        grade = GRADE_NAMES.get(str(raw)) if not isinstance(raw, int) else raw
        if grade not in (NONE, LOW, MEDIUM, HIGH):
            raise GridRejected(f"susceptibility feature {n}: {field}={raw!r} is not a grade",
                               message_zh=f"易发性分区第{n}个要素：{field}={raw} 不是易发等级")  # fmt: skip
        try:
            geom = shapely.geometry.shape(feature["geometry"])
        except (KeyError, TypeError, ValueError, AttributeError):
            raise GridRejected(
                f"susceptibility feature {n}: bad geometry", message_zh=f"易发性分区第{n}个要素：几何无效"
            ) from None
        if geom.geom_type not in ("Polygon", "MultiPolygon") or not geom.is_valid:
            raise GridRejected(f"susceptibility feature {n}: needs a valid (multi)polygon",
                               message_zh=f"易发性分区第{n}个要素须为有效面")  # fmt: skip
        geoms.append(geom)
        grades.append(int(grade))
    return susceptibility_from_polygons(geoms, grades, like)
