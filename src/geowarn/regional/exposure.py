"""Who and what lies in each warning level: hazard sites, risk zones, their households and people,
per level and per township.

* A site takes the level of the cell under it (vectorised sampling of the level grid; a site
  outside the grid has level 0 and is counted in ``sites_outside``).
* A risk zone takes the **highest** level of the cells its interior overlaps — the conservative
  reading: a zone straddling yellow and orange cells is treated as orange, since its people live
  in all of it (its centroid's cell could be the lower one). A zone inside one cell takes that
  cell's level. Small zones are tested cell by cell against their bounding-box window with shapely
  (vectorised); zones over more than ``BIG_ZONE_CELLS`` cells are burnt with GDAL (all touched cells).
* Counts are given per exact level and "at least" each level (the people an orange response
  concerns are those at orange or red).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from affine import Affine
from pyproj import CRS, Transformer

from geowarn.errors import InvalidInput
from geowarn.regional.grid import WGS84, Grid, as_crs, same_crs, to_crs_xy

LEVELS = (1, 2, 3, 4)
BIG_ZONE_CELLS = 4096
PAIRS_PER_CHUNK = 1 << 20
I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]


def _same_length(what: str, **arrays: Any) -> None:
    sizes = {k: len(v) for k, v in arrays.items() if v is not None}
    if len(set(sizes.values())) > 1:
        raise InvalidInput(f"{what}: arrays of different lengths {sizes}", message_zh=f"{what}：各数组长度不一致")


@dataclass(slots=True)
class Sites:
    """Hazard sites as arrays: id, position (x, y in ``crs``; lon/lat by default), township code,
    threatened people and households."""

    ids: I64
    x: npt.NDArray[np.float64]
    y: npt.NDArray[np.float64]
    township: npt.NDArray[Any]
    people: I64
    households: I64
    crs: CRS = field(default=WGS84)

    def __post_init__(self) -> None:
        self.ids = np.asarray(self.ids, np.int64)
        self.x, self.y = np.asarray(self.x, np.float64), np.asarray(self.y, np.float64)
        self.township = np.asarray(self.township, dtype=object)
        self.people, self.households = np.asarray(self.people, np.int64), np.asarray(self.households, np.int64)
        self.crs = as_crs(self.crs)
        _same_length("sites", ids=self.ids, x=self.x, y=self.y, township=self.township, people=self.people,
                     households=self.households)  # fmt: skip

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(slots=True)
class Zones:
    """Risk zones as arrays: id, (multi)polygon in ``crs`` (None for a zone without one), people,
    households, and optionally a township code each."""

    ids: I64
    geoms: npt.NDArray[np.object_] | Sequence[Any]  # kept as an object array
    people: I64
    households: I64
    township: npt.NDArray[Any] | None = None
    crs: CRS = field(default=WGS84)

    def __post_init__(self) -> None:
        self.ids = np.asarray(self.ids, np.int64)
        geoms: npt.NDArray[np.object_] = np.empty(len(self.geoms), dtype=object)
        geoms[:] = list(self.geoms)
        self.geoms = geoms
        self.people, self.households = np.asarray(self.people, np.int64), np.asarray(self.households, np.int64)
        if self.township is not None:
            self.township = np.asarray(self.township, dtype=object)
        self.crs = as_crs(self.crs)
        _same_length("zones", ids=self.ids, geoms=self.geoms, people=self.people, households=self.households,
                     township=self.township)  # fmt: skip

    def __len__(self) -> int:
        return len(self.ids)


# --------------------------------------------------------------------------- levels of sites and zones


def _site_levels(levels: U8, like: Grid, sites: Sites) -> tuple[U8, npt.NDArray[np.bool_]]:
    x, y = to_crs_xy(sites.x, sites.y, sites.crs, like.crs)
    r, c, inside = like.index(x, y)
    return np.where(inside, levels[r, c], 0).astype(np.uint8), inside


def site_levels(levels: U8, like: Grid, sites: Sites) -> U8:
    """Level of the cell under each site (0 outside the grid)."""
    return _site_levels(levels, like, sites)[0]


def _in_grid_crs(geoms: npt.NDArray[np.object_], src: CRS, like: Grid) -> npt.NDArray[np.object_]:
    if same_crs(src, like.crs):
        return geoms
    tf = Transformer.from_crs(src, like.crs, always_xy=True)
    return np.asarray(shapely.transform(geoms, lambda xy: np.column_stack(tf.transform(xy[:, 0], xy[:, 1]))))


def zone_levels(levels: U8, like: Grid, zones: Zones) -> U8:
    """Highest level of the cells each zone's interior overlaps (0 for a zone off the grid)."""
    out = np.zeros(len(zones), np.uint8)
    geoms = np.asarray(zones.geoms, dtype=object)
    valid = ~shapely.is_missing(geoms)
    valid[valid] &= ~shapely.is_empty(geoms[valid])
    if not valid.any():
        return out
    geoms = geoms.copy()
    geoms[valid] = _in_grid_crs(geoms[valid], zones.crs, like)
    t, (rows, cols) = like.transform, like.shape
    b = np.full((len(geoms), 4), np.nan)
    b[valid] = shapely.bounds(geoms[valid])
    with np.errstate(invalid="ignore"):
        c0f, c1f = np.floor((b[:, 0] - t.c) / t.a), np.floor((b[:, 2] - t.c) / t.a)
        r0f, r1f = np.floor((b[:, 3] - t.f) / t.e), np.floor((b[:, 1] - t.f) / t.e)
        on = valid & (c1f >= 0) & (c0f < cols) & (r1f >= 0) & (r0f < rows)
        whole = on & (c0f >= 0) & (c1f < cols) & (r0f >= 0) & (r1f < rows)
    c0 = np.clip(np.nan_to_num(c0f), 0, cols - 1).astype(np.int64)
    c1 = np.clip(np.nan_to_num(c1f), 0, cols - 1).astype(np.int64)
    r0 = np.clip(np.nan_to_num(r0f), 0, rows - 1).astype(np.int64)
    r1 = np.clip(np.nan_to_num(r1f), 0, rows - 1).astype(np.int64)
    n_cells = (r1 - r0 + 1) * (c1 - c0 + 1)
    single = whole & (n_cells == 1)  # the zone lies inside one cell: that cell's level
    out[single] = levels[r0[single], c0[single]]
    big = np.flatnonzero(on & ~single & (n_cells > BIG_ZONE_CELLS))
    for i in big:
        out[i] = _burnt_max(levels, t, geoms[i], int(r0[i]), int(r1[i]), int(c0[i]), int(c1[i]))
    small = np.flatnonzero(on & ~single & (n_cells <= BIG_ZONE_CELLS))
    if small.size:
        shapely.prepare(geoms[small])
        bounds = np.cumsum(n_cells[small])
        start = 0
        while start < small.size:  # chunks of about PAIRS_PER_CHUNK zone-cell pairs
            done = int(bounds[start - 1]) if start else 0
            stop = max(start + 1, int(np.searchsorted(bounds, done + PAIRS_PER_CHUNK, side="right")))
            _overlap_max(levels, t, geoms, small[start:stop], r0, c0, r1, c1, out)
            start = stop
    return out


