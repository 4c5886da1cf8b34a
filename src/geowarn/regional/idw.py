"""Station (gauge) rainfall onto a grid by inverse-distance weighting (Shepard 1968, *A two-dimensional
interpolation function for irregularly-spaced data*, Proc. 23rd ACM National Conference).

Each cell centre takes ``Σ w_i v_i / Σ w_i`` with ``w_i = 1 / d_i^power`` over its ``k`` nearest
gauges within ``max_km`` (cells with none stay NaN); a cell centre on a gauge takes the gauge's value
exactly. Distances on a geographic grid are chords of the sphere (3-D coordinates, km): equal to the
great-circle distance within 0.01 % below 100 km and correct at any latitude, unlike a flat
longitude/latitude plane. Projected grids use plane distances in their units. Neighbours come from a
k-d tree (scipy ``cKDTree``); cells are queried in chunks so memory stays bounded on national grids.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from pyproj import CRS
from scipy.spatial import cKDTree

from geowarn.errors import GridRejected
from geowarn.regional.grid import EARTH_RADIUS_KM, Grid, as_crs, linear_unit_m, to_crs_xy

CHUNK_CELLS = 1 << 20
EXACT_KM = 1e-6  # a gauge this close to a cell centre is on it (1 mm)


def _km_coords(x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], crs: CRS) -> npt.NDArray[np.float64]:
    """Points as coordinates in km in which Euclidean distance is the (chord) distance."""
    if crs.is_geographic:
        lon, lat = np.radians(x), np.radians(y)
        c = np.cos(lat)
        return np.column_stack([c * np.cos(lon), c * np.sin(lon), np.sin(lat)]) * EARTH_RADIUS_KM
    unit_km = linear_unit_m(crs) / 1000.0
    return np.column_stack([x * unit_km, y * unit_km])


def idw(
    x: npt.ArrayLike, y: npt.ArrayLike, value: npt.ArrayLike, like: Grid, *, power: float = 2.0, k: int = 8,
    max_km: float | None = 50.0, crs: CRS | str | int | None = None,
) -> Grid:  # fmt: skip
    """A grid on ``like``'s cells interpolated from gauges at (x, y) in ``crs`` (default: ``like``'s).

    Gauges with a missing position or value are skipped; a negative value is refused (rain cannot
    be negative: a sign of an unchecked reading).
    """
    if k < 1 or power <= 0 or (max_km is not None and max_km <= 0):
        raise GridRejected(f"IDW: k ({k}), power ({power}) and max_km ({max_km}) must be positive",
                           message_zh="反距离插值参数须为正数")  # fmt: skip
    gx, gy, v = (np.atleast_1d(np.asarray(a, np.float64)) for a in (x, y, value))
    if not gx.shape == gy.shape == v.shape:
        raise GridRejected(
            f"IDW: {gx.size} x, {gy.size} y and {v.size} values", message_zh="雨量站坐标与雨量个数不一致"
        )
    with np.errstate(invalid="ignore"):
        negative = v < 0
    if negative.any():
        i = int(np.argmax(negative))
        n = int(negative.sum())
        raise GridRejected(f"IDW: {n} gauge(s) with negative rainfall (first: #{i}, {v[i]:g} mm)",
                           message_zh=f"{n}个雨量站雨量为负值", reason="negative rainfall")  # fmt: skip
    src = as_crs(crs) if crs is not None else like.crs
    gx, gy = to_crs_xy(gx, gy, src, like.crs)
    ok = np.isfinite(gx) & np.isfinite(gy) & np.isfinite(v)
    gx, gy, v = gx[ok], gy[ok], v[ok]
    rows, cols = like.shape
    out = np.full(rows * cols, np.nan)
    if v.size == 0:
        return like.with_values(out.reshape(rows, cols), source="IDW (no gauges)")
    tree = cKDTree(_km_coords(gx, gy, like.crs))
    kk = min(k, v.size)
    bound = math.inf if max_km is None else max_km
    xs, ys = like.centres()
    for start in range(0, rows * cols, CHUNK_CELLS):
        flat = np.arange(start, min(start + CHUNK_CELLS, rows * cols))
        cx, cy = xs[flat % cols], ys[flat // cols]
        dist, idx = tree.query(_km_coords(cx, cy, like.crs), k=kk, distance_upper_bound=bound)
        dist, idx = dist.reshape(-1, kk), idx.reshape(-1, kk)
        found = np.isfinite(dist)
        safe = np.where(found, idx, 0)
        with np.errstate(divide="ignore"):
            w = np.where(found, 1.0 / np.maximum(dist, EXACT_KM) ** power, 0.0)
        total = w.sum(axis=1)
        chunk = np.where(total > 0, (w * v[safe]).sum(axis=1) / np.where(total > 0, total, 1.0), np.nan)
        exact = found[:, 0] & (dist[:, 0] < EXACT_KM)  # neighbours come sorted: the nearest is first
        chunk[exact] = v[safe[exact, 0]]
        out[flat] = chunk
    return like.with_values(out.reshape(rows, cols), source=f"IDW of {v.size} gauges")
