"""Pure spatial functions: no database, numpy in, numpy out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from pyproj import Geod

WGS84 = Geod(ellps="WGS84")

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def geodesic_distance_m(lon1: Any, lat1: Any, lon2: Any, lat2: Any) -> FloatArray:
    """Distance on the WGS84 ellipsoid in metres (Karney's algorithm, as PostGIS geography)."""
    lon1, lat1, lon2, lat2 = np.broadcast_arrays(
        np.asarray(lon1, float), np.asarray(lat1, float), np.asarray(lon2, float), np.asarray(lat2, float)
    )
    _, _, dist = WGS84.inv(lon1, lat1, lon2, lat2)
    return np.asarray(dist, dtype=np.float64)


def points_in_polygons(
    xs: npt.ArrayLike, ys: npt.ArrayLike, polygons: Sequence[Any] | npt.NDArray[Any]
) -> tuple[IntArray, IntArray]:
    """Every (point, polygon) pair where the polygon covers the point (boundary included).

    Returns two index arrays of equal length, sorted by point then polygon. Uses a shapely STRtree
    over the polygons; ``covers`` matches PostGIS ``ST_Covers``.
    """
    pts = shapely.points(np.asarray(xs, float), np.asarray(ys, float))
    polys = np.asarray(polygons, dtype=object)
    if len(pts) == 0 or len(polys) == 0:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty
    # A tree of the points queried with the polygons: shapely prepares each query polygon, which
    # makes the many point tests of a large polygon cheap (faster than a tree of the polygons).
    tree = shapely.STRtree(pts)
    poly_idx, pt_idx = tree.query(polys, predicate="covers")
    order = np.lexsort((poly_idx, pt_idx))
    return pt_idx[order].astype(np.int64), poly_idx[order].astype(np.int64)


def assign_points_to_polygons(
    xs: npt.ArrayLike,
    ys: npt.ArrayLike,
    polygons: Sequence[Any] | npt.NDArray[Any],
    rank: npt.ArrayLike | None = None,
) -> IntArray:
    """For each point, the index of the polygon that covers it, or -1.

    Where polygons overlap, the one with the lowest ``rank`` wins (e.g. risk grade high=0 before
    medium=1), then the lowest index, so the answer does not depend on tree order.
    """
    n = len(np.asarray(xs))
    out = np.full(n, -1, dtype=np.int64)
    pt_idx, poly_idx = points_in_polygons(xs, ys, polygons)
    if len(pt_idx) == 0:
        return out
    r = np.zeros(len(polygons), dtype=np.int64) if rank is None else np.asarray(rank, dtype=np.int64)
    order = np.lexsort((poly_idx, r[poly_idx], pt_idx))
    pt_sorted, poly_sorted = pt_idx[order], poly_idx[order]
    first = np.ones(len(pt_sorted), dtype=bool)
    first[1:] = pt_sorted[1:] != pt_sorted[:-1]
    out[pt_sorted[first]] = poly_sorted[first]
    return out


def degree_margin(lat: float, metres: float) -> tuple[float, float]:
    """A (dlon, dlat) box half-size sure to contain every point within ``metres`` of latitude ``lat``."""
    dlat = metres / 110_574.0 * 1.01 + 1e-9  # shortest degree of latitude is at the equator
    coslat = max(np.cos(np.radians(min(abs(lat) + dlat, 89.9))), 1e-6)
    dlon = metres / (111_320.0 * coslat) * 1.01 + 1e-9
    return float(dlon), float(dlat)
