"""Risk-zone assignment (风险区): which sites and households lie in which graded zone.

"隐患点+风险区双控" (seed 000) manages sites and risk zones together, so every site is linked to
each zone that covers it (boundary included, as PostGIS ``ST_Covers``) and every household carries
the highest-grade zone it lies in, so residents of a zone are warned with it.

The point-in-polygon work is the pure core ``geowarn.spatial.core``; this module is the storage
adapter: it loads plain columns (ids, coordinates, WKB — never ORM objects), runs the core once and
writes the links in bulk (``COPY`` on PostgreSQL, ``executemany`` on SQLite).

Scope: with ``scope_unit`` only the links between sites *and* zones of that unit (``unit_code``
under it) are recomputed; links that involve anything outside the scope are left as they are.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from sqlalchemy import ColumnElement, LargeBinary, Table, bindparam, func, select, true, type_coerce, update
from sqlalchemy.orm import Session

from geowarn.audit.hook import record
from geowarn.auth.scope import unit_filter
from geowarn.inventory.domain import RiskGrade
from geowarn.inventory.models import HazardSite, Household, RiskZone, RiskZoneSite
from geowarn.spatial.core import assign_points_to_polygons, points_in_polygons

__all__ = [
    "GRADE_RANK",
    "assign_households",
    "assign_sites_to_risk_zones",
    "load_points",
    "load_polygons",
    "refresh_risk_zone_counts",
]

#: Order of precedence where zones overlap: the highest grade wins.
GRADE_RANK: dict[str, int] = {RiskGrade.HIGH.value: 0, RiskGrade.MEDIUM.value: 1, RiskGrade.LOW.value: 2}


def _is_pg(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _scope(column: Any, scope_unit: str | None) -> ColumnElement[bool]:
    return unit_filter(column, scope_unit) if scope_unit else true()


def _wkb(session: Session, column: Any) -> Any:
    """The raw WKB of a geometry column, so that parsing is one vectorised shapely call."""
    if _is_pg(session):
        return func.ST_AsBinary(column, type_=LargeBinary)
    return type_coerce(column, LargeBinary)


def _rows(session: Session, stmt: Any) -> list[tuple[Any, ...]]:
    """Plain tuples straight from the driver (Row objects cost more than the query at 300,000 rows).

    On PostgreSQL the rows come in psycopg's binary format, which spares parsing numbers from text.
    """
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        compiled = stmt.compile(dialect=conn.dialect)
        raw = conn.connection.driver_connection
        assert raw is not None
        with raw.cursor(binary=True) as cur:
            cur.execute(str(compiled), compiled.params)
            return list(cur.fetchall())
    result = conn.execute(stmt)
    try:
        return list(result.cursor.fetchall())
    finally:
        result.close()


def load_points(
    session: Session, model: Any, where: ColumnElement[bool]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(ids, lon, lat) of a point table with ``lon``/``lat`` columns, as numpy arrays sorted by id."""
    # No ORDER BY: SQLite then reads the (lon, lat) index, which covers the rowid, instead of the table.
    rows = _rows(session, select(model.id, model.lon, model.lat).where(where))
    if not rows:
        return np.empty(0, np.int64), np.empty(0, np.float64), np.empty(0, np.float64)
    ids_t, lon_t, lat_t = zip(*rows, strict=True)
    ids = np.asarray(ids_t, np.int64)
    order = np.argsort(ids, kind="stable")
    return ids[order], np.asarray(lon_t, np.float64)[order], np.asarray(lat_t, np.float64)[order]


def load_polygons(
    session: Session, model: Any, where: ColumnElement[bool], *extra: Any
) -> tuple[npt.NDArray[np.int64], npt.NDArray[Any], list[tuple[Any, ...]]]:
    """(ids, shapely polygons, extra column values) of a polygon table, ordered by id."""
    rows = _rows(session, select(model.id, _wkb(session, model.geom), *extra).where(where).order_by(model.id))
    if not rows:
        return np.empty(0, np.int64), np.empty(0, object), []
    ids = np.fromiter((r[0] for r in rows), np.int64, len(rows))
    geoms = shapely.from_wkb(np.array([bytes(r[1]) for r in rows], dtype=object))
    return ids, geoms, [r[2:] for r in rows]


