"""Susceptibility zoning (易发程度分区) on the rain grid: grades from polygons or a raster.

Grades: 0 not susceptible (不易发), 1 low (低易发), 2 medium (中易发), 3 high (高易发), as in the
national and provincial zoning maps (DZ/T 0286-2015 *地质灾害危险性评估规范* grades susceptibility
high / medium / low / not). Polygons are burnt onto the grid by the cell-centre rule (a cell takes
the grade of the polygon holding its centre), the higher grade where polygons overlap; cells outside
every polygon are not susceptible. A raster on other cells is resampled with ``max`` (a coarse cell
takes the highest grade of the fine cells in it: the conservative choice); cells it does not cover
are not susceptible.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from pyproj import CRS, Transformer

from geowarn.errors import GridRejected
from geowarn.regional.grid import WGS84, Grid, as_crs, same_crs

NONE, LOW, MEDIUM, HIGH = 0, 1, 2, 3
GRADES = (NONE, LOW, MEDIUM, HIGH)
GRADE_NAMES: dict[str, int] = {
    "none": NONE, "not": NONE, "not susceptible": NONE, "low": LOW, "medium": MEDIUM, "high": HIGH,
    "不易发": NONE, "不易发区": NONE, "低易发": LOW, "低易发区": LOW, "中易发": MEDIUM, "中易发区": MEDIUM,
    "高易发": HIGH, "高易发区": HIGH, "0": NONE, "1": LOW, "2": MEDIUM, "3": HIGH,
}  # fmt: skip
GRADE_LABELS = {NONE: "none", LOW: "low", MEDIUM: "medium", HIGH: "high"}


def parse_grade(raw: Any) -> int | None:
    """A grade from 0-3 or an English or Chinese name; None if it is not one."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | np.integer):
        return int(raw) if int(raw) in GRADES else None
    if isinstance(raw, float) and raw.is_integer():
        return parse_grade(int(raw))
    return GRADE_NAMES.get(str(raw).strip().lower()) if raw is not None else None


@dataclass(slots=True)
class Zoning:
    """Zoning polygons with their grades, in ``crs`` (lon/lat by default)."""

    geoms: Sequence[Any]
    grades: Sequence[int]
    crs: CRS = field(default=WGS84)

    @classmethod
    def from_geojson(cls, document: Any, *, field: str = "grade") -> Zoning:
        """A GeoJSON FeatureCollection (lon/lat) whose ``field`` property is a grade."""
        if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
            raise GridRejected(
                "susceptibility: not a GeoJSON FeatureCollection", message_zh="易发性分区须为 GeoJSON 要素集"
            )
        geoms, grades = [], []
        for n, feature in enumerate(document.get("features") or [], start=1):
            props = (feature or {}).get("properties") or {} if isinstance(feature, dict) else {}
            raw = props.get(field)
            grade = parse_grade(raw)
            if grade is None:
                raise GridRejected(f"susceptibility feature {n}: {field}={raw!r} is not a grade (high/medium/low/none)",
                                   message_zh=f"易发性分区第{n}个要素：{field}={raw} 不是易发等级",
                                   feature=n)  # fmt: skip
            try:
                geom = shapely.geometry.shape(feature["geometry"])
            except (KeyError, TypeError, ValueError, AttributeError, shapely.errors.GEOSException):
                raise GridRejected(f"susceptibility feature {n}: bad geometry",
                                   message_zh=f"易发性分区第{n}个要素：几何无效", feature=n) from None  # fmt: skip
            if geom.geom_type not in ("Polygon", "MultiPolygon") or not geom.is_valid:
                raise GridRejected(f"susceptibility feature {n}: needs a valid (multi)polygon",
                                   message_zh=f"易发性分区第{n}个要素须为有效面", feature=n)  # fmt: skip
            geoms.append(geom)
            grades.append(grade)
        return cls(geoms, grades, WGS84)


