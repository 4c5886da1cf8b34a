"""``/api/sites``: the hazard-site register (list, read, create, update). Sites are never deleted."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import shapely
from fastapi import APIRouter, Header, Query, Response, status
from fastapi.responses import JSONResponse

from geowarn.api import site_ops
from geowarn.api.deps import Reader, ReadSession, Writer, WriteSession
from geowarn.api.schemas.common import Page
from geowarn.api.schemas.sites import SiteCreate, SiteDetail, SitePublic, SiteUpdate
from geowarn.api.scoping import get_scoped, page
from geowarn.inventory.domain import HazardType, MonitoringMode, SiteStatus
from geowarn.inventory.models import HazardSite, SiteStatusChange

router = APIRouter(prefix="/sites", tags=["sites"])


@router.get("", response_model=Page[SitePublic])
def list_sites(
    session: ReadSession,
    user: Reader,
    township: Annotated[str | None, Query(description="9-digit township code")] = None,
    hazard_type: HazardType | None = None,
    status: SiteStatus | None = None,
    monitoring_mode: MonitoringMode | None = None,
    q: Annotated[str | None, Query(max_length=100, description="text in name, code or location")] = None,
    bbox: Annotated[str | None, Query(description="lon0,lat0,lon1,lat1")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
    format: Literal["json", "geojson"] = "json",
) -> Any:
    stmt = site_ops.site_query(
        user,
        township=township,
        hazard_type=hazard_type,
        status=status,
        monitoring_mode=monitoring_mode,
        q=q,
        bbox=bbox,
    )
    sites, total = page(session, stmt, limit, offset)
    if format == "geojson":
        fc = site_ops.as_feature_collection(
            sites, user, numberMatched=total, numberReturned=len(sites), limit=limit, offset=offset
        )
        return JSONResponse(fc, media_type="application/geo+json")
    return Page[SitePublic](items=site_ops.present_many(sites, user), total=total, limit=limit, offset=offset)


@router.get("/{site_id}", response_model=SiteDetail)
def get_site(site_id: int, session: ReadSession, user: Reader, response: Response) -> SitePublic:
    site = get_scoped(session, HazardSite, site_id, user)
    response.headers["ETag"] = site_ops.etag(site)
    return site_ops.present(site, user, detail=True)


@router.post("", response_model=SiteDetail, status_code=status.HTTP_201_CREATED)
def create_site(body: SiteCreate, session: WriteSession, user: Writer, response: Response) -> SitePublic:
    data = site_ops.field_changes(session, user, body, exclude={"code"})
    site_ops.check_code_free(session, HazardSite, body.code, "隐患点")
    today = site_ops.today_china()
    site = HazardSite(
        code=body.code,
        status=SiteStatus.REGISTERED.value,
        status_since=data.get("registered_on") or today,
        geom=shapely.Point(body.lon, body.lat),
        threatened_households=0,
        threatened_people=0,
        threatened_property_yuan=0,
        monitoring_mode=MonitoringMode.COMMUNITY.value,
        extra={},
    )
    site_ops.apply_site_changes(site, {k: v for k, v in data.items() if v is not None})
    site.status_history.append(
        SiteStatusChange(
            from_status=None,
            to_status=SiteStatus.REGISTERED.value,
            effective_on=site.status_since,
            reason="登记入册 (registered through the API)",
            by_user=user.username,
        )
    )
    session.add(site)
    session.flush()
    response.headers["ETag"] = site_ops.etag(site)
    response.headers["Location"] = f"/api/sites/{site.id}"
    return site_ops.present(site, user, detail=True)


@router.patch("/{site_id}", response_model=SiteDetail)
def update_site(
    site_id: int,
    body: SiteUpdate,
    session: WriteSession,
    user: Writer,
    response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> SitePublic:
    """Change a site's fields; its status changes through ``POST /api/sites/{id}/status`` only."""
    site = get_scoped(session, HazardSite, site_id, user, for_update=True)
    site_ops.check_version(site, site_ops.expected_version(if_match, body.version))
    data = site_ops.field_changes(session, user, body, exclude={"version"})
    site_ops.apply_site_changes(site, data)
    session.flush()
    response.headers["ETag"] = site_ops.etag(site)
    return site_ops.present(site, user, detail=True)
