"""A raster on a regular grid: values, affine transform (GDAL order) and CRS.

Row 0 is the northern edge (north-up grids, as GeoTIFF, ESRI ASCII and most NetCDF rain products
once flipped). Missing cells are NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from affine import Affine
from pyproj import CRS

from geowarn.errors import GridRejected

WGS84 = CRS.from_epsg(4326)
EARTH_RADIUS_KM = 6371.0088  # mean radius (IUGG)


@dataclass(slots=True)
class Grid:
    values: npt.NDArray[np.float64]
    transform: Affine
    crs: CRS = WGS84

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.values.shape[0]), int(self.values.shape[1]))

    @property
    def cell(self) -> tuple[float, float]:
        return (float(self.transform.a), float(-self.transform.e))

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        rows, cols = self.shape
        t = self.transform
        x0, y0 = t.c, t.f
        x1, y1 = t.c + cols * t.a, t.f + rows * t.e
        return (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))

    @classmethod
    def regular(cls, west: float, north: float, cell: float, values: npt.ArrayLike, crs: CRS = WGS84) -> Grid:
        return cls(np.asarray(values, np.float64), Affine(cell, 0.0, west, 0.0, -cell, north), crs)

    def index(
        self, x: npt.ArrayLike, y: npt.ArrayLike
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
        """Row, column of the cells holding points (x, y) in the grid's CRS, and which are inside."""
        t = self.transform  # north-up, no rotation (the readers refuse rotated grids)
        col_f = (np.asarray(x, np.float64) - t.c) / t.a
        row_f = (np.asarray(y, np.float64) - t.f) / t.e
        rows, cols = np.floor(row_f).astype(np.int64), np.floor(col_f).astype(np.int64)
        inside = (rows >= 0) & (rows < self.shape[0]) & (cols >= 0) & (cols < self.shape[1])
        return np.where(inside, rows, 0), np.where(inside, cols, 0), inside

    def sample(self, x: npt.ArrayLike, y: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Value of the cell under each point (NaN outside)."""
        r, c, inside = self.index(x, y)
        return np.where(inside, self.values[r, c], np.nan)

    def centres(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """x of the column centres and y of the row centres."""
        rows, cols = self.shape
        xs = self.transform.c + (np.arange(cols, dtype=np.float64) + 0.5) * self.transform.a
        ys = self.transform.f + (np.arange(rows, dtype=np.float64) + 0.5) * self.transform.e
        return np.asarray(xs, np.float64), np.asarray(ys, np.float64)

    def aligned(self, other: Grid) -> bool:
        return self.shape == other.shape and self.transform.almost_equals(other.transform) and self.crs == other.crs

    def row_cell_area_km2(self) -> npt.NDArray[np.float64]:
        """Area of one cell in each row (km²): exact on the sphere for geographic grids."""
        rows, _ = self.shape
        if self.crs.is_geographic:
            a, e, f = self.transform.a, self.transform.e, self.transform.f
            lat_top = f + np.arange(rows) * e
            lat_bot = lat_top + e
            band = np.abs(np.sin(np.radians(lat_top)) - np.sin(np.radians(lat_bot)))
            return np.asarray(EARTH_RADIUS_KM**2 * math.radians(abs(a)) * band, np.float64)
        unit = self.crs.axis_info[0].unit_conversion_factor if self.crs.axis_info else 1.0
        return np.full(rows, abs(self.transform.a * self.transform.e) * unit * unit / 1e6)


def require_aligned(grids: list[Grid], what: str) -> None:
    first = grids[0]
    for i, g in enumerate(grids[1:], start=2):
        if not first.aligned(g):
            raise GridRejected(
                f"{what}: grid {i} does not match grid 1 (shape {g.shape} vs {first.shape}, or origin, cell or CRS)",
                message_zh=f"{what}：第{i}个栅格与第1个的行列数、原点、分辨率或坐标系不一致",
            )
