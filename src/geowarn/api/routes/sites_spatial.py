"""Spatial questions about the caller's sites: within a radius, inside a polygon, the k nearest.

Distances are geodesic on the WGS84 spheroid (``geowarn.spatial.queries``), the same on both
backends. The scope condition is passed as ``where`` so nothing outside the caller's unit is read.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query

from geowarn.api import site_ops
from geowarn.api.deps import Reader, ReadSession
from geowarn.api.geojson import from_geojson
from geowarn.api.schemas.common import Page
from geowarn.api.schemas.sites import SiteNear, SitePublic
from geowarn.api.scoping import scope_filter
from geowarn.inventory.models import HazardSite
from geowarn.spatial import queries

router = APIRouter(prefix="/sites", tags=["sites"])

Lon = Annotated[float, Query(ge=-180, le=180)]
Lat = Annotated[float, Query(ge=-90, le=90)]
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0)]


@router.get("/near", response_model=Page[SiteNear])
def sites_near(
    session: ReadSession,
    user: Reader,
    lon: Lon,
    lat: Lat,
    radius_m: Annotated[float, Query(gt=0, le=200_000)],
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[SiteNear]:
    """Sites within ``radius_m`` metres of (lon, lat), nearest first."""
    hits = queries.within_distance(session, HazardSite, lon, lat, radius_m, where=scope_filter(HazardSite, user))
    chosen = hits[offset : offset + limit]
    return _near_page(session, user, chosen, len(hits), limit, offset)


@router.get("/nearest", response_model=Page[SiteNear])
def sites_nearest(
    session: ReadSession, user: Reader, lon: Lon, lat: Lat, k: Annotated[int, Query(ge=1, le=100)] = 1
) -> Page[SiteNear]:
    """The ``k`` sites nearest to (lon, lat); ties broken by id."""
    hits = queries.nearest(session, HazardSite, lon, lat, k, where=scope_filter(HazardSite, user))
    return _near_page(session, user, hits, len(hits), k, 0)


@router.post("/within", response_model=Page[SitePublic])
def sites_within(
    session: ReadSession,
    user: Reader,
    polygon: Annotated[dict[str, Any], Body(description="GeoJSON Polygon, MultiPolygon or Feature")],
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[SitePublic]:
    """Sites whose point the polygon covers (boundary included)."""
    geom = from_geojson(polygon, allowed=("Polygon", "MultiPolygon"))
    ids = queries.within_polygon(session, HazardSite, geom, where=scope_filter(HazardSite, user))
    sites = site_ops.load_in_order(session, user, ids[offset : offset + limit])
    return Page[SitePublic](items=site_ops.present_many(sites, user), total=len(ids), limit=limit, offset=offset)


def _near_page(
    session: ReadSession, user: Reader, hits: list[tuple[int, float]], total: int, limit: int, offset: int
) -> Page[SiteNear]:
    sites = {s.id: s for s in site_ops.load_in_order(session, user, [i for i, _ in hits])}
    items = [SiteNear(site=site_ops.present(sites[i], user), distance_m=d) for i, d in hits if i in sites]
    return Page[SiteNear](items=items, total=total, limit=limit, offset=offset)
