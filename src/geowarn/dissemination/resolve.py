"""Recipient resolution against the register (storage adapter of :mod:`geowarn.dissemination.recipients`).

Reads the sites, danger zones, risk zones, households, residents and persons a warning concerns and
turns them into :class:`Candidate` rows; the pure core merges them into one entry per person.
Which audience is told at which level is in :mod:`recipients` (module docstring).
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from sqlalchemy import LargeBinary, and_, func, literal, select
from sqlalchemy.orm import Session

from geowarn.dissemination.models import Endpoint, Preference
from geowarn.dissemination.recipients import Candidate, Pref, Recipient, Residents, merge, merge_residents
from geowarn.inventory.models import HazardSite, Household, Organisation, Person, Resident, RiskZone, Shelter
from geowarn.warning.levels import Level

CHUNK = 5000
#: Sites that still threaten people (treated, relocated and written-off sites do not).
LIVE_STATUSES = ("registered", "under_treatment")
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


@dataclass(slots=True)
class Resolution:
    """The recipients of one warning and what the messages need about them."""

    recipients: list[Recipient]  # persons (and, on the slow path, residents)
    sites: list[SiteInfo] = field(default_factory=list)
    townships: list[str] = field(default_factory=list)
    shelters: dict[int, tuple[str, str | None]] = field(default_factory=dict)  # id -> (name, address/route)
    households: list[dict[str, Any]] = field(default_factory=list)  # for transfer orders
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


def _persons(session: Session, ids: Iterable[int]) -> dict[int, Any]:
    """Active persons by id (rows of :data:`PERSON_COLUMNS`: thousands are read for a province)."""
    wanted = sorted({i for i in ids if i is not None})
    out: dict[int, Any] = {}
    for chunk in _chunks(wanted):
        for p in session.execute(select(*PERSON_COLUMNS).where(Person.id.in_(chunk), Person.active.is_(True))):
            out[p.id] = p
    return out


def _officials(session: Session, units: Iterable[str], reason: str) -> list[Candidate]:
    """Duty officials and leaders registered exactly at one of ``units``."""
    units = sorted(set(units))
    if not units:
        return []
    out = []
    for p in session.execute(select(*PERSON_COLUMNS).where(Person.unit_code.in_(units), Person.active.is_(True))):
        roles = set(p.roles or [])
        if roles & {"duty_official", "leader"}:
            out.append(
                Candidate(f"person:{p.id}", p.name, p.phone, p.unit_code, "official", f"{reason}（{p.unit_code}）")
            )
    return out


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


def _site_people(sites: Sequence[SiteInfo], persons: dict[int, Any], min_level: Level) -> list[Candidate]:
    out = []
    for s in sites:
        if s.level < min_level:
            continue
        for pid, what in ((s.responsible_person_id, "防灾责任人"), (s.monitor_id, "监测人")):
            p = persons.get(pid) if pid is not None else None
            if p is not None:
                out.append(
                    Candidate(
                        f"person:{p.id}", p.name, p.phone, p.unit_code, "responsible", f"{s.name}（{s.code}）{what}"
                    )
                )
    return out


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
    rows = session.execute(
        select(model.id, model.geom).where(and_(model.maxx >= x0, model.minx <= x1, model.maxy >= y0, model.miny <= y1))
    ).all()
    if not rows:
        return []
    shapely.prepare(polygon)
    geoms = np.array([r[1] for r in rows], dtype=object)
    hit = shapely.intersects(polygon, geoms) if intersects else shapely.covers(polygon, geoms)
    return [int(r[0]) for r, h in zip(rows, hit, strict=True) if h]


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
    zone_level: dict[int, Level] = {}
    red_households: list[int] = []  # red: everyone in the area moves (susceptible areas, steep slopes)
    red_areas: list[Any] = []
    for lv, geom in sorted(areas, key=lambda a: a[0]):
        level = Level(lv)
        for sid in _within(session, HazardSite, geom):
            site_level[sid] = max(site_level.get(sid, Level.NONE), level)
        if level >= Level.ORANGE:
            for zid in _within(session, RiskZone, geom, intersects=True):
                zone_level[zid] = max(zone_level.get(zid, Level.NONE), level)
        if level >= Level.RED:
            red_areas.append(geom)
            if not columnar:
                red_households += _within(session, Household, geom)
    top = Level(max((lv for lv, _ in areas), default=0))
    sites: list[SiteInfo] = []
    for chunk in _chunks(sorted(site_level)):
        for s in session.execute(
            select(*SITE_COLUMNS).where(HazardSite.id.in_(chunk), HazardSite.status.in_(LIVE_STATUSES))
        ):
            sites.append(_site_info(s, site_level[s.id]))
    townships = sorted({s.township for s in sites})
    persons = _persons(session, [p for s in sites for p in (s.responsible_person_id, s.monitor_id) if p])
    candidates = _site_people(sites, persons, Level.YELLOW)
    candidates += _officials(session, townships, "乡镇值班")
    candidates += _officials(session, [unit_code[:6]], "县级值班")
    if top >= Level.ORANGE:
        candidates += _officials(session, _village_units([s for s in sites if s.level >= Level.ORANGE]), "村级值班")
    if top >= Level.YELLOW:
        candidates += _department_contacts(session, unit_code[:6])
    plan: list[dict[str, Any]] = []
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
            cols = _household_columns(session, sorted(site_names), zones, red_areas)
            cands, plan = _resident_columns(session, cols, site_names, zone_names)
            recipients, residents = merge_residents(merge(candidates), cands)
        else:
            households = _households(session, sorted(site_names), zones, red_households)
            res, plan = _resident_candidates(session, households, site_names, zone_names)
            recipients = merge([*candidates, *res])
        townships = sorted(set(townships) | {u[:9] for u in {p["unit_code"] for p in plan}})
    else:
        recipients = merge(candidates)
    shelters = _shelters(session, [p["shelter_id"] for p in plan])
    return Resolution(
        recipients, sites, townships, shelters, plan, _endpoints(session, [unit_code, *townships], top), residents
    )


def _raw(session: Session, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Rows as plain tuples through the driver's cursor (``?`` placeholders; Row objects cost ~30x more)."""
    conn = session.connection()
    raw: Any = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        with raw.cursor() as cur:
            cur.execute(sql.replace("?", "%s"), params)
            return list(cur.fetchall())
    return list(raw.execute(sql, params).fetchall())


