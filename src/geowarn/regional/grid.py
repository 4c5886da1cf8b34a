"""A raster on a regular grid: values, affine transform (GDAL order), CRS, and NaN as no data.

Grids are north-up and unrotated (row 0 is the northern edge), as GeoTIFF, ESRI ASCII and most
NetCDF rain products are once flipped; the readers flip south-up files and refuse rotated ones.
Missing cells (no data) are NaN in ``values``; :attr:`Grid.missing` is the mask.

Cell areas on a geographic grid are exact on the CRS's ellipsoid: the area of a cell between
latitudes φ1 and φ2 and Δλ wide is ``Δλ · a²/2 · [q(φ2) − q(φ1)]`` with the authalic function q
(Snyder 1987, *Map Projections — A Working Manual*, USGS PP 1395, eq. 3-12).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from affine import Affine
from pyproj import CRS, Transformer

from geowarn.errors import GridRejected

WGS84 = CRS.from_epsg(4326)
EARTH_RADIUS_KM = 6371.0088  # mean radius (IUGG), for distances between gauges and cells
FloatArray = npt.NDArray[np.floating[Any]]
Resampling = Literal["nearest", "bilinear", "average", "max", "min", "mode"]


def same_crs(a: CRS, b: CRS) -> bool:
    """The same coordinates: equal, or equal but for axis order or names (a GeoTIFF's, a NetCDF's
    and an ESRI .prj's rendering of one EPSG code differ in those)."""
    if a == b or a.equals(b, ignore_axis_order=True):
        return True
    with warnings.catch_warnings():  # PROJ strings drop names and axis order: exactly what we want here
        warnings.simplefilter("ignore", UserWarning)
        return bool(a.to_proj4() == b.to_proj4())


def as_crs(crs: CRS | str | int | None) -> CRS:
    """A pyproj CRS from a CRS, "EPSG:4490", 4490 or WKT (None → WGS84)."""
    if crs is None:
        return WGS84
    if isinstance(crs, CRS):
        return crs
    try:
        return CRS.from_user_input(crs)
    except Exception as exc:  # pyproj raises CRSError, a ValueError subclass, or TypeError
        raise GridRejected(f"unknown CRS {crs!r}: {exc}", message_zh=f"无法识别的坐标系：{crs}") from None


@dataclass(slots=True, eq=False)
class Grid:
    """Values (2-D float32 or float64, NaN = no data) on a north-up grid in ``crs``.

    ``source`` names where the grid came from (file, band or variable) so that errors about it can
    say so.
    """

    values: FloatArray
    transform: Affine
    crs: CRS = WGS84
    source: str = ""

    def __post_init__(self) -> None:
        values = np.asarray(self.values)
        if values.dtype not in (np.float32, np.float64):
            values = values.astype(np.float64)
        if values.ndim != 2 or values.shape[0] == 0 or values.shape[1] == 0:
            raise GridRejected(f"{self.label}: a grid needs a non-empty 2-D array, got shape {values.shape}",
                               message_zh=f"{self.label}：栅格须为非空二维数组")  # fmt: skip
        t = self.transform
        if t.b != 0 or t.d != 0 or t.a <= 0 or t.e >= 0:
            raise GridRejected(f"{self.label}: only north-up, unrotated grids are supported ({tuple(t)[:6]})",
                               message_zh=f"{self.label}：仅支持北向朝上、无旋转的栅格")  # fmt: skip
        self.values = values
        self.crs = as_crs(self.crs)

    # ----------------------------------------------------------------------------- construction

    @classmethod
    def regular(
        cls, west: float, north: float, cell: float | tuple[float, float], values: npt.ArrayLike,
        crs: CRS | str | int = WGS84, source: str = "",
    ) -> Grid:  # fmt: skip
        """A grid from its north-west corner and cell size (one size, or (dx, dy))."""
        dx, dy = (cell, cell) if isinstance(cell, int | float) else cell
        return cls(np.asarray(values), Affine(float(dx), 0.0, west, 0.0, -float(dy), north), as_crs(crs), source)

    def with_values(self, values: npt.ArrayLike, source: str | None = None) -> Grid:
        """A grid on the same cells holding other values."""
        arr = np.asarray(values)
        if arr.shape != self.shape:
            raise GridRejected(
                f"values of shape {arr.shape} on a grid of {self.shape}", message_zh="数组行列数与栅格不符"
            )
        return Grid(arr, self.transform, self.crs, self.source if source is None else source)

    # ----------------------------------------------------------------------------- geometry

    @property
    def label(self) -> str:
        return self.source or "grid"

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.values.shape[0]), int(self.values.shape[1]))

    @property
    def cell(self) -> tuple[float, float]:
        """Cell width and height, in CRS units (both positive)."""
        return (float(self.transform.a), float(-self.transform.e))

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(west, south, east, north)."""
        rows, cols = self.shape
        t = self.transform
        return (t.c, t.f + rows * t.e, t.c + cols * t.a, t.f)

    @property
    def missing(self) -> npt.NDArray[np.bool_]:
        """The no-data mask (True where a value is NaN)."""
        return np.isnan(self.values)

    def centres(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """x of the column centres and y of the row centres (1-D; mesh them for every cell)."""
        rows, cols = self.shape
        t = self.transform
        xs = t.c + (np.arange(cols, dtype=np.float64) + 0.5) * t.a
        ys = t.f + (np.arange(rows, dtype=np.float64) + 0.5) * t.e
        return xs, ys

    def index(
        self, x: npt.ArrayLike, y: npt.ArrayLike
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.bool_]]:
        """Row and column of the cells holding points (x, y) in the grid's CRS, and which are inside
        (rows and columns of points outside are 0). A point on a cell edge belongs to the cell east
        or south of it."""
        t = self.transform
        col_f = (np.asarray(x, np.float64) - t.c) / t.a
        row_f = (np.asarray(y, np.float64) - t.f) / t.e
        with np.errstate(invalid="ignore"):
            inside = (row_f >= 0) & (row_f < self.shape[0]) & (col_f >= 0) & (col_f < self.shape[1])
        rows = np.where(inside, row_f, 0).astype(np.intp)
        cols = np.where(inside, col_f, 0).astype(np.intp)
        return rows, cols, inside

    def sample(self, x: npt.ArrayLike, y: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Value of the cell under each point (NaN outside the grid); vectorised."""
        r, c, inside = self.index(x, y)
        return np.where(inside, self.values[r, c], np.nan).astype(np.float64)

    def aligned(self, other: Grid) -> bool:
        """Same cells: shape, origin and cell size (to 1e-6 of a cell) and CRS."""
        if self.shape != other.shape or not same_crs(self.crs, other.crs):
            return False
        tol = 1e-6 * min(abs(self.transform.a), abs(self.transform.e))
        return all(
            abs(p - q) <= tol for p, q in zip(tuple(self.transform)[:6], tuple(other.transform)[:6], strict=True)
        )

    def describe(self) -> str:
        w, _, _, n = self.bounds
        return (f"{self.shape[0]}×{self.shape[1]} cells of {self.cell[0]:g}×{self.cell[1]:g}, "
                f"west {w:g} north {n:g}, {self.crs.to_string()}")  # fmt: skip

    # ----------------------------------------------------------------------------- areas

    def row_cell_area_km2(self) -> npt.NDArray[np.float64]:
        """Area (km²) of one cell in each row: exact on the ellipsoid for geographic grids, planar
        (CRS units squared) for projected ones."""
        rows, _ = self.shape
        t = self.transform
        if self.crs.is_geographic:
            edges = t.f + np.arange(rows + 1, dtype=np.float64) * t.e
            q = authalic_q(np.radians(edges), self.crs)
            a_m, _ = axes_m(self.crs)
            return np.asarray(np.abs(np.diff(q)) * math.radians(abs(t.a)) * a_m * a_m / 2 / 1e6, np.float64)
        unit = linear_unit_m(self.crs)
        return np.full(rows, abs(t.a * t.e) * unit * unit / 1e6)

    # ----------------------------------------------------------------------------- resampling

    def resample_to(self, like: Grid, method: Resampling = "nearest") -> Grid:
        """This grid's values on ``like``'s cells (reprojected when the CRS differs), by GDAL warp.

        ``nearest`` suits grades and any upsampling; ``average`` rain from a finer grid; ``max`` the
        conservative choice for grades from a finer grid. Cells ``like`` has outside this grid are NaN.
        """
        from rasterio.crs import CRS as RioCRS
        from rasterio.warp import Resampling as Rs
        from rasterio.warp import reproject

        if self.aligned(like):
            return Grid(self.values, like.transform, like.crs, self.source)
        dtype = self.values.dtype
        out = np.full(like.shape, np.nan, dtype)
        reproject(source=self.values, destination=out, src_transform=self.transform,
                  src_crs=RioCRS.from_wkt(self.crs.to_wkt()), dst_transform=like.transform,
                  dst_crs=RioCRS.from_wkt(like.crs.to_wkt()), src_nodata=np.nan, dst_nodata=np.nan,
                  resampling=Rs[method])  # fmt: skip
        return Grid(out, like.transform, like.crs, self.source)


