"""The demo county's register: sites, steep slopes, households, shelters and risk zones (pure, seeded).

Classes follow T/CAGHP 001-2018 (地质灾害分类分级标准): *scale* (规模等级) by volume — landslide
< 10万 m³ small, < 100万 medium, < 1000万 large; rockfall < 1万 / 10万 / 100万; debris flow (one
event's deposit) < 2万 / 20万 / 50万 — and *danger grade* (险情等级) by threatened people (< 100,
< 500, < 1000) or property (< 500万, < 5000万, < 1亿 yuan), whichever is graver.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
import shapely.affinity
from shapely.geometry import Polygon

from geowarn.demo.geography import TOWNSHIP_SITES, Frame, Unit, sample_points
from geowarn.demo.names import NameGenerator
from geowarn.inventory.domain import HazardType, MonitoringMode, RiskGrade, Scale, SiteStatus, Stability
from geowarn.spatial.core import geodesic_distance_m, points_in_polygons

HAZARD_PEOPLE = 4_789
HAZARD_PROPERTY_YUAN = 72_365_000  # 7,236.5 万元 ("7200多万元", seed 003)
TYPE_COUNTS = {HazardType.LANDSLIDE: 81, HazardType.ROCKFALL: 66, HazardType.DEBRIS_FLOW: 2}
STEEP_SLOPES = 32
INSTRUMENTED_SITES = 30

VOLUME_LIMITS = {
    HazardType.LANDSLIDE: (1e5, 1e6, 1e7),
    HazardType.ROCKFALL: (1e4, 1e5, 1e6),
    HazardType.DEBRIS_FLOW: (2e4, 2e5, 5e5),
    HazardType.STEEP_CUT_SLOPE: (1e4, 1e5, 1e6),
}
PEOPLE_LIMITS = (100, 500, 1000)
PROPERTY_LIMITS_YUAN = (5_000_000, 50_000_000, 100_000_000)
_GRADES = (Scale.SMALL, Scale.MEDIUM, Scale.LARGE, Scale.HUGE)
_SEMI_AXES = {Scale.SMALL: (40, 90, 30, 60), Scale.MEDIUM: (90, 160, 50, 100), Scale.LARGE: (160, 260, 100, 160)}
_PLACES = (
    "后山",
    "屋后",
    "东侧",
    "西侧",
    "公路边",
    "溪边",
    "老厝后",
    "学校后",
    "岭下",
    "坑头",
    "水尾",
    "新厝后",
    "北坡",
)
_CHANNELS = ("大坑沟", "石坑沟", "岭头沟", "龙潭沟", "黄泥坑")


def scale_of(hazard_type: str, volume_m3: float) -> Scale:
    """规模等级 from volume (T/CAGHP 001-2018)."""
    limits = VOLUME_LIMITS[HazardType(hazard_type)]
    return _GRADES[int(np.searchsorted(limits, volume_m3, side="right"))]


def danger_grade_of(people: int, property_yuan: int) -> Scale:
    """险情等级: the graver of the grade by threatened people and by threatened property."""
    by_people = int(np.searchsorted(PEOPLE_LIMITS, people, side="right"))
    by_property = int(np.searchsorted(PROPERTY_LIMITS_YUAN, property_yuan, side="right"))
    return _GRADES[max(by_people, by_property)]


def apportion(total: int, weights: Any, lo: int, hi: int) -> np.ndarray:
    """Integers in ``[lo, hi]`` summing exactly to ``total``, near-proportional to ``weights``.

    Water-filling for the caps, then the largest-remainder method (Hamilton) for the rounding.
    """
    w = np.asarray(weights, dtype=float)
    n = len(w)
    rem, cap = total - n * lo, hi - lo
    if not 0 <= rem <= n * cap:
        raise ValueError(f"cannot share {total} among {n} in [{lo}, {hi}]")
    ideal = np.zeros(n)
    fixed = np.zeros(n, dtype=bool)
    for _ in range(n + 1):
        free = ~fixed
        left = rem - ideal[fixed].sum()
        ideal[free] = w[free] / w[free].sum() * left
        over = free & (ideal > cap)
        if not over.any():
            break
        ideal[over] = cap
        fixed |= over
    out = np.floor(ideal + 1e-9).astype(np.int64)
    frac = ideal - out
    frac[out >= cap] = -1.0
    short = rem - int(out.sum())
    out[np.argsort(-frac, kind="stable")[:short]] += 1
    return lo + out


@dataclass
class HouseholdSpec:
    code: str
    head: str
    phone: str
    id_number: str | None
    size: int
    lon: float
    lat: float
    address: str
    members: list[dict[str, Any]]
    shelter: int = -1  # index into the shelters list


@dataclass
class SiteSpec:
    code: str
    name: str
    hazard_type: str
    town: Unit
    village: Unit
    place: str
    x: float
    y: float
    lon: float = 0.0
    lat: float = 0.0
    scale: str = Scale.SMALL.value
    volume_m3: float = 0.0
    danger_grade: str = Scale.SMALL.value
    stability: str = Stability.FAIRLY_STABLE.value
    people: int = 0
    property_yuan: int = 0
    mode: str = MonitoringMode.COMMUNITY.value
    registered_on: dt.date = dt.date(2010, 1, 1)
    history: list[tuple[SiteStatus, dt.date, str, str | None]] = field(default_factory=list)
    danger_zone: Any = None  # lon/lat polygon
    danger_zone_m: Any = None
    extra: dict[str, Any] = field(default_factory=dict)
    households: list[HouseholdSpec] = field(default_factory=list)


@dataclass
class ShelterSpec:
    code: str
    name: str
    kind: str
    town: Unit
    village: Unit
    lon: float
    lat: float
    capacity: int = 0


@dataclass
class ZoneSpec:
    code: str
    name: str
    grade: str
    geom: Any  # lon/lat
    unit_code: str
    households: int = 0
    people: int = 0


def _ellipse(cx: float, cy: float, a: float, b: float, angle: float, n: int = 32) -> Polygon:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    u, v = a * np.cos(t), b * np.sin(t)
    c, s = np.cos(angle), np.sin(angle)
    return Polygon(np.column_stack([cx + u * c - v * s, cy + u * s + v * c]))


def _types_by_town(rng: np.random.Generator, towns: list[Unit]) -> dict[str, list[HazardType]]:
    """Each township's hazard types: exactly 81/66/2, debris flows in two rural townships."""
    slides_falls = [HazardType.LANDSLIDE] * TYPE_COUNTS[HazardType.LANDSLIDE] + [HazardType.ROCKFALL] * TYPE_COUNTS[
        HazardType.ROCKFALL
    ]
    slides_falls = [slides_falls[int(i)] for i in rng.permutation(len(slides_falls))]
    rural = [t.name for t in towns if not t.is_street and TOWNSHIP_SITES[t.name] >= 3]
    flow_towns = {rural[int(i)] for i in rng.choice(len(rural), TYPE_COUNTS[HazardType.DEBRIS_FLOW], replace=False)}
    out: dict[str, list[HazardType]] = {}
    for t in towns:
        n = TOWNSHIP_SITES[t.name]
        k = n - (1 if t.name in flow_towns else 0)
        out[t.name] = slides_falls[:k] + ([HazardType.DEBRIS_FLOW] if t.name in flow_towns else [])
        slides_falls = slides_falls[k:]
    return out


