"""``/api/risk-zones``: graded risk zones (风险区) and the sites inside them (隐患点+风险区双控)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from sqlalchemy import select

from geowarn.api import site_ops
from geowarn.api.deps import Reader, ReadSession, Writer, WriteSession
from geowarn.api.geojson import to_multipolygon
from geowarn.api.schemas.common import Page
from geowarn.api.schemas.register import RiskZoneCreate, RiskZonePublic, RiskZoneUpdate
from geowarn.api.schemas.sites import SitePublic
from geowarn.api.scoping import apply_changes, check_unit, get_scoped, page, scope_filter
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
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[RiskZonePublic]:
    stmt = select(RiskZone).where(scope_filter(RiskZone, user)).order_by(RiskZone.code, RiskZone.id)
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