def _overlap_max(
    levels: U8, t: Affine, geoms: npt.NDArray[np.object_], idx: I64, r0: I64, c0: I64, r1: I64, c1: I64, out: U8
) -> None:
    ncol = c1[idx] - c0[idx] + 1
    counts = (r1[idx] - r0[idx] + 1) * ncol
    zone = np.repeat(idx, counts)
    local = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    rr = r0[zone] + local // np.repeat(ncol, counts)
    cc = c0[zone] + local % np.repeat(ncol, counts)
    lv = levels[rr, cc]
    keep = lv > 0  # a cell at level 0 cannot raise the maximum
    zone, rr, cc, lv = zone[keep], rr[keep], cc[keep], lv[keep]
    if not zone.size:
        return
    eps = 1e-7  # of a cell: shrink the cells so that sharing an edge is not overlapping
    x0 = t.c + (cc + eps) * t.a
    x1 = t.c + (cc + 1 - eps) * t.a
    y0 = t.f + (rr + 1 - eps) * t.e
    y1 = t.f + (rr + eps) * t.e
    hit = shapely.intersects(geoms[zone], shapely.box(x0, y0, x1, y1))
    np.maximum.at(out, zone[hit], lv[hit])


def _burnt_max(levels: U8, t: Affine, geom: Any, r0: int, r1: int, c0: int, c1: int) -> int:
    from rasterio import features

    window = t @ Affine.translation(c0, r0)
    mask = features.rasterize([(geom, 1)], out_shape=(r1 - r0 + 1, c1 - c0 + 1), transform=window, fill=0,
                              all_touched=True, dtype="uint8").astype(bool)  # fmt: skip
    sub = levels[r0 : r1 + 1, c0 : c1 + 1][mask]
    return int(sub.max()) if sub.size else 0


# --------------------------------------------------------------------------- counts per level and township


@dataclass(slots=True)
class LevelExposure:
    """What lies at one level (exactly, or at least, depending on where it is found)."""

    level: int
    site_ids: I64
    zone_ids: I64
    site_people: int = 0
    site_households: int = 0
    zone_people: int = 0
    zone_households: int = 0

    def counts(self) -> dict[str, int]:
        return {"sites": int(self.site_ids.size), "site_people": self.site_people,
                "site_households": self.site_households, "zones": int(self.zone_ids.size),
                "zone_people": self.zone_people, "zone_households": self.zone_households}  # fmt: skip


@dataclass(slots=True)
class Exposure:
    site_levels: U8
    zone_levels: U8
    sites_outside: int
    by_level: dict[int, LevelExposure]  # exactly level L
    at_least: dict[int, LevelExposure]  # level L or above
    townships: list[dict[str, Any]] = field(default_factory=list)


