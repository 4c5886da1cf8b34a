"""Warning areas: the level grid dissolved into polygons per level.

Two readings, both kept:

* **exclusive** — the cells at exactly level L: what a warning map draws, one colour per area,
  the polygons of different levels tiling without overlap;
* **at least** — the cells at level ≥ L: the area to which level L's response applies (an orange
  area is inside the yellow-or-above area), for counting and for "is my village in a yellow-or-above
  warning".

Connected cells (edge-connected, 4-connectivity: cells meeting at a corner are separate polygons)
become one polygon with its holes, by GDAL's polygonize (rasterio ``features.shapes``); the result
per level is a shapely MultiPolygon in the grid's CRS. Areas (km²) of levels come from cell counts
per row times each row's exact cell area (:meth:`Grid.row_cell_area_km2`); areas of any polygons
from :func:`polygon_area_km2`, exact for cell-edge polygons on the ellipsoid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from pyproj import CRS, Transformer

from geowarn.regional.grid import Grid, axes_m, linear_unit_m

LEVELS = (1, 2, 3, 4)


@dataclass(slots=True)
class WarningAreas:
    """Polygons (shapely MultiPolygon, grid CRS) and areas (km²) per level 1-4; levels with no cell
    are absent from the dicts."""

    exclusive: dict[int, Any] = field(default_factory=dict)
    at_least: dict[int, Any] = field(default_factory=dict)
    km2: dict[int, float] = field(default_factory=dict)
    at_least_km2: dict[int, float] = field(default_factory=dict)


def _polygonize(mask_values: npt.NDArray[np.uint8], like: Grid) -> dict[int, Any]:
    from rasterio import features

    parts: dict[int, list[Any]] = {}
    for geom, value in features.shapes(mask_values, mask=mask_values > 0, transform=like.transform, connectivity=4):
        shell, *holes = geom["coordinates"]
        parts.setdefault(int(value), []).append(shapely.Polygon(shell, holes))
    return {lv: shapely.MultiPolygon(polys) for lv, polys in sorted(parts.items())}


def dissolve(levels: npt.NDArray[np.uint8], like: Grid) -> dict[int, Any]:
    """Level → MultiPolygon of the cells at exactly that level."""
    return _polygonize(np.ascontiguousarray(levels, np.uint8), like)


def dissolve_at_least(levels: npt.NDArray[np.uint8], like: Grid) -> dict[int, Any]:
    """Level L → MultiPolygon of the cells at level L or above (nested: 4 ⊆ 3 ⊆ 2 ⊆ 1)."""
    out: dict[int, Any] = {}
    for lv in LEVELS:
        mask = (levels >= lv).view(np.uint8)
        if mask.any():
            out[lv] = _polygonize(mask, like)[1]
    return out


def areas_km2(levels: npt.NDArray[np.uint8], like: Grid) -> dict[int, float]:
    """Level → area (km²) of the cells at exactly that level."""
    per_row = like.row_cell_area_km2()
    counts = np.stack([(levels == lv).sum(axis=1) for lv in LEVELS])
    return {lv: float(counts[i] @ per_row) for i, lv in enumerate(LEVELS) if counts[i].any()}


def at_least_km2(exclusive: dict[int, float]) -> dict[int, float]:
    """Level L → area at level L or above, from the exclusive areas."""
    out, running = {}, 0.0
    for lv in sorted(LEVELS, reverse=True):
        running += exclusive.get(lv, 0.0)
        if running > 0:
            out[lv] = running
    return dict(sorted(out.items()))


def warning_areas(levels: npt.NDArray[np.uint8], like: Grid, *, at_least: bool = True) -> WarningAreas:
    """Polygons and areas of both readings (``at_least=False`` skips the nested polygons)."""
    km2 = areas_km2(levels, like)
    return WarningAreas(dissolve(levels, like), dissolve_at_least(levels, like) if at_least else {}, km2,
                        at_least_km2(km2))  # fmt: skip


def polygon_area_km2(geoms: Any, crs: CRS) -> npt.NDArray[np.float64]:
    """Area (km²) of each polygon (vectorised). In a geographic CRS the vertices go to the cylindrical
    equal-area projection of the CRS's ellipsoid (Snyder 1987, §10), where cell-edge polygons (edges
    along meridians and parallels) keep their exact area; other edges are short chords, close enough
    for warning areas. In a projected CRS: planar area in its units, converted to km²."""
    arr = np.asarray(geoms, dtype=object)
    if crs.is_geographic:
        a, b = axes_m(crs)
        cea = CRS.from_dict({"proj": "cea", "lon_0": 0, "lat_ts": 0, "a": a, "b": b, "units": "m"})
        tf = Transformer.from_crs(crs, cea, always_xy=True)
        projected = shapely.transform(arr, lambda xy: np.column_stack(tf.transform(xy[:, 0], xy[:, 1])))
        return np.asarray(shapely.area(projected), np.float64) / 1e6
    unit = linear_unit_m(crs)
    return np.asarray(shapely.area(arr), np.float64) * unit * unit / 1e6
