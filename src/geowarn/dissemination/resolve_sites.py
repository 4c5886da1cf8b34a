"""Recipients of many site alerts at once (an engine batch): one read of the register for all sites.

The rule is :mod:`geowarn.dissemination.recipients` (module docstring): a site alert goes to the
site's responsible person and monitor at every level; from yellow up to the duty officials of its
village and township; from orange up to the threatened residents (households linked to the site or
inside its danger zone), the county's duty officials and department contacts. Each request gets the
:class:`Resolution` it would get alone (:func:`geowarn.dissemination.resolve.for_site` is this with
one request); the register rows are read once for the whole batch and shared out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from geowarn.dissemination.models import Endpoint
from geowarn.dissemination.recipients import Candidate, merge
from geowarn.dissemination.resolve import (
    ALERT_DEPARTMENTS,
    CHUNK,
    Resolution,
    SiteInfo,
    _chunks,
    _households,
    _persons,
    _shelters,
    _site_info,
    _site_people,
    _village_units,
    _within,
    household_candidates,
    transfer_plan,
)
from geowarn.inventory.models import HazardSite, Household, Organisation, Person, Resident
from geowarn.warning.levels import Level


@dataclass(slots=True)
class _Register:
    """What the batch's sites need from the register, read once."""

    sites: dict[int, HazardSite]
    persons: dict[int, Any]
    officials: list[Any]  # duty officials and leaders at any unit asked for, by id
    contacts: list[tuple[Any, str]]  # (person, organisation name) of the alerting departments, by person id
    households: list[Any]  # rows of resolve.HOUSEHOLD_COLUMNS, by id
    zone_households: dict[int, set[int]]  # site -> households inside its danger zone
    residents: dict[int, list[tuple[int, str, str | None]]]  # household -> (id, name, phone), by id
    shelters: dict[int, tuple[str, str | None]]
    endpoints: list[Endpoint]  # active group endpoints of the units concerned, by id


def for_sites(session: Session, requests: Sequence[tuple[int, Level]]) -> list[Resolution]:
    """The recipients of each (site id, level) request, in order (an unknown site: nobody)."""
    reg = _read(session, requests)
    return [_resolve(reg, site_id, level) for site_id, level in requests]


def _read(session: Session, requests: Sequence[tuple[int, Level]]) -> _Register:
    sites: dict[int, HazardSite] = {}
    for chunk in _chunks(sorted({i for i, _ in requests})):
        sites.update((s.id, s) for s in session.scalars(select(HazardSite).where(HazardSite.id.in_(chunk))))
    asked = [(sites[i], level) for i, level in requests if i in sites]
    persons = _persons(session, [p for s, _ in asked for p in (s.responsible_person_id, s.monitor_id) if p])
    units: set[str] = set()
    for s, level in asked:
        info = _site_info(s, level)
        if level >= Level.YELLOW:
            units.update([*_village_units([info]), info.township])
        if level >= Level.ORANGE:
            units.add(s.unit_code[:6])
    moving = sorted({s.id for s, level in asked if level >= Level.ORANGE})
    zone = _danger_zone_households(session, [sites[i] for i in moving if sites[i].danger_zone_geom is not None])
    households = _households(session, moving, [], sorted({h for ids in zone.values() for h in ids}))
    residents = _residents(session, [h.id for h in households])
    counties = sorted({sites[i].unit_code[:6] for i in moving})
    codes = {c for s, _ in asked for c in (s.unit_code[:6], s.unit_code[:9], s.unit_code)}
    endpoints = session.scalars(
        select(Endpoint).where(Endpoint.unit_code.in_(sorted(codes)), Endpoint.active.is_(True)).order_by(Endpoint.id)
    )
    return _Register(
        sites,
        persons,
        _officials(session, units),
        _contacts(session, counties),
        households,
        zone,
        residents,
        _shelters(session, [h.shelter_id for h in households]),
        list(endpoints) if codes else [],
    )


def _officials(session: Session, units: Iterable[str]) -> list[Any]:
    """Active duty officials and leaders registered at one of ``units``, by id."""
    out: list[Any] = []
    wanted: list[str] = sorted(set(units))
    for i in range(0, len(wanted), CHUNK):
        rows = session.execute(
            select(Person.id, Person.name, Person.phone, Person.unit_code, Person.roles)
            .where(Person.unit_code.in_(wanted[i : i + CHUNK]), Person.active.is_(True))
            .order_by(Person.id)
        )
        out += [p for p in rows if set(p.roles or []) & {"duty_official", "leader"}]
    return sorted(out, key=lambda p: p.id)


