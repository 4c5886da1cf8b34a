"""Who and what lies in each warning level: sites by the cell under them, risk zones by the highest
level of any cell they touch (the conservative reading for a zone that straddles levels), and a
summary per township."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from rasterio import features

from geowarn.regional.grid import Grid


@dataclass(slots=True)
class Sites:
    ids: npt.NDArray[np.int64]
    lon: npt.NDArray[np.float64]
    lat: npt.NDArray[np.float64]
    township: npt.NDArray[Any]  # township codes (str)
    people: npt.NDArray[np.int64]
    households: npt.NDArray[np.int64]


@dataclass(slots=True)
class Zones:
    ids: npt.NDArray[np.int64]
    geoms: list[Any]
    people: npt.NDArray[np.int64]
    households: npt.NDArray[np.int64]


def site_levels(levels: npt.NDArray[np.uint8], like: Grid, sites: Sites) -> npt.NDArray[np.uint8]:
    r, c, inside = like.index(sites.lon, sites.lat)
    return np.where(inside, levels[r, c], 0).astype(np.uint8)


def zone_levels(levels: npt.NDArray[np.uint8], like: Grid, zones: Zones) -> npt.NDArray[np.uint8]:
    """Highest level of the cells each zone touches (zones smaller than a cell take their cell)."""
    out = np.zeros(len(zones.ids), np.uint8)
    if not len(zones.ids):
        return out
    # Burn each zone's index, then take the max level per index. Zones may overlap; burn in order
    # and, for overlaps, add the centroid cell as a fallback so no zone is lost.
    rows, cols = levels.shape
    shapes = [(g, i + 1) for i, g in enumerate(zones.geoms) if g is not None]
    burnt = features.rasterize(shapes, out_shape=(rows, cols), transform=like.transform, fill=0,
                               all_touched=True, dtype="int32")  # fmt: skip
    sel = burnt > 0
    np.maximum.at(out, burnt[sel] - 1, levels[sel])
    cx = np.array([g.centroid.x if g is not None else np.nan for g in zones.geoms])
    cy = np.array([g.centroid.y if g is not None else np.nan for g in zones.geoms])
    r, c, inside = like.index(cx, cy)
    out = np.maximum(out, np.where(inside, levels[r, c], 0).astype(np.uint8))
    return out


def township_summary(sites: Sites, levels_at_sites: npt.NDArray[np.uint8]) -> list[dict[str, Any]]:
    """Per township: sites, people and households at each level (1-4), with the highest level."""
    towns, inverse = np.unique(sites.township.astype(str), return_inverse=True)
    out = []
    counts = np.zeros((towns.size, 5), np.int64)
    people = np.zeros((towns.size, 5), np.int64)
    households = np.zeros((towns.size, 5), np.int64)
    np.add.at(counts, (inverse, levels_at_sites), 1)
    np.add.at(people, (inverse, levels_at_sites), sites.people)
    np.add.at(households, (inverse, levels_at_sites), sites.households)
    for i, town in enumerate(towns.tolist()):
        levels_present = [lv for lv in range(1, 5) if counts[i, lv]]
        out.append({"township": town, "max_level": max(levels_present, default=0),
                    "sites": {str(lv): int(counts[i, lv]) for lv in range(1, 5)},
                    "people": {str(lv): int(people[i, lv]) for lv in range(1, 5)},
                    "households": {str(lv): int(households[i, lv]) for lv in range(1, 5)}})  # fmt: skip
    return out
