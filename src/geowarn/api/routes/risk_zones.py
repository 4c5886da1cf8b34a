"""``/api/risk-zones``: graded risk zones (风险区) and the sites inside them (隐患点+风险区双控).

A zone's sites are those its polygon covers and those declared linked (``risk_zone_site``); the
declared links are replaced through ``PUT /{zone_id}/site-links``, one audited change of the zone.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, Field
from sqlalchemy import delete, insert, select

from geowarn.api import site_ops
from geowarn.api.deps import Reader, ReadSession, Writer, WriteSession
from geowarn.api.geojson import to_multipolygon
from geowarn.api.schemas.common import Input, Page
from geowarn.api.schemas.register import RiskZoneCreate, RiskZonePublic, RiskZoneUpdate
from geowarn.api.schemas.sites import SitePublic
from geowarn.api.scoping import apply_changes, check_unit, get_scoped, page, scope_filter
from geowarn.audit.hook import record
from geowarn.errors import InvalidInput
from geowarn.inventory.domain import RiskGrade
from geowarn.inventory.models import HazardSite, RiskZone, RiskZoneSite
from geowarn.spatial import queries

router = APIRouter(prefix="/risk-zones", tags=["risk zones"])

REQUIRED = frozenset({"name", "grade", "geom", "households", "people", "unit_code"})


@router.get("", response_model=Page[RiskZonePublic])
def list_zones(
    session: ReadSession,
    user: Reader,
    grade: RiskGrade | None = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
    site_id: Annotated[int | None, Query(description="zones covering the site or linked to it")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[RiskZonePublic]:
    stmt = select(RiskZone).where(scope_filter(RiskZone, user)).order_by(RiskZone.code, RiskZone.id)
    if site_id is not None:
        stmt = stmt.where(RiskZone.id.in_(_zones_of_site(session, user, site_id)))
    if grade:
        stmt = stmt.where(RiskZone.grade == grade.value)
    if q:
        stmt = stmt.where(RiskZone.name.icontains(q, autoescape=True) | RiskZone.code.icontains(q, autoescape=True))
    zones, total = page(session, stmt, limit, offset)
    return Page[RiskZonePublic](
        items=[RiskZonePublic.model_validate(z) for z in zones], total=total, limit=limit, offset=offset
    )


@router.get("/{zone_id}", response_model=RiskZonePublic)
def get_zone(zone_id: int, session: ReadSession, user: Reader) -> RiskZonePublic:
    return RiskZonePublic.model_validate(get_scoped(session, RiskZone, zone_id, user))


@router.get("/{zone_id}/sites", response_model=Page[SitePublic])
def zone_sites(
    zone_id: int,
    session: ReadSession,
    user: Reader,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[SitePublic]:
    """Sites of the caller's scope inside the zone's polygon or linked to the zone."""
    zone = get_scoped(session, RiskZone, zone_id, user)
    where = scope_filter(HazardSite, user)
    inside = set(queries.within_polygon(session, HazardSite, zone.geom, where=where))
    linked = set(session.scalars(select(RiskZoneSite.site_id).where(RiskZoneSite.zone_id == zone.id)))
    ids = sorted(inside | linked)
    sites = site_ops.load_in_order(session, user, ids)  # drops linked sites outside the scope
    chosen = sites[offset : offset + limit]
    return Page[SitePublic](items=site_ops.present_many(chosen, user), total=len(sites), limit=limit, offset=offset)


def _zones_of_site(session: Any, user: Any, site_id: int) -> list[int]:
    """Ids of the zones in scope that cover the site or are linked to it (none for a site out of scope)."""
    site = session.scalar(select(HazardSite).where(HazardSite.id == site_id, scope_filter(HazardSite, user)))
    if site is None:
        return []
    covering = queries.containing(session, RiskZone, site.lon, site.lat, where=scope_filter(RiskZone, user))
    linked = session.scalars(select(RiskZoneSite.zone_id).where(RiskZoneSite.site_id == site.id))
    return sorted(set(covering) | set(linked))


class SiteLinks(BaseModel):
    """The sites declared linked to a zone (only those in the caller's scope are listed)."""

    zone_id: int
    site_ids: list[int]


class SiteLinksIn(Input):
    site_ids: list[int] = Field(max_length=1000)


def _linked_in_scope(session: Any, user: Any, zone_id: int) -> list[int]:
    stmt = (
        select(RiskZoneSite.site_id)
        .join(HazardSite, HazardSite.id == RiskZoneSite.site_id)
        .where(RiskZoneSite.zone_id == zone_id, scope_filter(HazardSite, user))
        .order_by(RiskZoneSite.site_id)
    )
    return list(session.scalars(stmt))


@router.get("/{zone_id}/site-links", response_model=SiteLinks)
def get_site_links(zone_id: int, session: ReadSession, user: Reader) -> SiteLinks:
    zone = get_scoped(session, RiskZone, zone_id, user)
    return SiteLinks(zone_id=zone.id, site_ids=_linked_in_scope(session, user, zone.id))


@router.put("/{zone_id}/site-links", response_model=SiteLinks)
def put_site_links(zone_id: int, body: SiteLinksIn, session: WriteSession, user: Writer) -> SiteLinks:
    """Replace the zone's declared links to sites in scope; links to sites outside it stay as they are."""
    zone = get_scoped(session, RiskZone, zone_id, user, for_update=True)
    wanted = sorted(set(body.site_ids))
    found = set(session.scalars(select(HazardSite.id).where(HazardSite.id.in_(wanted), scope_filter(HazardSite, user))))
    missing = [i for i in wanted if i not in found]
    if missing:
        raise InvalidInput(
            f"site_ids: hazard_site {missing[0]} not found", message_zh=f"site_ids：隐患点“{missing[0]}”不存在"
        )
    before = _linked_in_scope(session, user, zone.id)
    if before != wanted:
        # Core statements, not ORM rows: the link table has no unit, so one entry on the zone records it.
        gone = [i for i in before if i not in found]
        if gone:
            session.execute(delete(RiskZoneSite).where(RiskZoneSite.zone_id == zone.id, RiskZoneSite.site_id.in_(gone)))
        had = set(before)
        new = [{"zone_id": zone.id, "site_id": i} for i in wanted if i not in had]
        if new:
            session.execute(insert(RiskZoneSite), new)
        record(session, "update", "risk_zone", str(zone.id), zone.unit_code, {"site_ids": [before, wanted]})
    return SiteLinks(zone_id=zone.id, site_ids=wanted)


def _changes(session: Any, user: Any, body: RiskZoneCreate | RiskZoneUpdate, exclude: set[str]) -> dict[str, Any]:
    data = body.model_dump(exclude_unset=True, exclude=exclude)
    if data.get("grade") is not None:
        data["grade"] = str(data["grade"])
    if data.get("unit_code") is not None:
        check_unit(session, user, data["unit_code"])
    if "geometry" in data:
        data["geom"] = to_multipolygon(data.pop("geometry"))
    return data


@router.post("", response_model=RiskZonePublic, status_code=status.HTTP_201_CREATED)
def create_zone(body: RiskZoneCreate, session: WriteSession, user: Writer) -> RiskZonePublic:
    data = _changes(session, user, body, {"code"})
    site_ops.check_code_free(session, RiskZone, body.code, "风险区")
    zone = RiskZone(code=body.code, households=0, people=0)
    apply_changes(zone, {k: v for k, v in data.items() if v is not None}, REQUIRED)
    session.add(zone)
    session.flush()
    return RiskZonePublic.model_validate(zone)


@router.patch("/{zone_id}", response_model=RiskZonePublic)
def update_zone(zone_id: int, body: RiskZoneUpdate, session: WriteSession, user: Writer) -> RiskZonePublic:
    zone = get_scoped(session, RiskZone, zone_id, user, for_update=True)
    apply_changes(zone, _changes(session, user, body, set()), REQUIRED)
    session.flush()
    return RiskZonePublic.model_validate(zone)