def axes_m(crs: CRS) -> tuple[float, float]:
    """Semi-major and semi-minor axes (m) of the CRS's ellipsoid (GRS80 if it has none)."""
    ell = crs.ellipsoid
    if ell is None:
        return (6378137.0, 6356752.314245179)
    return (float(ell.semi_major_metre), float(ell.semi_minor_metre))


def authalic_q(phi: npt.NDArray[np.float64], crs: CRS) -> npt.NDArray[np.float64]:
    """Snyder's q(φ) on the CRS ellipsoid (eq. 3-12); the area between the equator and latitude φ
    of a strip Δλ radians wide is ``Δλ · a²/2 · q(φ)`` (2 sin φ on a sphere)."""
    a, b = axes_m(crs)
    e2 = 1.0 - (b * b) / (a * a)
    s = np.sin(phi)
    if e2 < 1e-12:  # a sphere
        return np.asarray(2.0 * s, np.float64)
    e = math.sqrt(e2)
    return np.asarray((1.0 - e2) * (s / (1.0 - e2 * s * s) - np.log((1.0 - e * s) / (1.0 + e * s)) / (2.0 * e)))


def linear_unit_m(crs: CRS) -> float:
    """Metres per unit of a projected CRS's first axis (1 for metres)."""
    info = crs.axis_info
    return float(info[0].unit_conversion_factor) if info else 1.0