def _level_exposure(lv: int, s_sel: npt.NDArray[np.bool_], z_sel: npt.NDArray[np.bool_], sites: Sites | None,
                    zones: Zones | None) -> LevelExposure:  # fmt: skip
    e = LevelExposure(lv, np.zeros(0, np.int64), np.zeros(0, np.int64))
    if sites is not None:
        e.site_ids = sites.ids[s_sel]
        e.site_people, e.site_households = int(sites.people[s_sel].sum()), int(sites.households[s_sel].sum())
    if zones is not None:
        e.zone_ids = zones.ids[z_sel]
        e.zone_people, e.zone_households = int(zones.people[z_sel].sum()), int(zones.households[z_sel].sum())
    return e


def township_summary(
    sites: Sites | None, levels_at_sites: U8 | None, zones: Zones | None = None, levels_at_zones: U8 | None = None,
    townships: Sequence[str] = (), boundaries: tuple[npt.NDArray[Any], U8] | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """One row per township (those given, those of sites and zones, and those with a boundary): its
    highest level and, per level 1-4, sites, people and households at sites, and zones with their people
    and households. ``boundaries`` (codes, highest level of the cells each covers) raise a township's
    level to what covers its ground, also where no site or zone lies."""
    s_town = sites.township.astype(str) if sites is not None else np.zeros(0, str)
    z_town = zones.township.astype(str) if zones is not None and zones.township is not None else np.zeros(0, str)
    b_town = boundaries[0].astype(str) if boundaries is not None else np.zeros(0, str)
    codes = np.unique(np.concatenate([np.asarray(list(townships), str), s_town, z_town, b_town]))
    width = codes.size * 5

    def tally(town: npt.NDArray[Any], lv: U8 | None, weights: I64 | None) -> I64:
        if lv is None or not town.size:
            return np.zeros((codes.size, 5), np.int64)
        key = np.searchsorted(codes, town) * 5 + lv
        return np.bincount(key, weights=weights, minlength=width).astype(np.int64).reshape(codes.size, 5)

    if sites is not None and levels_at_sites is not None:
        n_sites, s_people, s_hh = (tally(s_town, levels_at_sites, w) for w in (None, sites.people, sites.households))
    else:
        n_sites = s_people = s_hh = tally(s_town, None, None)
    has_z = zones is not None and zones.township is not None and levels_at_zones is not None
    if has_z:
        assert zones is not None
        n_zones, z_people, z_hh = (tally(z_town, levels_at_zones, w) for w in (None, zones.people, zones.households))
    else:
        n_zones = z_people = z_hh = tally(z_town, None, None)
    present = (n_sites + n_zones)[:, 1:] > 0
    max_level = np.where(present.any(axis=1), 4 - np.argmax(present[:, ::-1], axis=1), 0)
    area_level = np.zeros(codes.size, np.int64)
    if boundaries is not None and b_town.size:
        np.maximum.at(area_level, np.searchsorted(codes, b_town), boundaries[1].astype(np.int64))
        max_level = np.maximum(max_level, area_level)

    def per_level(a: I64, i: int) -> dict[str, int]:
        return {str(lv): int(a[i, lv]) for lv in LEVELS}

    rows = []
    for i, code in enumerate(codes.tolist()):
        row: dict[str, Any] = {"township": code, "max_level": int(max_level[i]), "sites": per_level(n_sites, i),
                               "people": per_level(s_people, i), "households": per_level(s_hh, i)}  # fmt: skip
        if boundaries is not None:
            row["area_level"] = int(area_level[i])  # the highest level over the township's own ground
        if has_z:
            row.update(zones=per_level(n_zones, i), zone_people=per_level(z_people, i),
                       zone_households=per_level(z_hh, i))  # fmt: skip
        rows.append(row)
    return rows


def assess_exposure(
    levels: U8, like: Grid, sites: Sites | None = None, zones: Zones | None = None, townships: Sequence[str] = (),
    boundaries: Zones | None = None,
) -> Exposure:  # fmt: skip
    """Levels of sites and zones, what lies at (and at least at) each level, and the township table
    (with ``boundaries``, township polygons whose ``township`` is their code, each township's level
    is also that of the cells it covers)."""
    s_lv, outside = np.zeros(0, np.uint8), 0
    if sites is not None:
        s_lv, inside = _site_levels(levels, like, sites)
        outside = int(inside.size - np.count_nonzero(inside))
    z_lv = zone_levels(levels, like, zones) if zones is not None else np.zeros(0, np.uint8)
    by_level = {lv: _level_exposure(lv, s_lv == lv, z_lv == lv, sites, zones) for lv in LEVELS}
    at_least = {lv: _level_exposure(lv, s_lv >= lv, z_lv >= lv, sites, zones) for lv in LEVELS}
    covered = None
    if boundaries is not None and boundaries.township is not None and len(boundaries):
        covered = (np.asarray(boundaries.township), zone_levels(levels, like, boundaries))
    towns = township_summary(sites, s_lv if sites is not None else None, zones, z_lv if zones is not None else None,
                             townships, covered)  # fmt: skip
    return Exposure(s_lv, z_lv, outside, by_level, at_least, towns)
