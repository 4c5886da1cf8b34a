"""Recipient resolution against the register (storage adapter of :mod:`geowarn.dissemination.recipients`).

Reads the sites, danger zones, risk zones, households, residents and persons a warning concerns and
turns them into :class:`Candidate` rows; the pure core merges them into one entry per person.
Which audience is told at which level is in :mod:`recipients` (module docstring).
"""

from __future__ import annotations

import gc
import itertools
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from sqlalchemy import LargeBinary, and_, func, literal, select
from sqlalchemy.orm import Session

from geowarn.db.raw import fetch_tuples, fetch_tuples_in
from geowarn.dissemination import directory as people
from geowarn.dissemination.models import Endpoint, Preference
from geowarn.dissemination.recipients import (
    Candidate,
    Groups,
    Merger,
    Pref,
    Recipient,
    Residents,
    group_bounds,
    merge_positions,
    merge_residents,
)
from geowarn.inventory.models import HazardSite, Household, Organisation, Person, Resident, RiskZone, Shelter
from geowarn.warning.levels import Level

CHUNK = 5000
#: Sites that still threaten people (treated, relocated and written-off sites do not).
LIVE_STATUSES = people.LIVE_STATUSES
ALERT_DEPARTMENTS = ("natural_resources", "emergency_management", "weather")


