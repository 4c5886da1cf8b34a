"""Spatial queries against stored records, on PostGIS or on SQLite with shapely.

Each function takes a mapped class with a single-column primary key, ``geom`` and the bounding-box columns
(``minx``…``maxy``) and an optional extra ``where`` clause (for access scoping) and returns ids,
sorted, so both backends can be compared answer for answer.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely
from sqlalchemy import ColumnElement, LargeBinary, and_, func, inspect, literal, select, true
from sqlalchemy.orm import Session
from sqlalchemy.types import UserDefinedType

from geowarn.spatial.core import degree_margin, geodesic_distance_m

SRID = 4326


def _is_pg(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


class _Geography(UserDefinedType[Any]):
    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "geography"


GEOGRAPHY = _Geography()


def _wkb(geom: Any) -> Any:
    return func.ST_GeomFromWKB(literal(shapely.to_wkb(geom), type_=LargeBinary), SRID)


def _key(model: Any) -> Any:
    """The primary-key column (``id`` for most tables, ``code`` for administrative units)."""
    return inspect(model).primary_key[0]


def _bbox_clause(model: Any, x0: float, y0: float, x1: float, y1: float) -> ColumnElement[bool]:
    return and_(model.maxx >= x0, model.minx <= x1, model.maxy >= y0, model.miny <= y1)


def in_bbox(
    session: Session,
    model: Any,
    bbox: tuple[float, float, float, float],
    where: ColumnElement[bool] | None = None,
) -> list[int]:
    """Ids of records whose geometry intersects the box (lon0, lat0, lon1, lat1)."""
    x0, y0, x1, y1 = bbox
    w = where if where is not None else true()
    if _is_pg(session):
        env = func.ST_MakeEnvelope(x0, y0, x1, y1, SRID)
        stmt = select(_key(model)).where(model.geom.op("&&")(env), func.ST_Intersects(model.geom, env), w)
        return sorted(session.scalars(stmt))
    rows = session.execute(select(_key(model), model.geom).where(_bbox_clause(model, x0, y0, x1, y1), w)).all()
    if not rows:
        return []
    box = shapely.box(x0, y0, x1, y1)
    ids = np.array([r[0] for r in rows])
    hit = shapely.intersects(np.array([r[1] for r in rows], dtype=object), box)
    return sorted(ids[hit].tolist())


def within_polygon(session: Session, model: Any, polygon: Any, where: ColumnElement[bool] | None = None) -> list[int]:
    """Ids of records whose geometry the polygon covers (boundary included: ``ST_Covers``)."""
    w = where if where is not None else true()
    if _is_pg(session):
        stmt = select(_key(model)).where(func.ST_Covers(_wkb(polygon), model.geom), w)
        return sorted(session.scalars(stmt))
    x0, y0, x1, y1 = shapely.bounds(polygon).tolist()
    rows = session.execute(select(_key(model), model.geom).where(_bbox_clause(model, x0, y0, x1, y1), w)).all()
    if not rows:
        return []
    shapely.prepare(polygon)
    ids = np.array([r[0] for r in rows])
    hit = shapely.covers(polygon, np.array([r[1] for r in rows], dtype=object))
    return sorted(ids[hit].tolist())


def containing(
    session: Session, model: Any, lon: float, lat: float, where: ColumnElement[bool] | None = None
) -> list[int]:
    """Ids of polygon records that cover the point (e.g. which township, which risk zone)."""
    w = where if where is not None else true()
    pt = shapely.Point(lon, lat)
    if _is_pg(session):
        stmt = select(_key(model)).where(func.ST_Covers(model.geom, _wkb(pt)), w)
        return sorted(session.scalars(stmt))
    rows = session.execute(select(_key(model), model.geom).where(_bbox_clause(model, lon, lat, lon, lat), w)).all()
    return sorted(r[0] for r in rows if r[1] is not None and shapely.covers(r[1], pt))


def within_distance(
    session: Session,
    model: Any,
    lon: float,
    lat: float,
    metres: float,
    where: ColumnElement[bool] | None = None,
) -> list[tuple[int, float]]:
    """(id, metres) of point records within ``metres`` of (lon, lat) on the WGS84 spheroid.

    Sorted by distance then id. Distances agree between backends to well under a millimetre.
    """
    w = where if where is not None else true()
    dlon, dlat = degree_margin(lat, metres)
    if _is_pg(session):
        here = func.ST_SetSRID(func.ST_MakePoint(lon, lat), SRID).cast(GEOGRAPHY)
        dist = func.ST_Distance(model.geom.cast(GEOGRAPHY), here, True)
        # The envelope test uses the GiST index on geometry; ST_DWithin on geography is exact.
        env = func.ST_MakeEnvelope(lon - dlon, lat - dlat, lon + dlon, lat + dlat, SRID)
        stmt = select(_key(model), dist).where(
            model.geom.op("&&")(env), func.ST_DWithin(model.geom.cast(GEOGRAPHY), here, metres, True), w
        )
        out = [(int(i), float(d)) for i, d in session.execute(stmt)]
        return sorted((p for p in out if p[1] <= metres), key=lambda p: (p[1], p[0]))
    stmt = select(_key(model), model.minx, model.miny).where(
        _bbox_clause(model, lon - dlon, lat - dlat, lon + dlon, lat + dlat), w
    )
    rows = session.execute(stmt).all()
    if not rows:
        return []
    ids = np.array([r[0] for r in rows])
    d = geodesic_distance_m(np.array([r[1] for r in rows]), np.array([r[2] for r in rows]), lon, lat)
    keep = d <= metres
    return sorted(zip(ids[keep].tolist(), d[keep].tolist(), strict=True), key=lambda p: (p[1], p[0]))


def nearest(
    session: Session, model: Any, lon: float, lat: float, k: int = 1, where: ColumnElement[bool] | None = None
) -> list[tuple[int, float]]:
    """The ``k`` point records nearest to (lon, lat) on the spheroid, as (id, metres), ties by id.

    Exact on both backends: find a radius that holds at least ``k`` records, then rank every
    record within it by true geodesic distance.
    """
    if k <= 0:
        return []
    w = where if where is not None else true()
    if _is_pg(session):
        here = func.ST_SetSRID(func.ST_MakePoint(lon, lat), SRID)
        # KNN on the GiST index gives candidates; their spheroid distance bounds the answer.
        cand = session.execute(
            select(_key(model), model.lon, model.lat).where(w).order_by(model.geom.op("<->")(here)).limit(k)
        ).all()
    else:
        cand = _sqlite_candidates(session, model, lon, lat, k, w)
    if not cand:
        return []
    radius = float(geodesic_distance_m([c[1] for c in cand], [c[2] for c in cand], lon, lat).max())
    return within_distance(session, model, lon, lat, radius * (1 + 1e-9) + 1e-6, where)[:k]


def _sqlite_candidates(
    session: Session, model: Any, lon: float, lat: float, k: int, w: ColumnElement[bool]
) -> list[Any]:
    metres = 1_000.0
    total = session.scalar(select(func.count()).select_from(model).where(w)) or 0
    if total == 0:
        return []
    while True:
        dlon, dlat = degree_margin(lat, metres)
        rows = session.execute(
            select(_key(model), model.minx, model.miny).where(
                _bbox_clause(model, lon - dlon, lat - dlat, lon + dlon, lat + dlat), w
            )
        ).all()
        if len(rows) >= min(k, total) or metres > 2.1e7:
            return list(rows)
        metres *= 4