def _pick_village(rng: np.random.Generator, town: Unit) -> Unit:
    areas = np.array([v.shape.area for v in town.villages])
    return town.villages[int(rng.choice(len(areas), p=areas / areas.sum()))]


def _place_site(rng: np.random.Generator, village: Unit, reach: float) -> tuple[float, float]:
    for margin in (reach + 80, reach + 20, 60):
        inner = village.shape.buffer(-margin)
        if not inner.is_empty and inner.area > 1e4:
            x, y = sample_points(rng, inner, 1)[0]
            return float(x), float(y)
    raise RuntimeError(f"village {village.name} is too small for a site")


def _unique_place(rng: np.random.Generator, used: set[str], village: Unit, pool: tuple[str, ...]) -> str:
    free = [p for p in pool if f"{village.code}{p}" not in used]
    place = free[int(rng.integers(len(free)))] if free else f"{pool[0]}{len(used) + 1}号"
    used.add(f"{village.code}{place}")
    return place


def make_sites(rng: np.random.Generator, towns: list[Unit], county_code: str) -> list[SiteSpec]:
    """The 149 hazard sites with their classes, people and property (exact totals)."""
    types = _types_by_town(rng, towns)
    used: set[str] = set()
    sites: list[SiteSpec] = []
    for town in towns:
        for ht in types[town.name]:
            village = _pick_village(rng, town)
            pool = _CHANNELS if ht is HazardType.DEBRIS_FLOW else _PLACES
            place = _unique_place(rng, used, village, pool)
            seq = len(sites) + 1
            sites.append(
                SiteSpec(
                    code=f"{county_code}1{seq:05d}",
                    name=f"{village.name}{place}{_zh(ht)}",
                    hazard_type=ht.value,
                    town=town,
                    village=village,
                    place=place,
                    x=0.0,
                    y=0.0,
                )
            )
    n = len(sites)
    # Scale: mostly small, some medium, a few large (three landslides and one rockfall).
    scale = np.full(n, 0)
    order = rng.permutation(n)
    large = [i for i in order if sites[i].hazard_type == HazardType.LANDSLIDE.value][:3]
    large += [i for i in order if sites[i].hazard_type == HazardType.ROCKFALL.value][:1]
    scale[large] = 2
    rest = [i for i in order if i not in large]
    scale[rest[: round(0.16 * n)]] = 1
    for i, s in enumerate(sites):
        lim = VOLUME_LIMITS[HazardType(s.hazard_type)]
        lo = lim[scale[i] - 1] if scale[i] > 0 else lim[0] / 80
        hi = lim[scale[i]] if scale[i] < 2 else lim[2] / 4
        s.volume_m3 = float(round(10 ** rng.uniform(np.log10(lo), np.log10(hi)), -1 if hi < 1e4 else -2))
        s.scale = scale_of(s.hazard_type, s.volume_m3).value
    # Threatened people: one large danger (>= 500), twelve medium (100–499), the rest small.
    by_scale = sorted(range(n), key=lambda i: (-scale[i], int(np.argwhere(order == i)[0, 0])))
    people = np.zeros(n, dtype=np.int64)
    people[by_scale[0]] = int(rng.integers(505, 560))
    medium = by_scale[1:13]
    people[medium] = rng.integers(100, 230, len(medium))
    small = by_scale[13:]
    people[small] = apportion(HAZARD_PEOPLE - int(people.sum()), rng.lognormal(0, 0.6, len(small)), 3, 96)
    # Property: about proportional to people, in whole thousands of yuan, exact total.
    units = apportion(HAZARD_PROPERTY_YUAN // 1000, people * rng.uniform(0.6, 1.4, n), 30, 40_000)
    for i, s in enumerate(sites):
        s.people, s.property_yuan = int(people[i]), int(units[i]) * 1000
        s.danger_grade = danger_grade_of(s.people, s.property_yuan).value
        s.stability = str(rng.choice([Stability.UNSTABLE.value, Stability.FAIRLY_STABLE.value], p=[0.45, 0.55]))
    _modes_and_status(rng, sites)
    return sites


def _zh(ht: HazardType) -> str:
    return {HazardType.LANDSLIDE: "滑坡", HazardType.ROCKFALL: "崩塌", HazardType.DEBRIS_FLOW: "泥石流"}.get(
        ht, "高陡边坡"
    )


def _modes_and_status(rng: np.random.Generator, sites: list[SiteSpec]) -> None:
    graver = [i for i, s in enumerate(sites) if s.danger_grade != Scale.SMALL.value]
    others = [i for i in rng.permutation(len(sites)) if i not in graver]
    watched = graver + others[: INSTRUMENTED_SITES - len(graver)]
    for k, i in enumerate(watched):
        sites[i].mode = (MonitoringMode.INSTRUMENTED if k % 5 == 4 else MonitoringMode.BOTH).value
    for s in sites:
        s.registered_on = dt.date(2008, 1, 1) + dt.timedelta(days=int(rng.integers(0, 13 * 365)))
    treat = [i for i in rng.permutation(len(sites)) if i not in watched][:7]
    for k, i in enumerate(treat):
        s = sites[i]
        start = dt.date(2019 if k < 2 else 2020, 1, 1) + dt.timedelta(days=int(rng.integers(60, 300)))
        s.history.append((SiteStatus.UNDER_TREATMENT, start, "列入综合治理项目，工程开工", "县自然资源局治理项目批复"))
        if k < 2:
            done = start + dt.timedelta(days=int(rng.integers(200, 400)))
            s.history.append((SiteStatus.TREATED, done, "治理工程完工", "治理工程竣工验收意见书"))
            s.stability = Stability.STABLE.value


def make_steep_slopes(
    rng: np.random.Generator, towns: list[Unit], county_code: str, names: NameGenerator
) -> list[SiteSpec]:
    """32 steep cut slopes behind or before houses, spread over townships like the sites."""
    weights = np.array([TOWNSHIP_SITES[t.name] + 2.0 for t in towns])
    picks = np.sort(rng.choice(len(towns), STEEP_SLOPES, p=weights / weights.sum()))
    out = []
    for k, ti in enumerate(picks):
        town = towns[int(ti)]
        village = _pick_village(rng, town)
        owner = names.surname()
        people = int(rng.integers(3, 19))
        height = float(rng.integers(8, 26))
        out.append(
            SiteSpec(
                code=f"{county_code}9{k + 1:05d}",
                name=f"{village.name}{owner}宅屋后高陡边坡",
                hazard_type=HazardType.STEEP_CUT_SLOPE.value,
                town=town,
                village=village,
                place=f"{owner}宅屋后",
                x=0.0,
                y=0.0,
                volume_m3=float(round(height * rng.uniform(15, 40) * rng.uniform(3, 8), -1)),
                stability=str(rng.choice([Stability.UNSTABLE.value, Stability.FAIRLY_STABLE.value])),
                people=people,
                property_yuan=int(rng.integers(8, 60)) * 10_000,
                registered_on=dt.date(2019, 1, 1) + dt.timedelta(days=int(rng.integers(0, 700))),
                extra={"slope_height_m": height, "slope_angle_deg": int(rng.integers(60, 86))},
            )
        )
    for s in out:
        s.scale = scale_of(s.hazard_type, s.volume_m3).value
        s.danger_grade = danger_grade_of(s.people, s.property_yuan).value
    return out


def place_sites(rng: np.random.Generator, sites: list[SiteSpec], frame: Frame) -> None:
    """Site points inside their village, and a danger zone (危险区) downslope sized by scale."""
    for s in sites:
        if s.hazard_type == HazardType.STEEP_CUT_SLOPE.value:
            a, b = float(rng.uniform(20, 40)), float(rng.uniform(15, 30))
        else:
            a0, a1, b0, b1 = _SEMI_AXES[Scale(s.scale)] if s.scale in _SEMI_AXES else _SEMI_AXES[Scale.LARGE]
            a, b = float(rng.uniform(a0, a1)), float(rng.uniform(b0, b1))
            if s.hazard_type == HazardType.DEBRIS_FLOW.value:
                a, b = a * 2.2, b * 0.7  # long and narrow along the channel
        reach = 1.6 * a
        s.x, s.y = _place_site(rng, s.village, reach)
        angle = float(rng.uniform(0, 2 * np.pi))
        s.danger_zone_m = _ellipse(s.x + 0.55 * a * np.cos(angle), s.y + 0.55 * a * np.sin(angle), a, b, angle)
        s.danger_zone = frame.to_lonlat(s.danger_zone_m)
        lon, lat = frame.xy_to_lonlat(s.x, s.y)
        s.lon, s.lat = round(float(lon), 6), round(float(lat), 6)
        s.extra = {**s.extra, "downslope_bearing_deg": round(float(np.degrees(np.pi / 2 - angle)) % 360, 1)}


def _household_sizes(rng: np.random.Generator, people: int) -> list[int]:
    n = max(1, -(-people // 8), min(people, round(people / rng.uniform(2.9, 3.8))))
    return [int(v) for v in apportion(people, rng.lognormal(0, 0.35, n), 1, 8)]


_RELATIONS = ("配偶", "子女", "子女", "父亲", "母亲", "孙子女", "子女", "孙子女")


def make_households(rng: np.random.Generator, sites: list[SiteSpec], frame: Frame, names: NameGenerator) -> None:
    """Households of each site inside its danger zone; sizes add up to the site's threatened people."""
    county = sites[0].code[:6] if sites else ""
    for s in sites:
        sizes = _household_sizes(rng, s.people)
        inner = shapely.affinity.scale(s.danger_zone_m, 0.85, 0.85, origin="centroid")
        pts = sample_points(rng, inner, len(sizes))
        lon, lat = frame.xy_to_lonlat(pts[:, 0], pts[:, 1])
        for k, size in enumerate(sizes):
            surname = names.surname()
            head, female = names.person(female=bool(rng.random() < 0.2), surname=surname)
            phone = names.phone()
            birth = int(rng.integers(1945, 1992))
            id_number = names.id_number(county, birth) if rng.random() < 0.1 else None
            members: list[dict[str, Any]] = [
                {"name": head, "relation": "户主", "phone": phone, "id_number": id_number, "vulnerable": birth < 1956}
            ]
            for m in range(size - 1):
                rel = _RELATIONS[m]
                keeps = rel in ("子女", "孙子女", "父亲")
                fem = {"母亲": True, "父亲": False, "配偶": not female}.get(rel)
                name, _ = names.person(female=fem, surname=surname if keeps else None)
                members.append(
                    {
                        "name": name,
                        "relation": rel,
                        "phone": names.phone() if rel in ("配偶", "子女") and rng.random() < 0.5 else None,
                        "id_number": None,
                        "vulnerable": rel in ("父亲", "母亲", "孙子女"),
                    }
                )
            s.households.append(
                HouseholdSpec(
                    code=f"{s.code}{k + 1:03d}",
                    head=head,
                    phone=phone,
                    id_number=id_number,
                    size=size,
                    lon=round(float(lon[k]), 6),
                    lat=round(float(lat[k]), 6),
                    address=f"{s.town.name}{s.village.name}{s.place}{k + 1}号",
                    members=members,
                )
            )


def make_shelters(
    rng: np.random.Generator, towns: list[Unit], sites: list[SiteSpec], frame: Frame
) -> list[ShelterSpec]:
    """2–4 shelters per township, away from every danger zone; households go to the nearest one."""
    danger = shapely.union_all([s.danger_zone_m for s in sites])
    shelters: list[ShelterSpec] = []
    for town in towns:
        n = int(rng.integers(2, 5))
        villages = [town.villages[int(i)] for i in rng.permutation(len(town.villages))[:n]]
        for k, v in enumerate(villages):
            base = v.name.removesuffix("社区").removesuffix("村")
            kind = ("school", "committee", "hall")[(k + int(rng.integers(3))) % 3]
            name = {
                "school": f"{base}小学",
                "committee": f"{v.name}{'居委会' if town.is_street else '村委会'}",
                "hall": f"{base}文化礼堂",
            }[kind]
            cand = sample_points(rng, v.shape.buffer(-200) if v.shape.buffer(-200).area > 1e4 else v.shape, 200)
            ok = shapely.distance(danger, shapely.points(cand)) >= 200
            x, y = cand[int(np.argmax(ok))]
            lon, lat = frame.xy_to_lonlat(x, y)
            shelters.append(
                ShelterSpec(
                    f"BX{town.code}{k + 1:02d}", name, kind, town, v, round(float(lon), 6), round(float(lat), 6)
                )
            )
    _assign_shelters(rng, sites, shelters)
    return shelters


def _assign_shelters(rng: np.random.Generator, sites: list[SiteSpec], shelters: list[ShelterSpec]) -> None:
    by_town: dict[str, list[int]] = {}
    for i, sh in enumerate(shelters):
        by_town.setdefault(sh.town.code, []).append(i)
    load = np.zeros(len(shelters), dtype=np.int64)
    for s in sites:
        idx = by_town[s.town.code]
        for h in s.households:
            d = geodesic_distance_m([shelters[i].lon for i in idx], [shelters[i].lat for i in idx], h.lon, h.lat)
            h.shelter = idx[int(np.argmin(d))]
            load[h.shelter] += h.size
    for i, sh in enumerate(shelters):
        base = int(rng.integers(8, 31)) * 10
        sh.capacity = max(base, int(np.ceil(load[i] * 1.2 / 10)) * 10)


def make_risk_zones(rng: np.random.Generator, sites: list[SiteSpec], frame: Frame, county_code: str) -> list[ZoneSpec]:
    """40–60 graded risk zones around clusters of sites (convex hull of their danger zones + 120 m)."""
    target = int(rng.integers(45, 56))
    zones: list[ZoneSpec] = []
    covered: list[Any] = []
    names: set[str] = set()
    xy = np.array([(s.x, s.y) for s in sites])
    for i in rng.permutation(len(sites)):
        if len(zones) == target:
            break
        anchor = sites[int(i)]
        pt = shapely.Point(anchor.x, anchor.y)
        if any(c.covers(pt) for c in covered) and rng.random() > 0.12:
            continue
        near = np.hypot(xy[:, 0] - anchor.x, xy[:, 1] - anchor.y) <= 1_200
        members = [sites[j] for j in np.flatnonzero(near) if sites[j].town is anchor.town]
        hull = shapely.union_all([m.danger_zone_m for m in members]).convex_hull.buffer(120, quad_segs=4)
        shape_m = hull.intersection(anchor.town.shape).simplify(5)
        if not isinstance(shape_m, Polygon):
            shape_m = max(shapely.get_parts(shape_m), key=lambda g: g.area)
        covered.append(shape_m)
        villages = {m.village.code for m in members}
        unit = villages.pop() if len(villages) == 1 else anchor.town.code
        name = f"{anchor.village.name}{anchor.place}风险区"
        if name in names:
            name = f"{anchor.village.name}{anchor.place}{len(zones) + 1}号风险区"
        names.add(name)
        zones.append(ZoneSpec(f"FXQ{county_code}{len(zones) + 1:03d}", name, "", frame.to_lonlat(shape_m), unit))
    _grade_zones(sites, zones)
    return zones


def _grade_zones(sites: list[SiteSpec], zones: list[ZoneSpec]) -> None:
    hh = [h for s in sites for h in s.households]
    pt, poly = points_in_polygons([h.lon for h in hh], [h.lat for h in hh], [z.geom for z in zones])
    size = np.array([h.size for h in hh], dtype=np.int64)
    households = np.bincount(poly, minlength=len(zones))
    people = np.bincount(poly, weights=size[pt], minlength=len(zones)).astype(np.int64)
    spt, spoly = points_in_polygons([s.lon for s in sites], [s.lat for s in sites], [z.geom for z in zones])
    grave = np.zeros(len(zones), dtype=bool)
    for a, b in zip(spt, spoly, strict=True):
        grave[b] |= sites[a].danger_grade != Scale.SMALL.value or sites[a].stability == Stability.UNSTABLE.value
    for k, z in enumerate(zones):
        z.households, z.people = int(households[k]), int(people[k])
        if z.people >= 120 or (grave[k] and z.people >= 40):
            z.grade = RiskGrade.HIGH.value
        elif z.people >= 30 or grave[k]:
            z.grade = RiskGrade.MEDIUM.value
        else:
            z.grade = RiskGrade.LOW.value