@contextmanager
def no_gc() -> Iterator[None]:
    """The cyclic garbage collector paused: reading a million rows creates millions of tuples, and each
    full collection walks all of them (several seconds per resolution); nothing here makes cycles."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _chunks(ids: Sequence[int]) -> Iterator[Sequence[int]]:
    for i in range(0, len(ids), CHUNK):
        yield ids[i : i + CHUNK]


@dataclass(slots=True)
class SiteInfo:
    id: int
    code: str
    name: str
    unit_code: str
    township: str
    level: Level
    responsible_person_id: int | None
    monitor_id: int | None


class HouseholdPlan(Sequence[dict[str, Any]]):
    """Households as lines of transfer orders (:func:`transfer_plan`), kept as columns: a red warning
    over a province moves a quarter of a million households, and a line is only made when read."""

    _NAMES = ("household_id", "code", "head", "people", "unit_code", "shelter_id", "site_id")

    def __init__(self, *columns: Any) -> None:  # in the order of _NAMES; -1: no shelter / site
        self._cols = columns

    def __len__(self) -> int:
        return len(self._cols[0])

    @staticmethod
    def _line(values: Sequence[Any]) -> dict[str, Any]:
        line = dict(zip(HouseholdPlan._NAMES, values, strict=True))
        for k in ("shelter_id", "site_id"):
            if line[k] < 0:
                line[k] = None
        return line

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return self._line([c[i].item() if hasattr(c[i], "item") else c[i] for c in self._cols])

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for values in zip(*(c.tolist() for c in self._cols), strict=True):
            yield self._line(values)

    def shelter_ids(self) -> list[int]:
        return [int(v) for v in np.unique(self._cols[5]).tolist() if v >= 0]

    def townships(self) -> set[str]:
        return {u[:9] for u in set(self._cols[4].tolist())}


@dataclass(slots=True)
class Resolution:
    """The recipients of one warning and what the messages need about them."""

    recipients: list[Recipient]  # persons (and, on the slow path, residents)
    sites: list[SiteInfo] = field(default_factory=list)
    townships: list[str] = field(default_factory=list)
    shelters: dict[int, tuple[str, str | None]] = field(default_factory=dict)  # id -> (name, address/route)
    households: Sequence[dict[str, Any]] = field(default_factory=list)  # for transfer orders
    endpoints: list[Endpoint] = field(default_factory=list)
    residents: Residents | None = None  # the regional fast path: residents as columns, after ``recipients``

    @property
    def total(self) -> int:
        """Number of persons told (endpoints not counted)."""
        return len(self.recipients) + (len(self.residents) if self.residents is not None else 0)

    def all_recipients(self) -> list[Recipient]:
        """Every person as a :class:`Recipient`, in order (slow for big warnings: tests and small sets)."""
        return self.recipients + (self.residents.recipients() if self.residents is not None else [])


PERSON_COLUMNS = (Person.id, Person.name, Person.phone, Person.unit_code, Person.roles)


def _persons(session: Session, ids: Iterable[int], d: people.Directory | None = None) -> dict[int, Any]:
    """Active persons by id (rows of :data:`PERSON_COLUMNS`: thousands are read for a province)."""
    wanted = sorted({i for i in ids if i is not None})
    if d is not None:
        return {i: d.persons[i] for i in wanted if i in d.persons}
    out: dict[int, Any] = {}
    for chunk in _chunks(wanted):
        for p in session.execute(select(*PERSON_COLUMNS).where(Person.id.in_(chunk), Person.active.is_(True))):
            out[p.id] = p
    return out


def _officials(
    session: Session, units: Iterable[str], reason: str, d: people.Directory | None = None
) -> list[Candidate]:
    """Duty officials and leaders registered exactly at one of ``units`` (by unit, then id)."""
    units = sorted(set(units))
    if not units:
        return []
    if d is not None:
        found: list[Any] = [p for u in units for p in d.officials.get(u, ())]
    else:
        stmt = select(*PERSON_COLUMNS).where(Person.unit_code.in_(units), Person.active.is_(True))
        found = [
            p
            for p in session.execute(stmt.order_by(Person.unit_code, Person.id))
            if people.OFFICIAL_ROLES & set(p.roles or [])
        ]
    return [
        Candidate(f"person:{p.id}", p.name, p.phone, p.unit_code, "official", f"{reason}（{p.unit_code}）")
        for p in found
    ]


def _department_contacts(session: Session, county: str) -> list[Candidate]:
    rows = session.execute(
        select(Person, Organisation.name)
        .join(Organisation, Organisation.id == Person.organisation_id)
        .where(Person.unit_code == county, Person.active.is_(True), Organisation.department.in_(ALERT_DEPARTMENTS))
    ).all()
    return [
        Candidate(f"person:{p.id}", p.name, p.phone, p.unit_code, "department", f"部门联络人：{org}")
        for p, org in rows
        if "contact" in (p.roles or []) or "leader" in (p.roles or []) or "duty_official" in (p.roles or [])
    ]


def _site_people_of(sites: Sequence[SiteInfo], persons: dict[int, Any], min_level: Level) -> Iterator[tuple[Any, str]]:
    """``(person, reason)`` for the responsible person and monitor of each site at ``min_level`` or above."""
    for s in sites:
        if s.level < min_level:
            continue
        site = f"{s.name}（{s.code}）"
        for pid, what in ((s.responsible_person_id, "防灾责任人"), (s.monitor_id, "监测人")):
            p = persons.get(pid) if pid is not None else None
            if p is not None:
                yield p, site + what


def _site_people_fields(
    sites: Sequence[SiteInfo], persons: dict[int, Any], min_level: Level
) -> Iterator[tuple[Any, ...]]:
    """:func:`_site_people_of` as the fields of a :class:`Candidate` (no household, no shelter)."""
    for p, why in _site_people_of(sites, persons, min_level):
        yield f"person:{p.id}", p.name, p.phone, p.unit_code, "responsible", why, None, None


def _site_people_known(
    sites: Sequence[SiteInfo], persons: dict[int, people.PersonRow], min_level: Level
) -> Iterator[tuple[Any, ...]]:
    """:func:`_site_people_fields` for directory persons, with the identity in front (``Merger.add_known``)."""
    for p, why in _site_people_of(sites, persons, min_level):
        yield p.ident, p.key, p.name, p.phone, p.unit_code, "responsible", why, None, None


def _site_people(sites: Sequence[SiteInfo], persons: dict[int, Any], min_level: Level) -> list[Candidate]:
    return [Candidate(*f) for f in _site_people_fields(sites, persons, min_level)]


HOUSEHOLD_COLUMNS = (
    Household.id,
    Household.code,
    Household.head_name,
    Household.phone,
    Household.size,
    Household.unit_code,
    Household.site_id,
    Household.risk_zone_id,
    Household.shelter_id,
)
SITE_COLUMNS = (
    HazardSite.id,
    HazardSite.code,
    HazardSite.name,
    HazardSite.unit_code,
    HazardSite.township_code,
    HazardSite.responsible_person_id,
    HazardSite.monitor_id,
)


def _households(
    session: Session, site_ids: Sequence[int], zone_ids: Sequence[int], extra_ids: Sequence[int] = ()
) -> list[Any]:
    """Household rows (columns of :data:`HOUSEHOLD_COLUMNS`, not ORM objects: tens of thousands are read)."""
    seen: dict[int, Any] = {}
    for col, ids in ((Household.site_id, site_ids), (Household.risk_zone_id, zone_ids), (Household.id, extra_ids)):
        for chunk in _chunks(sorted(set(ids))):
            for h in session.execute(select(*HOUSEHOLD_COLUMNS).where(col.in_(chunk))):
                seen.setdefault(h.id, h)
    return [seen[i] for i in sorted(seen)]  # by id: the order of the fast path (it decides who names a person)


def _resident_candidates(
    session: Session, households: Sequence[Any], site_names: dict[int, str], zone_names: dict[int, str]
) -> tuple[list[Candidate], list[dict[str, Any]]]:
    out: list[Candidate] = []
    plan: list[dict[str, Any]] = []
    by_id = {h.id: h for h in households}
    residents: dict[int, list[tuple[int, str, str | None]]] = {}
    for chunk in _chunks(sorted(by_id)):
        for rid, hid, name, phone in session.execute(
            select(Resident.id, Resident.household_id, Resident.name, Resident.phone)
            .where(Resident.household_id.in_(chunk))
            .order_by(Resident.id)
        ):
            residents.setdefault(hid, []).append((rid, name, phone))
    for h in households:
        if h.site_id in site_names:
            why = f"受{site_names[h.site_id]}威胁"
        elif h.risk_zone_id in zone_names:
            why = f"居住在风险区{zone_names[h.risk_zone_id or 0]}内"
        else:
            why = "居住在红色预警区内" if not site_names or h.site_id is None else f"受隐患点威胁（{h.site_id}）"

        out += household_candidates(h, why, residents.get(h.id, []))
        plan.append(transfer_plan(h))
    return out, plan


def household_candidates(h: Any, why: str, residents: Sequence[tuple[int, str, str | None]]) -> list[Candidate]:
    """The head of household ``h`` (listed even without a phone, for the transfer order) and its
    residents ``(id, name, phone)`` that have a phone, each with the reason ``why``."""
    out = [Candidate(f"household:{h.id}", h.head_name, h.phone, h.unit_code, "resident", f"户主，{why}", h.id,
                     h.shelter_id)]  # fmt: skip
    out += [
        Candidate(f"resident:{rid}", name, phone, h.unit_code, "resident", why, h.id, h.shelter_id)
        for rid, name, phone in residents
        if phone
    ]
    return out


def transfer_plan(h: Any) -> dict[str, Any]:
    """Household ``h`` as a line of a transfer order."""
    return {"household_id": h.id, "code": h.code, "head": h.head_name, "people": h.size, "unit_code": h.unit_code,
            "shelter_id": h.shelter_id, "site_id": h.site_id}  # fmt: skip


def _shelters(session: Session, ids: Iterable[int | None]) -> dict[int, tuple[str, str | None]]:
    wanted = sorted({i for i in ids if i is not None})
    out: dict[int, tuple[str, str | None]] = {}
    for chunk in _chunks(wanted):
        for sid, name, address in session.execute(
            select(Shelter.id, Shelter.name, Shelter.address).where(Shelter.id.in_(chunk))
        ):
            out[sid] = (name, address)
    return out


def _endpoints(session: Session, units: Iterable[str], level: Level) -> list[Endpoint]:
    """Group endpoints of the units concerned and of every unit above them."""
    codes = set()
    for u in units:
        codes.update({u[:6], u[:9], u})
    if not codes:
        return []
    stmt = select(Endpoint).where(
        Endpoint.unit_code.in_(sorted(codes)), Endpoint.active.is_(True), Endpoint.min_level <= int(level)
    )
    return list(session.scalars(stmt.order_by(Endpoint.id)))


def _site_info(s: Any, level: Level) -> SiteInfo:
    township = s.township_code or s.unit_code[:9]
    return SiteInfo(s.id, s.code, s.name, s.unit_code, township, level, s.responsible_person_id, s.monitor_id)


def _village_units(sites: Sequence[SiteInfo]) -> list[str]:
    return [s.unit_code for s in sites if len(s.unit_code) == 12]


def for_site(session: Session, site_id: int, level: Level) -> Resolution:
    """Recipients of a site alert at ``level`` (see :mod:`recipients` for the rule); the batch of one
    of :func:`geowarn.dissemination.resolve_sites.for_sites`."""
    from geowarn.dissemination.resolve_sites import for_sites  # it builds on this module's readers

    return for_sites(session, [(site_id, level)])[0]


def _wkb(geom: Any) -> Any:
    return func.ST_GeomFromWKB(literal(shapely.to_wkb(geom), type_=LargeBinary), 4326)


def _within(session: Session, model: Any, polygon: Any, *, intersects: bool = False) -> list[int]:
    """Ids of ``model`` rows whose geometry lies in (or, with ``intersects``, touches) the polygon."""
    if session.get_bind().dialect.name == "postgresql":
        pred = func.ST_Intersects if intersects else func.ST_Covers
        args = (model.geom, _wkb(polygon)) if intersects else (_wkb(polygon), model.geom)
        return list(session.scalars(select(model.id).where(pred(*args))))
    x0, y0, x1, y1 = shapely.bounds(polygon).tolist()
    box = and_(model.maxx >= x0, model.minx <= x1, model.maxy >= y0, model.miny <= y1)
    shapely.prepare(polygon)
    if model in (HazardSite, Household):  # points: their bounding box is the point, no geometry to decode
        got = session.execute(select(model.id, model.minx, model.miny).where(box)).all()
        if not got:
            return []
        ids, xs, ys = (np.array(c) for c in zip(*got, strict=True))
        return ids[shapely.intersects_xy(polygon, xs.astype(float), ys.astype(float))].tolist()
    rows = session.execute(select(model.id, model.geom).where(box)).all()
    if not rows:
        return []
    geoms = np.array([r[1] for r in rows], dtype=object)
    hit = shapely.intersects(polygon, geoms) if intersects else shapely.covers(polygon, geoms)
    return [int(r[0]) for r, h in zip(rows, hit, strict=True) if h]


_SITE_SQL = (
    "SELECT id, code, name, unit_code, township_code, responsible_person_id, monitor_id{extra} FROM hazard_site"
    " WHERE status IN (?, ?) AND "
)


def _live_sites_within(session: Session, polygon: Any, live: people.Sites | None = None) -> list[tuple[Any, ...]]:
    """Sites still threatening people (:data:`LIVE_STATUSES`) whose point lies in the polygon:
    ``(id, code, name, unit_code, township_code, responsible_person_id, monitor_id)``. One query,
    columns and place together (PostGIS ``ST_Covers`` on the GiST index; on SQLite the bounding-box
    columns, which for a point are the point, then ``shapely.intersects_xy``)."""
    if live is not None:  # in memory: the same test on the same points
        x0, y0, x1, y1 = shapely.bounds(polygon).tolist()
        box = np.flatnonzero((live.x >= x0) & (live.x <= x1) & (live.y >= y0) & (live.y <= y1))
        shapely.prepare(polygon)
        inside = box[shapely.intersects_xy(polygon, live.x[box], live.y[box])].tolist()
        return [live.rows[i] for i in inside]
    if session.get_bind().dialect.name == "postgresql":
        sql = _SITE_SQL.format(extra="") + "ST_Covers(ST_GeomFromWKB(?, 4326), geom)"
        return fetch_tuples(session, sql, [*LIVE_STATUSES, shapely.to_wkb(polygon)])
    x0, y0, x1, y1 = shapely.bounds(polygon).tolist()
    sql = _SITE_SQL.format(extra=", minx, miny") + "minx >= ? AND minx <= ? AND miny >= ? AND miny <= ?"
    rows = fetch_tuples(session, sql, [*LIVE_STATUSES, x0, x1, y0, y1])
    if not rows:
        return []
    xy = np.array([r[-2:] for r in rows], dtype=float)
    shapely.prepare(polygon)
    return [r[:-2] for r in itertools.compress(rows, shapely.intersects_xy(polygon, xy[:, 0], xy[:, 1]).tolist())]


def for_areas(
    session: Session, unit_code: str, areas: Sequence[tuple[int, Any]], *, columnar: bool = True
) -> Resolution:
    """Recipients of a regional product whose warning areas are ``(level, polygon)`` pairs.

    ``columnar`` (the default) keeps residents as columns (:class:`Residents`); ``columnar=False`` is the
    straightforward reference (one :class:`Candidate` per record, :func:`merge`), kept for the tests."""
    with no_gc():
        return _for_areas(session, unit_code, areas, columnar)


def _for_areas(session: Session, unit_code: str, areas: Sequence[tuple[int, Any]], columnar: bool) -> Resolution:
    site_level: dict[int, Level] = {}
    site_rows: dict[int, tuple[Any, ...]] = {}
    zone_level: dict[int, Level] = {}
    red_households: list[int] = []  # red: everyone in the area moves (susceptible areas, steep slopes)
    red_areas: list[Any] = []
    session.flush()  # the plain-tuple reads below do not autoflush
    live = people.cached_sites(session) if columnar else None
    for lv, geom in sorted(areas, key=lambda a: a[0]):
        level = Level(lv)
        for row in _live_sites_within(session, geom, live):
            site_rows[row[0]] = row
            site_level[row[0]] = max(site_level.get(row[0], Level.NONE), level)
        if level >= Level.ORANGE:
            for zid in _within(session, RiskZone, geom, intersects=True):
                zone_level[zid] = max(zone_level.get(zid, Level.NONE), level)
        if level >= Level.RED:
            red_areas.append(geom)
            if not columnar:
                red_households += _within(session, Household, geom)
    top = Level(max((lv for lv, _ in areas), default=0))
    d = people.cached(session) if columnar else None  # the register's people in memory, when it holds
    sites = [
        SiteInfo(i, code, name, unit, township or unit[:9], site_level[i], rp, mon)
        for i, code, name, unit, township, rp, mon in (site_rows[i] for i in sorted(site_rows))
    ]
    townships = sorted({s.township for s in sites})
    persons = _persons(session, [p for s in sites for p in (s.responsible_person_id, s.monitor_id) if p], d)
    merger = Merger()  # the site people straight in (no Candidate objects), then the others in order
    if d is not None:  # persons from the directory: phone normalised, key and identity made once
        merger.add_known(_site_people_known(sites, persons, Level.YELLOW))
    else:
        merger.add_many(_site_people_fields(sites, persons, Level.YELLOW))
    candidates = _officials(session, townships, "乡镇值班", d)
    candidates += _officials(session, [unit_code[:6]], "县级值班", d)
    if top >= Level.ORANGE:
        villages = _village_units([s for s in sites if s.level >= Level.ORANGE])
        candidates += _officials(session, villages, "村级值班", d)
    if top >= Level.YELLOW:
        candidates += _department_contacts(session, unit_code[:6])
    plan: Sequence[dict[str, Any]] = []
    residents: Residents | None = None
    if top >= Level.ORANGE:
        moving = [s for s in sites if s.level >= Level.ORANGE]
        zones = sorted(zone_level)
        zone_names = {}
        for chunk in _chunks(zones):
            zone_names.update(
                dict(session.execute(select(RiskZone.id, RiskZone.name).where(RiskZone.id.in_(chunk))).all())
            )
        site_names = {s.id: f"{s.name}（{s.code}）" for s in moving}
        if columnar:
            groups: Groups | None = None
            if d is not None:
                cols = _household_columns_of(d, sorted(site_names), zones, red_areas)
                cands, plan, groups = _resident_columns_of(d, cols, site_names, zone_names)
            else:
                cols = _household_columns(session, sorted(site_names), zones, red_areas)
                cands, plan = _resident_columns(session, cols, site_names, zone_names)
            recipients, residents = merge_residents(merger.extend(candidates).recipients(), cands, groups)
        else:
            households = _households(session, sorted(site_names), zones, red_households)
            res, plan = _resident_candidates(session, households, site_names, zone_names)
            recipients = merger.extend([*candidates, *res]).recipients()
        if isinstance(plan, HouseholdPlan):
            townships = sorted(set(townships) | plan.townships())
            shelter_ids: list[int | None] = list(plan.shelter_ids())
        else:
            townships = sorted(set(townships) | {p["unit_code"][:9] for p in plan})
            shelter_ids = [p["shelter_id"] for p in plan]
    else:
        recipients = merger.extend(candidates).recipients()
        shelter_ids = []
    shelters = _shelters(session, shelter_ids)
    return Resolution(
        recipients, sites, townships, shelters, plan, _endpoints(session, [unit_code, *townships], top), residents
    )


_H_SQL = (
    "SELECT id, code, head_name, phone, size, unit_code, COALESCE(site_id, -1), COALESCE(risk_zone_id, -1),"
    " COALESCE(shelter_id, -1), lon, lat FROM household WHERE "
)
_H_INT = (0, 4, 6, 7, 8)  # id, size, site, zone, shelter


def _household_columns(
    session: Session, site_ids: Sequence[int], zone_ids: Sequence[int], red_areas: Sequence[Any]
) -> dict[str, Any]:
    """Households linked to ``site_ids`` or ``zone_ids`` or lying in a red area (covered by it, as
    ``ST_Covers`` on PostGIS), as columns sorted by id."""
    session.flush()  # the raw cursor does not autoflush
    boxes = [[x0, x1, y0, y1] for x0, y0, x1, y1 in (shapely.bounds(g).tolist() for g in red_areas)]
    inside_box = " OR ".join(["(lon >= ? AND lon <= ? AND lat >= ? AND lat <= ?)"] * len(boxes))
    box_params = [v for b in boxes for v in b]
    rows: list[Any] = []
    if boxes:  # households in the red areas' bounding boxes: keep those in an area or linked
        got = fetch_tuples(session, _H_SQL + inside_box, box_params)
        if got:
            cols = list(zip(*got, strict=True))
            lon, lat = np.array(cols[9], dtype=float), np.array(cols[10], dtype=float)
            keep = np.isin(np.array(cols[6]), site_ids) | np.isin(np.array(cols[7]), zone_ids)
            for g in red_areas:
                shapely.prepare(g)
                keep |= shapely.intersects_xy(g, lon, lat)  # a point: intersects == covered
            rows += [got[i] for i in np.flatnonzero(keep).tolist()]
    outside = f" AND NOT ({inside_box})" if boxes else ""
    for column, ids in (("site_id", site_ids), ("risk_zone_id", zone_ids)):
        rows += fetch_tuples_in(session, _H_SQL + "{cond}" + outside, column, list(ids), box_params)
    names = ("id", "code", "head", "phone", "size", "unit", "site", "zone", "shelter")
    if not rows:
        return {n: np.array([], dtype=np.int64 if i in _H_INT else object) for i, n in enumerate(names)}
    cols = list(zip(*rows, strict=True))
    ids_all = np.array(cols[0], dtype=np.int64)
    _, first = np.unique(ids_all, return_index=True)  # sorted by id, each household once
    out: dict[str, Any] = {}
    for i, n in enumerate(names):
        col = np.array(cols[i], dtype=np.int64) if i in _H_INT else _objects(cols[i])
        out[n] = col[first]
    return out


def _household_columns_of(
    d: people.Directory, site_ids: Sequence[int], zone_ids: Sequence[int], red_areas: Sequence[Any]
) -> dict[str, Any]:
    """:func:`_household_columns` from the directory (no database read), with ``pos``, each household's
    position in the directory."""
    keep = np.isin(d.h_site, site_ids) | np.isin(d.h_zone, zone_ids)
    for g in red_areas:
        x0, y0, x1, y1 = shapely.bounds(g).tolist()
        box = np.flatnonzero((d.h_lon >= x0) & (d.h_lon <= x1) & (d.h_lat >= y0) & (d.h_lat <= y1))
        shapely.prepare(g)
        keep[box[shapely.intersects_xy(g, d.h_lon[box], d.h_lat[box])]] = True  # a point: intersects == covered
    pos = np.flatnonzero(keep)  # the directory is sorted by id
    return {
        "pos": pos,
        "id": d.h_id[pos],
        "code": d.h_code[pos],
        "head": d.h_head[pos],
        "size": d.h_size[pos],
        "unit": d.h_unit[pos],
        "site": d.h_site[pos],
        "zone": d.h_zone[pos],
        "shelter": d.h_shelter[pos],
    }


def _residents_of(session: Session, h: dict[str, Any]) -> tuple[Any, Any, Any, Any]:
    """Residents with a phone of the households ``h`` (columns by id): id, position of the household in
    ``h``, name and phone; sorted by (household, id)."""
    hid = h["id"]
    res_rows = fetch_tuples_in(
        session,
        "SELECT id, household_id, name, phone FROM resident WHERE {cond} AND phone IS NOT NULL AND phone <> ''",
        "household_id",
        hid.tolist(),
    )
    if not res_rows:
        empty = np.array([], dtype=np.int64)
        return empty, empty, _objects([]), _objects([])
    rc = list(zip(*res_rows, strict=True))
    rid, hpos = np.array(rc[0], dtype=np.int64), np.searchsorted(hid, np.array(rc[1], dtype=np.int64))
    o = np.lexsort((rid, hpos))
    return rid[o], hpos[o], _objects(rc[2])[o], _objects(rc[3])[o]


def _objects(values: Sequence[Any]) -> Any:
    arr = np.empty(len(values), dtype=object)
    arr[:] = values
    return arr


def _household_reasons(
    h: dict[str, Any], site_names: dict[int, str], zone_names: dict[int, str]
) -> tuple[Any, list[str], int]:
    """The reason of each household of ``h`` (see :func:`_resident_candidates`) as an index into the
    returned texts; a head's reason is ``head_texts`` further on (户主，…)."""
    site, zone = h["site"], h["zone"]
    nh = len(site)
    # the reason of each household (see _resident_candidates), as an index into ``texts``
    why = np.zeros(nh, dtype=np.int64)
    texts: list[str] = []
    in_site = np.isin(site, list(site_names))
    in_zone = ~in_site & np.isin(zone, list(zone_names))
    rest = ~in_site & ~in_zone
    other = rest & (site >= 0) if site_names else np.zeros(nh, dtype=bool)
    for mask, text in (
        (in_site, lambda v: f"受{site_names[v]}威胁"),
        (in_zone, lambda v: f"居住在风险区{zone_names[v]}内"),
        (other, lambda v: f"受隐患点威胁（{v}）"),
    ):
        values = (zone if mask is in_zone else site)[mask]
        uniq, inv = np.unique(values, return_inverse=True)
        why[mask] = len(texts) + inv.reshape(-1)
        texts += [text(v) for v in uniq.tolist()]
    why[rest & ~other] = len(texts)
    texts.append("居住在红色预警区内")
    head_texts = len(texts)
    texts += [f"户主，{t}" for t in texts]
    return why, texts, head_texts


