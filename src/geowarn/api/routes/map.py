"""``/api/map``: compact layers of the web map (一张图), scoped like every other route.

The register's own routes page through full records; the map needs every site of a county or a
province at once (300,000 points), so ``/map/sites`` sends columns of numbers with small lookup
tables instead of one object per site. Boundaries, zones and stations are GeoJSON or short lists.

Every layer carries an ``ETag`` (a hash of its body) with ``Cache-Control: private, no-cache``: a browser
keeps the layer and revalidates it with ``If-None-Match``, and gets ``304 Not Modified`` without the
body while the layer is unchanged (RFC 9110 §8.8.3, §13.1.2; RFC 9111 §5.2.2.4).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Annotated, Any

import numpy as np
import orjson
from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from geowarn.admin.codes import prefix_range
from geowarn.admin.models import AdminUnit
from geowarn.api.deps import Reader, ReadSession
from geowarn.api.geojson import feature, feature_collection
from geowarn.api.scoping import scope_filter
from geowarn.auth.models import User
from geowarn.auth.scope import unit_filter
from geowarn.config import Settings, get_settings
from geowarn.errors import InvalidInput
from geowarn.inventory.models import HazardSite, RiskZone
from geowarn.monitoring.models import Device, MonitoringStation

router = APIRouter(prefix="/map", tags=["map"])

#: Seconds a built layer is reused for the same scope: the map's layers are read by every open map
#: at once (and again on each reload) but change rarely; an edit shows on maps within this delay.
CACHE_SECONDS = 5.0
CACHE_ENTRIES = 512

#: Levels of the administrative units drawn as boundaries (GB/T 2260: county and township).
BOUNDARY_LEVELS = ("province", "city", "county", "township")
MAX_DANGER_ZONES = 3000


def _sql(conn: Any, sql: str) -> str:
    return sql if conn.dialect.name == "sqlite" else sql.replace("?", "%s")


_Entry = tuple[Any, bytes, str]  # (freshness: deadline or ("stamp", stamp), body, ETag)
_HEADERS = {"Cache-Control": "private, no-cache", "Vary": "Authorization"}


def _cache(request: Request) -> dict[tuple[str, str], _Entry]:
    cache: dict[tuple[str, str], _Entry] | None = getattr(request.app.state, "map_cache", None)
    if cache is None:
        cache = {}
        request.app.state.map_cache = cache
    return cache


def _cached(request: Request, user: User, key: str, build: Callable[[], Any], stamp: Any = None) -> Response:
    """The layer ``key`` for the caller's unit, built again by ``build`` when ``stamp`` changed or, for
    a layer without a stamp, at most every ``CACHE_SECONDS``.

    The cache belongs to the app (not the process) and is keyed by the caller's unit code, which is
    all that scoping depends on, so two users of one unit share it and no unit sees another's.
    """
    cache = _cache(request)
    now = time.monotonic()
    hit = cache.get((key, user.unit_code))
    fresh = hit is not None and (hit[0] == ("stamp", stamp) if stamp is not None else hit[0] > now)
    if hit is not None and fresh:
        _, body, etag = hit
    else:
        body = orjson.dumps(build(), option=orjson.OPT_SERIALIZE_NUMPY)
        etag = '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'
        if len(cache) >= CACHE_ENTRIES:
            cache.clear()
        cache[(key, user.unit_code)] = (("stamp", stamp) if stamp is not None else now + CACHE_SECONDS, body, etag)
    headers = {**_HEADERS, "ETag": etag}
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


def _matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 §13.1.2: ``*`` or any listed tag equal to ``etag`` under weak comparison."""
    if not if_none_match:
        return False
    tags = [t.strip() for t in if_none_match.split(",")]
    return "*" in tags or etag in (t.removeprefix("W/") for t in tags)


def _index(values: tuple[Any, ...]) -> tuple[list[Any], list[int]]:
    """Dictionary-encode a column: (distinct values in order of appearance, index of each row's value)."""
    distinct = list(dict.fromkeys(values))
    lookup = {v: i for i, v in enumerate(distinct)}
    return distinct, list(map(lookup.__getitem__, values))