def _pair_keys(zone_ids: npt.NDArray[np.int64], site_ids: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    return (zone_ids.astype(np.int64) << 32) | site_ids.astype(np.int64)


def _existing_links(
    session: Session, scope_unit: str | None, site_scope: Any, zone_scope: Any
) -> npt.NDArray[np.int64]:
    stmt = select(RiskZoneSite.zone_id, RiskZoneSite.site_id)
    if scope_unit:
        stmt = stmt.where(
            RiskZoneSite.site_id.in_(select(HazardSite.id).where(site_scope)),
            RiskZoneSite.zone_id.in_(select(RiskZone.id).where(zone_scope)),
        )
    rows = _rows(session, stmt)
    if not rows:
        return np.empty(0, np.int64)
    z, s = zip(*rows, strict=True)
    return _pair_keys(np.asarray(z, np.int64), np.asarray(s, np.int64))


def _split(keys: npt.NDArray[np.int64]) -> list[tuple[int, int]]:
    return list(zip((keys >> 32).tolist(), (keys & 0xFFFFFFFF).tolist(), strict=True))


def _write_links(session: Session, added: npt.NDArray[np.int64], removed: npt.NDArray[np.int64]) -> None:
    """Delete the links that no longer hold and insert the new ones (COPY on PostgreSQL)."""
    conn = session.connection()
    if _is_pg(session):
        raw = conn.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cur:
            if len(removed):
                cur.execute(
                    "DELETE FROM risk_zone_site r USING unnest(%s::int[], %s::int[]) AS d(z, s) "
                    "WHERE r.zone_id = d.z AND r.site_id = d.s",
                    ((removed >> 32).tolist(), (removed & 0xFFFFFFFF).tolist()),
                )
            if len(added):
                payload = "".join(f"{z}\t{s}\n" for z, s in _split(added))
                with cur.copy("COPY risk_zone_site (zone_id, site_id) FROM STDIN") as copy:
                    copy.write(payload)
        return
    if len(removed):
        conn.exec_driver_sql("DELETE FROM risk_zone_site WHERE zone_id = ? AND site_id = ?", _split(removed))
    if len(added):
        conn.exec_driver_sql("INSERT INTO risk_zone_site (zone_id, site_id) VALUES (?, ?)", _split(added))


def assign_sites_to_risk_zones(session: Session, scope_unit: str | None = None) -> int:
    """Recompute the site–zone links (a site may lie in several zones); returns the number of links.

    Only the difference is written: links that no longer hold are deleted, new ones inserted, the
    rest left alone (on PostgreSQL each written link costs two foreign-key checks). Runs inside the
    caller's transaction (use ``db.write(actor)``); one audit entry records the run.
    """
    site_scope = _scope(HazardSite.unit_code, scope_unit)
    zone_scope = _scope(RiskZone.unit_code, scope_unit)
    site_ids, lon, lat = load_points(session, HazardSite, site_scope)
    zone_ids, polygons, _ = load_polygons(session, RiskZone, zone_scope)
    pt_idx, poly_idx = points_in_polygons(lon, lat, polygons)
    wanted = _pair_keys(zone_ids[poly_idx], site_ids[pt_idx])
    existing = _existing_links(session, scope_unit, site_scope, zone_scope)
    added = np.setdiff1d(wanted, existing, assume_unique=True)
    removed = np.setdiff1d(existing, wanted, assume_unique=True)
    _write_links(session, added, removed)
    record(
        session,
        "zoning",
        "risk_zone_site",
        None,
        scope_unit,
        {
            "sites": len(site_ids),
            "zones": len(zone_ids),
            "links": len(wanted),
            "added": len(added),
            "removed": len(removed),
        },
    )
    return len(wanted)


def assign_households(session: Session, scope_unit: str | None = None) -> int:
    """Set each household's ``risk_zone_id`` to the highest-grade zone covering it (ties: lowest id).

    Households of the scope covered by no zone of the scope get None. Returns how many households
    now lie in a zone.
    """
    hh_ids, lon, lat = load_points(session, Household, _scope(Household.unit_code, scope_unit))
    zone_ids, polygons, extra = load_polygons(session, RiskZone, _scope(RiskZone.unit_code, scope_unit), RiskZone.grade)
    if len(hh_ids) == 0:
        return 0
    rank = np.array([GRADE_RANK.get(str(e[0]), len(GRADE_RANK)) for e in extra], dtype=np.int64)
    which = assign_points_to_polygons(lon, lat, polygons, rank=rank) if len(zone_ids) else np.full(len(hh_ids), -1)
    zone_of = np.where(which >= 0, zone_ids[np.maximum(which, 0)] if len(zone_ids) else -1, -1)
    params = [{"hid": int(h), "zid": (int(zv) if zv >= 0 else None)} for h, zv in zip(hh_ids, zone_of, strict=True)]
    table: Table = Household.__table__  # type: ignore[assignment]
    stmt = update(table).where(table.c.id == bindparam("hid"))
    session.connection().execute(stmt.values(risk_zone_id=bindparam("zid")), params)
    inside = int((zone_of >= 0).sum())
    record(session, "zoning", "household", None, scope_unit, {"households": len(hh_ids), "in_zones": inside})
    return inside


def refresh_risk_zone_counts(session: Session, scope_unit: str | None = None) -> int:
    """Recount ``households`` and ``people`` of each zone from the households it covers.

    A household inside two overlapping zones counts in both (each zone's own figure), as a zone's
    ledger lists everyone inside it. Returns the number of zones updated.
    """
    zone_ids, polygons, _ = load_polygons(session, RiskZone, _scope(RiskZone.unit_code, scope_unit))
    if len(zone_ids) == 0:
        return 0
    rows = _rows(session, select(Household.lon, Household.lat, Household.size).order_by(Household.id))
    hh = np.asarray([r[2] for r in rows], np.int64)
    pt_idx, poly_idx = points_in_polygons([r[0] for r in rows], [r[1] for r in rows], polygons)
    households = np.bincount(poly_idx, minlength=len(zone_ids))
    people = np.zeros(len(zone_ids), np.int64)
    np.add.at(people, poly_idx, hh[pt_idx])
    params = [{"zid": int(z), "hh": int(h), "pp": int(p)} for z, h, p in zip(zone_ids, households, people, strict=True)]
    table: Table = RiskZone.__table__  # type: ignore[assignment]
    stmt = (
        update(table).where(table.c.id == bindparam("zid")).values(households=bindparam("hh"), people=bindparam("pp"))
    )
    session.connection().execute(stmt, params)
    return len(zone_ids)