def _resident_columns_of(
    d: people.Directory, h: dict[str, Any], site_names: dict[int, str], zone_names: dict[int, str]
) -> tuple[Residents, HouseholdPlan, Groups]:
    """:func:`_resident_columns` from the directory, with the candidates' phone groups: the register's
    own grouping kept to the chosen candidates, so that no warning sorts a million phone codes."""
    why, texts, head_texts = _household_reasons(h, site_names, zone_names)
    chosen_h = np.zeros(len(d.h_id), dtype=bool)
    chosen_h[h["pos"]] = True
    chosen = chosen_h[d.c_hpos]
    cidx = np.flatnonzero(chosen)
    hp = (np.cumsum(chosen_h) - 1)[d.c_hpos[cidx]]  # position in ``h`` of each candidate's household
    kind = d.c_kind[cidx]
    cands = Residents(
        kind,
        d.c_record[cidx],
        d.c_name[cidx],
        d.c_phone[cidx],
        h["unit"][hp],
        h["id"][hp],
        h["shelter"][hp],
        why[hp] + head_texts * (kind == 0),
        texts,
        phone_code=d.c_code[cidx],
        phone_table=d.phone_table,
    )
    in_order = d.g_order[chosen[d.g_order]]
    order = (np.cumsum(chosen) - 1)[in_order]  # as indices into ``cands``
    codes = d.c_code[in_order]
    starts, sizes = group_bounds(codes)
    plan = HouseholdPlan(h["id"], h["code"], h["head"], h["size"], h["unit"], h["shelter"], h["site"])
    return cands, plan, (codes[starts], order, order[starts], starts, sizes)