def _rows(session: Session, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """Plain tuples straight from the driver (no Row objects: the map reads up to 300,000)."""
    conn = session.connection()
    cur: Any = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cur.execute(_sql(conn, sql), params)
        return list(cur.fetchall())
    finally:
        cur.close()


@router.get("/sites")
def map_sites(session: ReadSession, user: Reader, request: Request) -> Response:
    """Every site in scope as columns: ``id``, ``lon``, ``lat`` (6 decimals), ``type``/``status``/``town``
    as indexes into ``types``/``statuses``/``towns``, and ``people`` threatened.

    Built again only when the sites in scope changed: their count, highest id or latest update
    (sites are never deleted, and every change moves ``updated_at``)."""
    lo, hi = prefix_range(user.unit_code)
    stamp = _rows(
        session,
        "SELECT count(*), max(id), max(updated_at) FROM hazard_site WHERE unit_code >= ? AND unit_code < ?",
        (lo, hi),
    )[0]
    return _cached(request, user, "sites", lambda: _site_columns(session, lo, hi), stamp=tuple(map(str, stamp)))


def _site_columns(session: Session, lo: str, hi: str) -> dict[str, Any]:
    rows = _rows(
        session,
        "SELECT id, lon, lat, hazard_type, status, township_code, coalesce(threatened_people, 0) FROM hazard_site "
        "WHERE unit_code >= ? AND unit_code < ? ORDER BY id",
        (lo, hi),
    )
    cols: list[Any] = list(zip(*rows, strict=True)) if rows else [() for _ in range(7)]
    types, t_idx = _index(cols[3])
    statuses, s_idx = _index(cols[4])
    towns, w_idx = _index(cols[5])
    return {
        "count": len(rows),
        "id": np.array(cols[0], dtype=np.int64),
        "lon": np.round(np.array(cols[1], dtype=np.float64), 6),
        "lat": np.round(np.array(cols[2], dtype=np.float64), 6),
        "type": np.array(t_idx, dtype=np.int32),
        "status": np.array(s_idx, dtype=np.int32),
        "town": np.array(w_idx, dtype=np.int32),
        "people": np.array(cols[6], dtype=np.int64),
        "types": types,
        "statuses": statuses,
        "towns": towns,
    }


@router.get("/boundaries")
def boundaries(session: ReadSession, user: Reader, request: Request) -> Response:
    """The boundaries of the caller's unit and the units below it down to townships, as GeoJSON."""
    return _cached(request, user, "boundaries", lambda: _boundaries(session, user))


def _boundaries(session: Session, user: User) -> dict[str, Any]:
    rows = session.execute(
        select(AdminUnit.code, AdminUnit.name, AdminUnit.level, AdminUnit.parent_code, AdminUnit.geom).where(
            unit_filter(AdminUnit.code, user.unit_code),
            AdminUnit.level.in_(BOUNDARY_LEVELS),
            AdminUnit.geom.is_not(None),
        )
    ).all()
    features = [feature(g, {"code": c, "name": n, "level": lv, "parent_code": p}, c) for c, n, lv, p, g in rows]
    return feature_collection(features)


def _bbox(bbox: str) -> tuple[float, float, float, float]:
    try:
        x0, y0, x1, y1 = (float(v) for v in bbox.split(","))
    except ValueError:
        raise InvalidInput(
            "bbox: give lon0,lat0,lon1,lat1", message_zh="范围格式应为 经度0,纬度0,经度1,纬度1"
        ) from None
    if not (x0 < x1 and y0 < y1):
        raise InvalidInput("bbox: lon0 < lon1 and lat0 < lat1", message_zh="范围无效")
    return x0, y0, x1, y1


@router.get("/zones")
def zones(
    session: ReadSession,
    user: Reader,
    request: Request,
    bbox: Annotated[str | None, Query(description="lon0,lat0,lon1,lat1: danger zones only in this box")] = None,
) -> Response:
    """Risk zones (风险区) in scope, and the danger zones (威胁范围) of sites in scope — those inside
    ``bbox`` when given, at most 3,000 (``truncated`` says when more matched)."""
    box = _bbox(bbox) if bbox else None
    return _cached(request, user, f"zones:{box}", lambda: _zones(session, user, box))


def _zones(session: Session, user: User, box: tuple[float, float, float, float] | None) -> dict[str, Any]:
    risk = session.execute(
        select(RiskZone.id, RiskZone.code, RiskZone.name, RiskZone.grade, RiskZone.people, RiskZone.geom).where(
            scope_filter(RiskZone, user)
        )
    ).all()
    features = [
        feature(g, {"kind": "risk_zone", "code": c, "name": n, "grade": gr, "people": p}, f"rz{i}")
        for i, c, n, gr, p, g in risk
    ]
    stmt = select(HazardSite.id, HazardSite.code, HazardSite.name, HazardSite.danger_zone_geom).where(
        scope_filter(HazardSite, user), HazardSite.danger_zone_geom.is_not(None)
    )
    if box:
        x0, y0, x1, y1 = box
        stmt = stmt.where(HazardSite.maxx >= x0, HazardSite.minx <= x1, HazardSite.maxy >= y0, HazardSite.miny <= y1)
    danger = session.execute(stmt.order_by(HazardSite.id).limit(MAX_DANGER_ZONES + 1)).all()
    features += [
        feature(g, {"kind": "danger_zone", "site_id": i, "code": c, "name": n}, f"dz{i}")
        for i, c, n, g in danger[:MAX_DANGER_ZONES]
    ]
    return feature_collection(features, truncated=len(danger) > MAX_DANGER_ZONES)


def _settings(request: Request) -> Settings:
    settings: Settings | None = getattr(request.app.state, "settings", None)
    return settings if settings is not None else get_settings()


@router.get("/stations")
def stations(session: ReadSession, user: Reader, request: Request) -> Response:
    """Stations in scope with their devices' state: ``online`` when every active device reported within
    ``offline_after_intervals`` reporting intervals (the rule of ``geowarn.monitoring.health``)."""
    missed = _settings(request).offline_after_intervals
    return _cached(request, user, "stations", lambda: _stations(session, user, missed))


def _stations(session: Session, user: User, missed: int) -> dict[str, Any]:
    now = int(time.time() * 1000)
    rows = session.execute(
        select(
            MonitoringStation.id,
            MonitoringStation.code,
            MonitoringStation.name,
            MonitoringStation.site_id,
            MonitoringStation.lon,
            MonitoringStation.lat,
            Device.id,
            Device.device_code,
            Device.device_type,
            Device.status,
            Device.last_seen_ms,
            Device.reporting_interval_s,
            Device.battery,
        )
        .outerjoin(Device, Device.station_id == MonitoringStation.id)
        .where(scope_filter(MonitoringStation, user))
        .order_by(MonitoringStation.id, Device.id)
    ).all()
    out: dict[int, dict[str, Any]] = {}
    for sid, code, name, site_id, lon, lat, did, dcode, dtype, dstatus, seen, interval, battery in rows:
        st = out.setdefault(
            sid,
            {"id": sid, "code": code, "name": name, "site_id": site_id, "lon": lon, "lat": lat, "devices": []},
        )
        if did is None:
            continue
        online = dstatus == "active" and seen is not None and now - seen <= missed * interval * 1000
        st["devices"].append({"id": did, "code": dcode, "type": dtype, "status": dstatus, "online": online,
                              "last_seen_ms": seen, "battery": battery})  # fmt: skip
    items = []
    for st in out.values():
        live = [d for d in st["devices"] if d["status"] == "active"]
        up = sum(1 for d in live if d["online"])
        st["state"] = "online" if live and up == len(live) else ("partial" if up else "offline")
        items.append(st)
    return {"count": len(items), "items": items}