def rasterize(zoning: Zoning, like: Grid) -> npt.NDArray[np.uint8]:
    """Grades of ``like``'s cells from the zoning polygons (higher grade where they overlap)."""
    from rasterio import features

    geoms = np.asarray(list(zoning.geoms), dtype=object)
    grades = np.asarray(list(zoning.grades), dtype=np.int64)
    if geoms.size != grades.size:
        raise GridRejected(
            f"zoning: {geoms.size} polygons and {grades.size} grades", message_zh="分区面与等级个数不一致"
        )
    bad = ~np.isin(grades, GRADES)
    if bad.any():
        raise GridRejected(f"zoning: grade {grades[bad][0]} is not 0-3", message_zh="易发等级须为0-3")
    keep = np.array([g is not None and not g.is_empty for g in geoms], dtype=bool) & (grades > NONE)
    geoms, grades = geoms[keep], grades[keep]
    if not geoms.size:
        return np.zeros(like.shape, np.uint8)
    src = as_crs(zoning.crs)
    if not same_crs(src, like.crs):
        tf = Transformer.from_crs(src, like.crs, always_xy=True)
        geoms = shapely.transform(geoms, lambda xy: np.column_stack(tf.transform(xy[:, 0], xy[:, 1])))
    order = np.argsort(grades, kind="stable")  # burnt in order: the higher grade wins
    shapes = ((geoms[i], int(grades[i])) for i in order)
    return features.rasterize(shapes, out_shape=like.shape, transform=like.transform, fill=NONE, dtype="uint8")


def grades_from_raster(grid: Grid, like: Grid) -> npt.NDArray[np.uint8]:
    """Grades of ``like``'s cells from a grades raster (0-3, NaN outside), resampled if need be."""
    values = grid.values
    present = ~np.isnan(values)
    bad = present & ~np.isin(values, GRADES)
    if bad.any():
        r, c = (int(v) for v in np.argwhere(bad)[0])
        raise GridRejected(f"{grid.label}: susceptibility value {values[r, c]:g} at row {r}, column {c} is not a "
                           "grade 0-3", message_zh=f"{grid.label}：第{r}行第{c}列易发等级{values[r, c]:g}不是0-3",
                           file=grid.source or None, row=r, column=c)  # fmt: skip
    on = grid.resample_to(like, "max") if not grid.aligned(like) else grid
    if np.isnan(on.values).all():
        raise GridRejected(f"{grid.label}: the susceptibility raster does not overlap the rain grid "
                           f"({grid.describe()} vs {like.describe()})",
                           message_zh=f"{grid.label}：易发性栅格与降雨栅格没有重叠（坐标系或范围有误？）")  # fmt: skip
    return np.nan_to_num(on.values, nan=NONE).astype(np.uint8)


def grades_on(like: Grid, susceptibility: Grid | Zoning | None) -> npt.NDArray[np.uint8]:
    """Grades of every cell of ``like``: from polygons, a raster, or (None) high everywhere."""
    if susceptibility is None:
        return np.full(like.shape, HIGH, np.uint8)
    if isinstance(susceptibility, Zoning):
        return rasterize(susceptibility, like)
    return grades_from_raster(susceptibility, like)


def susceptibility_from_polygons(geoms: Sequence[Any], grades: Sequence[int], like: Grid, crs: CRS = WGS84) -> Grid:
    """The zoning as a grades grid on ``like`` (float, 0 outside every polygon)."""
    return like.with_values(rasterize(Zoning(geoms, grades, crs), like).astype(np.float32), source="zoning polygons")


def susceptibility_from_geojson(document: Any, like: Grid, *, field: str = "grade") -> Grid:
    """A GeoJSON FeatureCollection of zoning polygons (lon/lat) as a grades grid on ``like``."""
    z = Zoning.from_geojson(document, field=field)
    return susceptibility_from_polygons(z.geoms, z.grades, like, z.crs)