def to_crs_xy(
    x: npt.ArrayLike, y: npt.ArrayLike, src: CRS, dst: CRS
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Points from ``src`` to ``dst`` (x = easting/longitude first); a no-op when the CRS are equal."""
    xa, ya = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if same_crs(src, dst):
        return xa, ya
    tx, ty = Transformer.from_crs(src, dst, always_xy=True).transform(xa, ya)
    return np.asarray(tx, np.float64), np.asarray(ty, np.float64)


def require_aligned(grids: list[Grid], what: str) -> None:
    """Refuse grids that do not share their cells, naming both and what differs."""
    first = grids[0]
    for i, g in enumerate(grids[1:], start=2):
        if first.aligned(g):
            continue
        if g.shape != first.shape:
            why, why_zh = f"shape {g.shape} vs {first.shape}", f"行列数 {g.shape} 与 {first.shape} 不同"
        elif not same_crs(g.crs, first.crs):
            why, why_zh = f"CRS {g.crs.to_string()} vs {first.crs.to_string()}", "坐标系不同"
        elif not np.allclose(g.cell, first.cell, rtol=1e-6):
            why, why_zh = f"cell size {g.cell} vs {first.cell}", "分辨率不同"
        else:
            why, why_zh = (
                f"origin ({g.transform.c:g}, {g.transform.f:g}) vs ({first.transform.c:g}, {first.transform.f:g})",
                "原点不同",
            )
        raise GridRejected(
            f"{what}: grid {i} ({g.label}) does not match grid 1 ({first.label}): {why}",
            message_zh=f"{what}：第{i}个栅格（{g.label}）与第1个栅格（{first.label}）不一致：{why_zh}",
            file=g.source or None,
            reason="grids do not match",
        )
