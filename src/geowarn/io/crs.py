"""Coordinate reference systems of county data and their conversion to EPSG:4326 longitude/latitude.

County ledgers and shapefiles use WGS84 (EPSG:4326), CGCS2000 geographic (EPSG:4490) or CGCS2000
3-degree Gauss–Krüger zones (GB/T 18314 / CH/T 2014 conventions): EPSG:4513–4533 carry the zone
number in front of the easting (zone 40 → ``40 500 000`` at the central meridian 120°E),
EPSG:4534–4554 do not (easting ``500 000`` at the central meridian). Survey ledgers call the
northing *X* and the easting *Y*; GIS software the other way round — :func:`easting_northing`
recognises the easting by its magnitude. The checks here are pure: arrays in, masks out.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

GK_PREFIXED = range(4513, 4534)  # zone 25 … 45, easting with zone prefix
GK_PLAIN = range(4534, 4555)  # central meridian 75°E … 135°E, no prefix
#: China's rough extent (lon 73–135°E, lat 3–54°N), the last-resort plausibility box.
CHINA_BBOX = (73.0, 3.0, 135.0, 54.0)


@dataclass(frozen=True, slots=True)
class SourceCrs:
    """A resolved source CRS with what the checks need to know about it."""

    name: str  # "EPSG:4528" or the user's text
    crs: CRS
    geographic: bool
    gk_zone: int | None  # 3-degree zone number (central meridian / 3) for CGCS2000 GK codes
    gk_prefixed: bool


def gk_epsg(zone: int, *, prefixed: bool) -> int:
    """EPSG code of CGCS2000 3-degree Gauss–Krüger ``zone`` (25–45)."""
    return (4513 if prefixed else 4534) + zone - 25


def parse_crs(text: str | int) -> SourceCrs:
    """Resolve ``EPSG:4528``, ``4528``, a WKT or PROJ string. Raises ``ValueError`` when unknown."""
    raw = str(text).strip()
    try:
        crs = CRS.from_user_input(int(raw) if raw.isdigit() else raw)
    except CRSError as exc:
        raise ValueError(f"unknown CRS {raw!r}") from exc
    epsg = crs.to_epsg()
    zone: int | None = None
    prefixed = False
    if epsg is not None and epsg in GK_PREFIXED:
        zone, prefixed = epsg - 4513 + 25, True
    elif epsg is not None and epsg in GK_PLAIN:
        zone = epsg - 4534 + 25
    name = f"EPSG:{epsg}" if epsg is not None else raw[:32]
    return SourceCrs(name=name, crs=crs, geographic=crs.is_geographic, gk_zone=zone, gk_prefixed=prefixed)


def zone_prefix(x: FloatArray) -> npt.NDArray[np.int64]:
    """The zone number written in front of an easting (``40 512 345.6`` → 40); 0 when there is none."""
    p = np.floor(np.abs(np.nan_to_num(x)) / 1e6).astype(np.int64)
    return np.where((p >= 13) & (p <= 45), p, 0)


def easting_northing(a: FloatArray, b: FloatArray) -> tuple[FloatArray, FloatArray, bool]:
    """Given the two projected columns, return (easting, northing, swapped).

    In China northings are 7 digits (≈ 330 000–6 000 000 m), eastings 6 digits (without prefix) or
    8 digits (with the zone). A file whose first column looks like northings is in survey order.
    """
    ma, mb = float(np.nanmedian(np.abs(a))), float(np.nanmedian(np.abs(b)))
    a_north = 1e6 <= ma < 1e7
    b_east = mb >= 1e7 or mb < 1e6
    if a_north and b_east:
        return b, a, True
    return a, b, False


def guess_gk(easting: FloatArray) -> SourceCrs | None:
    """A CGCS2000 GK zone from the prefixes of the eastings, when they all carry the same one."""
    finite = easting[np.isfinite(easting)]
    if len(finite) == 0:
        return None
    zones = np.unique(zone_prefix(finite))
    if len(zones) == 1 and zones[0] != 0:
        return parse_crs(f"EPSG:{gk_epsg(int(zones[0]), prefixed=True)}")
    return None


def looks_projected(x: FloatArray, y: FloatArray) -> BoolArray:
    """Rows whose values cannot be degrees."""
    return (np.abs(x) > 180) | (np.abs(y) > 90)


def looks_swapped(lon: FloatArray, lat: FloatArray) -> BoolArray:
    """Rows where the longitude looks like a Chinese latitude and the latitude like a longitude."""
    return (lon >= 18) & (lon <= 54) & (lat >= 73) & (lat <= 135)


def zone_mismatch(easting: FloatArray, src: SourceCrs) -> tuple[BoolArray, npt.NDArray[np.int64]]:
    """Rows whose easting disagrees with the declared GK zone, and the prefix found (0 = none).

    For prefixed codes a row is wrong when its prefix is not the zone; for plain codes when it
    carries any prefix (or is far beyond a zone's ±3° width, 0–1 000 000 m).
    """
    prefix = zone_prefix(easting)
    if src.gk_zone is None:
        return np.zeros(len(easting), dtype=bool), prefix
    if src.gk_prefixed:
        return np.isfinite(easting) & (prefix != src.gk_zone), prefix
    return np.isfinite(easting) & ((prefix != 0) | (easting < 0) | (easting > 1e6)), prefix


@lru_cache(maxsize=32)
def _transformer(src_wkt: str, dst: str) -> Transformer:
    return Transformer.from_crs(CRS.from_wkt(src_wkt), CRS.from_user_input(dst), always_xy=True)


def transformer(src: CRS, dst: str | CRS = "EPSG:4326") -> Transformer:
    dst_s = dst if isinstance(dst, str) else dst.to_wkt()
    return _transformer(src.to_wkt(), dst_s)


def to_lonlat(x: FloatArray, y: FloatArray, src: SourceCrs) -> tuple[FloatArray, FloatArray]:
    """Coordinates of ``src`` to EPSG:4326 lon/lat (identity for EPSG:4326 itself)."""
    if src.name == "EPSG:4326":
        return x.astype(np.float64), y.astype(np.float64)
    lon, lat = transformer(src.crs).transform(x, y)
    return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)


def reproject(geoms: npt.NDArray[np.object_], src: CRS | str, dst: CRS | str) -> npt.NDArray[np.object_]:
    """Geometries from ``src`` to ``dst`` (always x=easting/longitude, y=northing/latitude)."""
    s = src if isinstance(src, CRS) else CRS.from_user_input(src)
    d = dst if isinstance(dst, CRS) else CRS.from_user_input(dst)
    if s.equals(d):
        return geoms
    t = transformer(s, d)

    def move(coords: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        xx, yy = t.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([xx, yy])

    return np.asarray(shapely.transform(geoms, move), dtype=object)
