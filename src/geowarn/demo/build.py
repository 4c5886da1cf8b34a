"""Writes the demo county into a database: units, register, people, shelters, zones and users.

The demo users and their passwords (for trying the platform; never use them in production):

=========  ===============  ==============================  =====================
username   role             unit                            password
=========  ===============  ==============================  =====================
admin      administrator    350922 示范县                   ``Geowarn-admin-2021``
operator   operator         350922 示范县                   ``Geowarn-operator-2021``
viewer     viewer           350922 示范县                   ``Geowarn-viewer-2021``
chengxi    operator         350922002 城西街道              ``Geowarn-chengxi-2021``
weather    weather          350922 示范县                   ``Geowarn-weather-2021``
monitor    monitor          the village of its monitor      ``Geowarn-monitor-2021``
=========  ===============  ==============================  =====================

The hashes are argon2id with a salt derived from the seed and the username, so that two builds
with the same seed are byte-identical; this is acceptable only because these passwords are public.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from geowarn.admin.codes import UnitLevel
from geowarn.admin.models import AdminUnit
from geowarn.auth.models import User
from geowarn.auth.passwords import hasher as password_hasher
from geowarn.auth.roles import Role
from geowarn.db import Database
from geowarn.demo.geography import Frame, Unit, add_villages, build_geography, multipolygon
from geowarn.demo.names import NameGenerator
from geowarn.demo.register import (
    ShelterSpec,
    SiteSpec,
    ZoneSpec,
    make_households,
    make_risk_zones,
    make_shelters,
    make_sites,
    make_steep_slopes,
    place_sites,
)
from geowarn.demo.summary import DemoSummary, DemoUser, summarize_demo
from geowarn.errors import Conflict
from geowarn.inventory.domain import DEPARTMENT_ZH, Department, PersonRole, SiteStatus
from geowarn.inventory.models import HazardSite, Household, Organisation, Person, Resident, RiskZone, Shelter
from geowarn.inventory.service import record_registration, transition_site_status
from geowarn.inventory.zoning import assign_households, assign_sites_to_risk_zones, refresh_risk_zone_counts

DEMO_SEED = 2021
PROVINCE = ("350000", "福建省")
CITY = ("350900", "宁德市")
COUNTY = ("350922", "示范县")
SEAT = (118.9, 26.6)  # the county seat, lon/lat
ACTOR = "demo"
COUNTY_DEPARTMENTS = (
    Department.NATURAL_RESOURCES,
    Department.EMERGENCY,
    Department.WEATHER,
    Department.HOUSING,
    Department.TRANSPORT,
    Department.WATER,
    Department.EDUCATION,
)


@dataclass
class DemoData:
    """Everything the generator draws, before it is stored (pure and seeded)."""

    seed: int
    frame: Frame
    county: Any  # lon/lat polygon
    towns: list[Unit]
    sites: list[SiteSpec]
    slopes: list[SiteSpec]
    shelters: list[ShelterSpec]
    zones: list[ZoneSpec]
    names: NameGenerator
    rng: np.random.Generator


def generate(seed: int = DEMO_SEED) -> DemoData:
    """Draw the demo county (no database): same seed, same county."""
    rng = np.random.default_rng(seed)
    names = NameGenerator(rng)
    frame = Frame(*SEAT)
    county_m, towns = build_geography(rng, COUNTY[0])
    add_villages(rng, towns, names)
    sites = make_sites(rng, towns, COUNTY[0])
    slopes = make_steep_slopes(rng, towns, COUNTY[0], names)
    place_sites(rng, sites + slopes, frame)
    make_households(rng, sites + slopes, frame, names)
    shelters = make_shelters(rng, towns, sites + slopes, frame)
    zones = make_risk_zones(rng, sites + slopes, frame, COUNTY[0])
    return DemoData(seed, frame, frame.to_lonlat(county_m), towns, sites, slopes, shelters, zones, names, rng)


def _units(data: DemoData) -> list[AdminUnit]:
    county = multipolygon(data.county)
    out = [
        AdminUnit(code=PROVINCE[0], name=PROVINCE[1], level=UnitLevel.PROVINCE.value, parent_code=None),
        AdminUnit(code=CITY[0], name=CITY[1], level=UnitLevel.CITY.value, parent_code=PROVINCE[0]),
        AdminUnit(code=COUNTY[0], name=COUNTY[1], level=UnitLevel.COUNTY.value, parent_code=CITY[0], geom=county),
    ]
    for t in data.towns:
        geom = multipolygon(data.frame.to_lonlat(t.shape))
        out.append(
            AdminUnit(code=t.code, name=t.name, level=UnitLevel.TOWNSHIP.value, parent_code=COUNTY[0], geom=geom)
        )
        for v in t.villages:
            vg = multipolygon(data.frame.to_lonlat(v.shape))
            out.append(AdminUnit(code=v.code, name=v.name, level=UnitLevel.VILLAGE.value, parent_code=t.code, geom=vg))
    return out


class _People:
    """Organisations and persons of the county, made in a fixed order from the seeded generator."""

    def __init__(self, session: Session, data: DemoData) -> None:
        self.s, self.data, self.names = session, data, data.names
        self.village_head: dict[str, Person] = {}
        self.cadre: dict[str, Person] = {}

    def person(self, roles: list[PersonRole], unit: str, title: str, org: Organisation | None = None) -> Person:
        name, _ = self.names.person(female=bool(self.data.rng.random() < 0.3))
        p = Person(
            name=name,
            phone=self.names.phone(),
            title=title,
            roles=[r.value for r in roles],
            unit_code=unit,
            organisation=org,
            active=True,
        )
        self.s.add(p)
        return p

    def build(self) -> None:
        county = COUNTY[0]
        for dep in COUNTY_DEPARTMENTS:
            org = Organisation(name=f"{COUNTY[1]}{DEPARTMENT_ZH[dep]}", department=dep.value, unit_code=county)
            self.s.add(org)
            if dep is Department.NATURAL_RESOURCES:
                self.person([PersonRole.LEADER], county, "分管副局长", org)
            self.person([PersonRole.CONTACT], county, "地质灾害防治联络员", org)
            self.person([PersonRole.DUTY_OFFICIAL], county, "值班员", org)
        for t in self.data.towns:
            office = "街道办事处" if t.is_street else "人民政府"
            org = Organisation(name=f"{t.name}{office}", department=Department.GOVERNMENT.value, unit_code=t.code)
            self.s.add(org)
            self.person([PersonRole.LEADER, PersonRole.RESPONSIBLE], t.code, f"{t.name}分管领导", org)
            self.cadre[t.code] = self.person([PersonRole.RESPONSIBLE], t.code, f"{t.name}包村干部", org)
            for k in range(2):
                self.person([PersonRole.DUTY_OFFICIAL], t.code, f"{t.name}值班{'领导' if k == 0 else '员'}", org)
            for v in t.villages:
                head = "社区居委会主任" if t.is_street else "村委会主任"
                self.village_head[v.code] = self.person([PersonRole.RESPONSIBLE], v.code, f"{v.name}{head}")

    def for_site(self, spec: SiteSpec) -> tuple[Person, Person]:
        use_head = self.data.rng.random() < 0.75
        responsible = self.village_head[spec.village.code] if use_head else self.cadre[spec.town.code]
        monitor = self.person([PersonRole.MONITOR], spec.village.code, "群测群防监测员")
        return responsible, monitor


def _site(spec: SiteSpec, responsible: Person, monitor: Person) -> HazardSite:
    return HazardSite(
        code=spec.code,
        name=spec.name,
        hazard_type=spec.hazard_type,
        lon=spec.lon,
        lat=spec.lat,
        geom=shapely.Point(spec.lon, spec.lat),
        danger_zone_geom=multipolygon(spec.danger_zone),
        scale=spec.scale,
        volume_m3=spec.volume_m3,
        danger_grade=spec.danger_grade,
        stability=spec.stability,
        threatened_households=len(spec.households),
        threatened_people=spec.people,
        threatened_property_yuan=spec.property_yuan,
        unit_code=spec.village.code,
        township_code=spec.town.code,
        location_text=f"{spec.town.name}{spec.village.name}{spec.place}",
        responsible_person=responsible,
        monitor=monitor,
        monitoring_mode=spec.mode,
        registered_on=spec.registered_on,
        extra=spec.extra,
    )


def _households(session: Session, spec: SiteSpec, site: HazardSite, shelters: list[Shelter]) -> int:
    n = 0
    for h in spec.households:
        hh = Household(
            code=h.code,
            head_name=h.head,
            phone=h.phone,
            id_number=h.id_number,
            size=h.size,
            address=h.address,
            lon=h.lon,
            lat=h.lat,
            geom=shapely.Point(h.lon, h.lat),
            unit_code=spec.village.code,
            site_id=site.id,
            shelter_id=shelters[h.shelter].id,
        )
        hh.residents = [
            Resident(
                name=m["name"],
                phone=m["phone"],
                id_number=m["id_number"],
                relation=m["relation"],
                vulnerable=m["vulnerable"],
                unit_code=spec.village.code,
            )
            for m in h.members
        ]
        session.add(hh)
        n += len(h.members)
    return n


def _users(session: Session, data: DemoData, monitor: Person) -> list[DemoUser]:
    plan = [
        ("admin", Role.ADMINISTRATOR, COUNTY[0], "示范县管理员", None),
        ("operator", Role.OPERATOR, COUNTY[0], "示范县自然资源局业务员", None),
        ("viewer", Role.VIEWER, COUNTY[0], "示范县查看者", None),
        ("chengxi", Role.OPERATOR, f"{COUNTY[0]}002", "城西街道业务员", None),
        ("weather", Role.WEATHER, COUNTY[0], "示范县气象局预报员", None),
        ("monitor", Role.MONITOR, monitor.unit_code, monitor.name, monitor),
    ]
    hasher = password_hasher()  # the process's profile (RFC 9106; the cheap one only in test mode)
    out = []
    for username, role, unit, display, person in plan:
        password = f"Geowarn-{username}-2021"
        salt = hashlib.sha256(f"geowarn-demo:{data.seed}:{username}".encode()).digest()[:16]
        session.add(
            User(
                username=username,
                display_name=display,
                password_hash=hasher.hash(password, salt=salt),
                role=role.value,
                unit_code=unit,
                person_id=person.id if person is not None else None,
                active=True,
            )
        )
        out.append(DemoUser(username, password, role.value, unit, display))
    return out


def _ensure_empty(session: Session) -> None:
    has_sites = session.scalar(select(func.count()).select_from(HazardSite)) or 0
    has_county = session.get(AdminUnit, COUNTY[0]) is not None
    if has_sites or has_county:
        raise Conflict(
            "the demo county needs an empty database",
            message_zh="示范县只能建在空数据库中（已有隐患点或行政区划数据）",
        )


def build_demo_county(db: Database, seed: int = DEMO_SEED) -> DemoSummary:
    """Build the demo county (示范县, 350922) into an empty migrated database; returns its figures.

    Everything goes through ``db.write("demo")`` and the ORM, so the audit log records it.
    """
    data = generate(seed)
    with db.write(ACTOR) as session:
        _ensure_empty(session)
        session.add_all(_units(data))
        people = _People(session, data)
        people.build()
        session.flush()
        site_rows: list[tuple[SiteSpec, HazardSite]] = []
        for spec in data.sites + data.slopes:
            responsible, monitor = people.for_site(spec)
            site = _site(spec, responsible, monitor)
            session.add(site)
            record_registration(session, site, effective_on=spec.registered_on, actor=ACTOR)
            for status, on, reason, evidence in spec.history:
                transition_site_status(
                    session, site, SiteStatus(status), reason=reason, effective_on=on, evidence=evidence, actor=ACTOR
                )
            site_rows.append((spec, site))
        for z in data.zones:
            session.add(
                RiskZone(code=z.code, name=z.name, grade=z.grade, geom=multipolygon(z.geom), unit_code=z.unit_code)
            )
        shelters = [
            Shelter(
                code=sh.code,
                name=sh.name,
                lon=sh.lon,
                lat=sh.lat,
                geom=shapely.Point(sh.lon, sh.lat),
                capacity=sh.capacity,
                address=f"{sh.town.name}{sh.village.name}",
                unit_code=sh.village.code,
                contact_id=None,
            )
            for sh in data.shelters
        ]
        session.add_all(shelters)
        session.flush()
        for sh, row in zip(data.shelters, shelters, strict=True):
            row.contact_id = people.village_head[sh.village.code].id
        residents = sum(_households(session, spec, site, shelters) for spec, site in site_rows)
        session.flush()
        links = assign_sites_to_risk_zones(session, COUNTY[0])
        assign_households(session, COUNTY[0])
        refresh_risk_zone_counts(session, COUNTY[0])
        watcher = next(s for spec, s in site_rows if spec.town.name == "城西街道" and spec.mode != "community")
        assert watcher.monitor is not None
        users = _users(session, data, watcher.monitor)
        session.flush()
        counts = {
            "persons": session.scalar(select(func.count()).select_from(Person)) or 0,
            "organisations": session.scalar(select(func.count()).select_from(Organisation)) or 0,
            "residents": residents,
            "risk_zone_links": links,
        }
        return summarize_demo(data, counts, users)


__all__ = ["DEMO_SEED", "DemoData", "DemoSummary", "DemoUser", "build_demo_county", "generate"]