def _contacts(session: Session, counties: Sequence[str]) -> list[tuple[Any, str]]:
    """Contacts, leaders and duty officials of the alerting departments registered at the counties."""
    if not counties:
        return []
    rows = session.execute(
        select(Person.id, Person.name, Person.phone, Person.unit_code, Person.roles, Organisation.name.label("org"))
        .join(Organisation, Organisation.id == Person.organisation_id)
        .where(Person.unit_code.in_(counties), Person.active.is_(True), Organisation.department.in_(ALERT_DEPARTMENTS))
        .order_by(Person.id)
    )
    roles = {"contact", "leader", "duty_official"}
    return [(p, p.org) for p in rows if roles & set(p.roles or [])]


def _danger_zone_households(session: Session, sites: Sequence[HazardSite]) -> dict[int, set[int]]:
    """Households inside each site's danger zone (covered by it): one spatial join on PostGIS."""
    if not sites:
        return {}
    out: dict[int, set[int]] = {s.id: set() for s in sites}
    if session.get_bind().dialect.name != "postgresql":  # in-process: a bounding-box read per site is cheap
        for s in sites:
            out[s.id].update(_within(session, Household, s.danger_zone_geom))
        return out
    for chunk in _chunks([s.id for s in sites]):
        rows = session.execute(
            select(HazardSite.id, Household.id)
            .join(Household, func.ST_Covers(HazardSite.danger_zone_geom, Household.geom))
            .where(HazardSite.id.in_(chunk))
        )
        for site_id, household_id in rows:
            out[site_id].add(household_id)
    return out


def _residents(session: Session, household_ids: Sequence[int]) -> dict[int, list[tuple[int, str, str | None]]]:
    out: dict[int, list[tuple[int, str, str | None]]] = {}
    for chunk in _chunks(sorted(set(household_ids))):
        for rid, hid, name, phone in session.execute(
            select(Resident.id, Resident.household_id, Resident.name, Resident.phone)
            .where(Resident.household_id.in_(chunk))
            .order_by(Resident.id)
        ):
            out.setdefault(hid, []).append((rid, name, phone))
    return out


def _resolve(reg: _Register, site_id: int, level: Level) -> Resolution:
    """One request from the shared rows, in the order of candidates a lone resolution reads them."""
    site = reg.sites.get(site_id)
    if site is None:
        return Resolution([])
    info = _site_info(site, level)
    candidates = _site_people([info], reg.persons, Level.BLUE)
    plan: list[dict[str, Any]] = []
    if level >= Level.YELLOW:
        candidates += _official_candidates(reg, {*_village_units([info]), info.township}, "乡镇（村）值班")
    if level >= Level.ORANGE:
        zone = reg.zone_households.get(site.id, set())
        households = [h for h in reg.households if h.site_id == site.id or h.id in zone]
        residents, plan = _resident_candidates(reg, households, info)
        candidates += residents
        candidates += _official_candidates(reg, {site.unit_code[:6]}, "县级值班")
        county = site.unit_code[:6]
        candidates += [
            Candidate(f"person:{p.id}", p.name, p.phone, p.unit_code, "department", f"部门联络人：{org}")
            for p, org in reg.contacts
            if p.unit_code == county
        ]
    wanted = sorted({p["shelter_id"] for p in plan if p["shelter_id"] is not None})
    shelters = {i: reg.shelters[i] for i in wanted if i in reg.shelters}
    codes = {site.unit_code[:6], site.unit_code[:9], site.unit_code}
    endpoints = [e for e in reg.endpoints if e.unit_code in codes and e.min_level <= int(level)]
    return Resolution(merge(candidates), [info], [info.township], shelters, plan, endpoints)


def _official_candidates(reg: _Register, units: set[str], reason: str) -> list[Candidate]:
    return [
        Candidate(f"person:{p.id}", p.name, p.phone, p.unit_code, "official", f"{reason}（{p.unit_code}）")
        for p in reg.officials
        if p.unit_code in units
    ]


def _resident_candidates(
    reg: _Register, households: Sequence[Any], site: SiteInfo
) -> tuple[list[Candidate], list[dict[str, Any]]]:
    """Household heads (listed even without a phone, for the transfer order) and residents with a phone,
    as :func:`geowarn.dissemination.resolve._resident_candidates` gives them for one site."""
    out: list[Candidate] = []
    plan: list[dict[str, Any]] = []
    for h in households:
        if h.site_id == site.id:
            why = f"受{site.name}（{site.code}）威胁"
        else:
            why = "居住在红色预警区内" if h.site_id is None else f"受隐患点威胁（{h.site_id}）"
        out += household_candidates(h, why, reg.residents.get(h.id, []))
        plan.append(transfer_plan(h))
    return out, plan