def _resident_columns(
    session: Session, h: dict[str, Any], site_names: dict[int, str], zone_names: dict[int, str]
) -> tuple[Residents, HouseholdPlan]:
    """Candidates of :func:`_resident_candidates` as columns: per household (by id) its head, then its
    residents with a phone (by id); and the households for the transfer orders."""
    hid, site = h["id"], h["site"]
    nh = len(hid)
    why, texts, head_texts = _household_reasons(h, site_names, zone_names)
    rid, hpos, rname, rphone = _residents_of(session, h)
    head_at, res_at = merge_positions(nh, hpos)
    n = nh + len(rid)

    def col(dtype: Any, heads: Any, res: Any) -> Any:
        out = np.empty(n, dtype=dtype)
        out[head_at], out[res_at] = heads, res
        return out

    cands = Residents(
        col(np.int8, 0, 1),
        col(np.int64, hid, rid),
        col(object, h["head"], rname),
        col(object, h["phone"], rphone),
        col(object, h["unit"], h["unit"][hpos]),
        col(np.int64, hid, hid[hpos]),
        col(np.int64, h["shelter"], h["shelter"][hpos]),
        col(np.int64, why + head_texts, why[hpos]),
        texts,
    )
    return cands, HouseholdPlan(hid, h["code"], h["head"], h["size"], h["unit"], h["shelter"], site)


def preferences(session: Session, keys: Iterable[str]) -> dict[str, Pref]:
    """Stored preferences of the given person keys."""
    wanted = sorted(set(keys))
    out: dict[str, Pref] = {}
    for i in range(0, len(wanted), CHUNK):
        for p in session.scalars(select(Preference).where(Preference.person_key.in_(wanted[i : i + CHUNK]))):
            out[p.person_key] = Pref(tuple(p.channels or ()), p.quiet_start, p.quiet_end, p.email, p.language)
    return out
