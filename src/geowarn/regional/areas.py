"""Warning areas: the level grid dissolved into polygons, one MultiPolygon per level.

Areas are exclusive (the cells at exactly that level), as maps draw them; "at least level L" is
the union of the levels >= L. Connected cells of a level become one polygon with its holes (GDAL
polygonize through rasterio); areas in km² are summed from exact cell areas per row.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from rasterio import features

from geowarn.regional.grid import Grid


def dissolve(levels: npt.NDArray[np.uint8], like: Grid) -> dict[int, Any]:
    """Level (1-4) → shapely MultiPolygon of its cells, in the grid's CRS."""
    parts: dict[int, list[Any]] = {}
    for geom, value in features.shapes(levels, mask=levels > 0, transform=like.transform, connectivity=4):
        parts.setdefault(int(value), []).append(shapely.geometry.shape(geom))
    return {lv: shapely.MultiPolygon(polys) for lv, polys in sorted(parts.items())}


def areas_km2(levels: npt.NDArray[np.uint8], like: Grid) -> dict[int, float]:
    """Area of each level (km²) from cell counts per row and each row's cell area."""
    per_row = like.row_cell_area_km2()
    out = {}
    for lv in range(1, 5):
        n = (levels == lv).sum(axis=1)
        if n.any():
            out[lv] = float((n * per_row).sum())
    return out
