"""The demo county's map: county boundary, fourteen townships and their villages (pure, seeded).

Shapes are drawn in metres on a local plane around the county seat and carried to longitude and
latitude by one affine map (metres per degree at the seat from the WGS84 ellipsoid), which keeps
point-in-polygon answers exact and distorts areas by well under 1 % over 40 km.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from pyproj import Geod
from shapely.geometry import MultiPolygon, Polygon

#: The seed document's townships (seed 003) with their number of hazard sites, in its order.
TOWNSHIP_SITES: dict[str, int] = {
    "城东街道": 9,
    "城西街道": 25,
    "大甲镇": 9,
    "大桥镇": 21,
    "凤都镇": 12,
    "凤埔乡": 7,
    "鹤塘镇": 15,
    "黄田镇": 4,
    "吉巷乡": 5,
    "泮洋乡": 3,
    "平湖镇": 8,
    "杉洋镇": 12,
    "水口镇": 10,
    "卓洋乡": 9,
}
COUNTY_AREA_M2 = 1.3e9


@dataclass(frozen=True)
class Frame:
    """Affine map between local metres (x east, y north) and longitude/latitude."""

    lon0: float
    lat0: float

    @property
    def m_per_deg(self) -> tuple[float, float]:
        g = Geod(ellps="WGS84")
        _, _, dx = g.inv(self.lon0 - 0.5, self.lat0, self.lon0 + 0.5, self.lat0)
        _, _, dy = g.inv(self.lon0, self.lat0 - 0.5, self.lon0, self.lat0 + 0.5)
        return float(dx), float(dy)

    def to_lonlat(self, geom: Any) -> Any:
        kx, ky = self.m_per_deg
        return shapely.transform(
            geom, lambda xy: np.column_stack([self.lon0 + xy[:, 0] / kx, self.lat0 + xy[:, 1] / ky])
        )

    def xy_to_lonlat(self, x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        kx, ky = self.m_per_deg
        return self.lon0 + np.asarray(x, float) / kx, self.lat0 + np.asarray(y, float) / ky


@dataclass
class Unit:
    """A township or village: code, name and polygon in local metres."""

    code: str
    name: str
    shape: Any
    parent: str
    villages: list[Unit] = field(default_factory=list)

    @property
    def is_street(self) -> bool:
        return self.name.endswith("街道")


def multipolygon(geom: Any) -> MultiPolygon:
    """Any polygonal result as a MultiPolygon (the column type), dropping slivers of other types."""
    if isinstance(geom, MultiPolygon):
        return geom
    if isinstance(geom, Polygon):
        return MultiPolygon([geom])
    parts = [g for g in shapely.get_parts(geom) if isinstance(g, Polygon) and not g.is_empty]
    return MultiPolygon(parts)


def _radial(rng: np.random.Generator, n: int, harmonics: int, amp: float) -> np.ndarray:
    theta = np.linspace(0, 2 * np.pi, n, endpoint=False)
    r = np.ones(n)
    for k in range(2, harmonics + 1):
        r += rng.uniform(0.3, 1.0) * amp / np.sqrt(k) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    return np.column_stack([theta, np.clip(r, 0.45, None)])


def county_shape(rng: np.random.Generator, area_m2: float = COUNTY_AREA_M2) -> Polygon:
    """An irregular, star-shaped outline of the requested area, a little longer east–west."""
    tr = _radial(rng, 240, 9, 0.22)
    x, y = np.cos(tr[:, 0]) * tr[:, 1] * 1.15, np.sin(tr[:, 0]) * tr[:, 1] / 1.15
    unit = Polygon(np.column_stack([x, y]))
    s = np.sqrt(area_m2 / unit.area)
    return Polygon(np.column_stack([x * s, y * s]))


def _urban(rng: np.random.Generator) -> tuple[Polygon, Polygon]:
    """城西 and 城东 streets: a small irregular disk around the seat cut by a wavy north–south line."""
    tr = _radial(rng, 96, 5, 0.15)
    radius = 4_300.0
    disk = Polygon(np.column_stack([np.cos(tr[:, 0]) * tr[:, 1] * radius, np.sin(tr[:, 0]) * tr[:, 1] * radius]))
    ys = np.linspace(-9_000, 9_000, 40)
    xs = 600 + 400 * np.sin(ys / 1_700 + rng.uniform(0, 6))
    west = Polygon([*zip(xs, ys, strict=True), (-20_000, 9_000), (-20_000, -9_000)])
    return disk.intersection(west), disk.difference(west)


def _seeds(rng: np.random.Generator, county: Polygon) -> np.ndarray:
    """Twelve rural township centres: four around the seat, eight towards the edge."""
    pts = []
    a0 = rng.uniform(0, np.pi / 2)
    for k in range(4):
        a = a0 + k * np.pi / 2 + rng.uniform(-0.2, 0.2)
        r = rng.uniform(8_500, 10_500)
        pts.append((r * np.cos(a), r * np.sin(a)))
    a1 = rng.uniform(0, np.pi / 4)
    for k in range(8):
        a = a1 + k * np.pi / 4 + rng.uniform(-0.15, 0.15)
        ray = shapely.LineString([(0, 0), (60_000 * np.cos(a), 60_000 * np.sin(a))]).intersection(county.exterior)
        edge = min(np.hypot(p.x, p.y) for p in shapely.get_parts(ray))
        r = edge * rng.uniform(0.62, 0.74)
        pts.append((r * np.cos(a), r * np.sin(a)))
    return np.array(pts)


def _voronoi_cells(points: np.ndarray, clip: Any) -> list[Any]:
    cells = shapely.voronoi_polygons(shapely.MultiPoint(points), extend_to=clip.buffer(10_000), ordered=True)
    return [shapely.intersection(c, clip) for c in shapely.get_parts(cells)]


def _spread_points(rng: np.random.Generator, shape: Any, n: int) -> np.ndarray:
    """``n`` points in ``shape``, spread out by farthest-point choice among random candidates."""
    cand = sample_points(rng, shape, 40 * n)
    chosen = [0]
    d = np.hypot(cand[:, 0] - cand[0, 0], cand[:, 1] - cand[0, 1])
    for _ in range(n - 1):
        i = int(np.argmax(d))
        chosen.append(i)
        d = np.minimum(d, np.hypot(cand[:, 0] - cand[i, 0], cand[:, 1] - cand[i, 1]))
    return cand[chosen]


def sample_points(rng: np.random.Generator, shape: Any, n: int) -> np.ndarray:
    """``n`` uniform random points strictly inside ``shape`` (rejection sampling in its bounds)."""
    x0, y0, x1, y1 = shape.bounds
    shapely.prepare(shape)
    out: list[np.ndarray] = []
    have = 0
    while have < n:
        xs = rng.uniform(x0, x1, 2 * n)
        ys = rng.uniform(y0, y1, 2 * n)
        keep = shapely.contains_xy(shape, xs, ys)
        batch = np.column_stack([xs[keep], ys[keep]])
        out.append(batch)
        have += len(batch)
    return np.concatenate(out)[:n]


def build_geography(rng: np.random.Generator, county_code: str) -> tuple[Polygon, list[Unit]]:
    """The county outline and its townships (each with villages), all in local metres."""
    county = county_shape(rng)
    west, east = _urban(rng)
    urban = shapely.union(west, east)
    rural_cells = [c.difference(urban) for c in _voronoi_cells(_seeds(rng, county), county)]
    rural_names = [n for n in TOWNSHIP_SITES if not n.endswith("街道")]
    order = rng.permutation(len(rural_names))
    shapes = {"城东街道": east, "城西街道": west}
    for cell, i in zip(rural_cells, order, strict=True):
        shapes[rural_names[int(i)]] = cell
    towns: list[Unit] = []
    n_town = n_xiang = 0
    for name in TOWNSHIP_SITES:
        if name.endswith("街道"):
            tcode = f"{county_code}{(1 if name == '城东街道' else 2):03d}"
        elif name.endswith("镇"):
            tcode, n_town = f"{county_code}{100 + n_town:03d}", n_town + 1
        else:
            tcode, n_xiang = f"{county_code}{200 + n_xiang:03d}", n_xiang + 1
        towns.append(Unit(tcode, name, multipolygon(shapes[name]), county_code))
    return county, sorted(towns, key=lambda t: t.code)


def add_villages(rng: np.random.Generator, towns: list[Unit], names: Any) -> None:
    """3–8 villages (社区 in streets) partitioning each township, with plausible names and codes."""
    for town in towns:
        n = int(rng.integers(3, 6)) if town.is_street else int(rng.integers(4, 9))
        cells = _voronoi_cells(_spread_points(rng, town.shape, n), town.shape)
        first = 1 if town.is_street else 201
        for k, cell in enumerate(cells):
            code = f"{town.code}{first + k:03d}"
            town.villages.append(Unit(code, names.place(town.is_street), multipolygon(cell), town.code))