def _raw_in(session: Session, sql: str, column: str, ids: Sequence[int], params: Sequence[Any] = ()) -> list[Any]:
    """``sql`` (with ``{in}`` where ``column`` is tested) for ``ids``: one array parameter on PostgreSQL,
    chunks of :data:`CHUNK` placeholders on SQLite. ``params`` are the placeholders after ``{in}``."""
    if not ids:
        return []
    if session.get_bind().dialect.name == "postgresql":
        return _raw(session, sql.format(cond=f"{column} = ANY(?)"), [list(ids), *params])
    out: list[Any] = []
    for chunk in _chunks(ids):
        out += _raw(session, sql.format(cond=f"{column} IN ({','.join('?' * len(chunk))})"), [*chunk, *params])
    return out


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
        got = _raw(session, _H_SQL + inside_box, box_params)
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
        rows += _raw_in(session, _H_SQL + "{cond}" + outside, column, list(ids), box_params)
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


def _objects(values: Sequence[Any]) -> Any:
    arr = np.empty(len(values), dtype=object)
    arr[:] = values
    return arr


def _resident_columns(
    session: Session, h: dict[str, Any], site_names: dict[int, str], zone_names: dict[int, str]
) -> tuple[Residents, list[dict[str, Any]]]:
    """Candidates of :func:`_resident_candidates` as columns: per household (by id) its head, then its
    residents with a phone (by id); and the households for the transfer orders."""
    hid, site, zone = h["id"], h["site"], h["zone"]
    nh = len(hid)
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
    # residents with a phone, by (household, id)
    res_rows = _raw_in(
        session,
        "SELECT id, household_id, name, phone FROM resident WHERE {cond} AND phone IS NOT NULL AND phone <> ''",
        "household_id",
        hid.tolist(),
    )
    if res_rows:
        rc = list(zip(*res_rows, strict=True))
        rid, rhid = np.array(rc[0], dtype=np.int64), np.array(rc[1], dtype=np.int64)
        rname, rphone = _objects(rc[2]), _objects(rc[3])
    else:
        rid = rhid = np.array([], dtype=np.int64)
        rname = rphone = _objects([])
    hpos = np.searchsorted(hid, rhid)
    o = np.lexsort((rid, hpos))
    rid, hpos, rname, rphone = rid[o], hpos[o], rname[o], rphone[o]
    per = np.bincount(hpos, minlength=nh)
    before = np.cumsum(per) - per  # residents of earlier households
    head_at = np.arange(nh) + before
    res_at = head_at[hpos] + 1 + (np.arange(len(rid)) - before[hpos])
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
    plan = [
        {
            "household_id": i,
            "code": c,
            "head": hd,
            "people": p,
            "unit_code": u,
            "shelter_id": sh if sh >= 0 else None,
            "site_id": si if si >= 0 else None,
        }
        for i, c, hd, p, u, sh, si in zip(
            hid.tolist(),
            h["code"].tolist(),
            h["head"].tolist(),
            h["size"].tolist(),
            h["unit"].tolist(),
            h["shelter"].tolist(),
            site.tolist(),
            strict=True,
        )
    ]
    return cands, plan


def preferences(session: Session, keys: Iterable[str]) -> dict[str, Pref]:
    """Stored preferences of the given person keys."""
    wanted = sorted(set(keys))
    out: dict[str, Pref] = {}
    for i in range(0, len(wanted), CHUNK):
        for p in session.scalars(select(Preference).where(Preference.person_key.in_(wanted[i : i + CHUNK]))):
            out[p.person_key] = Pref(tuple(p.channels or ()), p.quiet_start, p.quiet_end, p.email, p.language)
    return out
