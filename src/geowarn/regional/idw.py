"""Station rainfall onto a grid by inverse-distance weighting (Shepard 1968).

Distances are great-circle approximations on a local equirectangular plane (exact enough within a
province); each cell uses its ``k`` nearest gauges within ``max_km`` (cells with none stay NaN) and
weights 1/d^power; a cell on a gauge takes the gauge's value exactly.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree

from geowarn.errors import GridRejected
from geowarn.regional.grid import EARTH_RADIUS_KM, Grid


def _plane(lon: npt.NDArray[np.float64], lat: npt.NDArray[np.float64], lat0: float) -> npt.NDArray[np.float64]:
    k = math.pi / 180 * EARTH_RADIUS_KM
    return np.column_stack([lon * k * math.cos(math.radians(lat0)), lat * k])


def idw(
    lon: npt.ArrayLike, lat: npt.ArrayLike, value: npt.ArrayLike, like: Grid, *, power: float = 2.0, k: int = 8,
    max_km: float = 50.0,
) -> Grid:  # fmt: skip
    """A grid aligned with ``like`` (geographic) interpolated from gauges at (lon, lat)."""
    if not like.crs.is_geographic:
        raise GridRejected("IDW needs a longitude/latitude target grid", message_zh="插值目标栅格须为经纬度坐标")
    x = np.asarray(lon, np.float64)
    y = np.asarray(lat, np.float64)
    v = np.asarray(value, np.float64)
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(v) & (v >= 0)
    x, y, v = x[ok], y[ok], v[ok]
    rows, cols = like.shape
    if v.size == 0:
        return Grid(np.full((rows, cols), np.nan), like.transform, like.crs)
    xs, ys = like.centres()
    lat0 = float(np.mean(ys))
    gx, gy = np.meshgrid(xs, ys)
    tree = cKDTree(_plane(x, y, lat0))
    kk = min(k, v.size)
    dist, idx = tree.query(_plane(gx.ravel(), gy.ravel(), lat0), k=kk, distance_upper_bound=max_km)
    dist = dist.reshape(-1, kk)
    idx = idx.reshape(-1, kk)
    found = np.isfinite(dist)
    safe_idx = np.where(found, idx, 0)
    with np.errstate(divide="ignore"):
        w = np.where(found, 1.0 / np.maximum(dist, 1e-9) ** power, 0.0)
    exact = found & (dist < 1e-6)
    total = w.sum(axis=1)
    out = np.where(total > 0, (w * v[safe_idx]).sum(axis=1) / np.where(total > 0, total, 1), np.nan)
    hit = exact.any(axis=1)
    out[hit] = v[safe_idx[hit, np.argmax(exact[hit], axis=1)]]
    return Grid(out.reshape(rows, cols), like.transform, like.crs)
