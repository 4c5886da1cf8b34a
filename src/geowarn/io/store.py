"""Storage adapter of the importer: scope loading, lookups and bulk upserts on both backends.

SQLite: ``executemany`` on the writer's raw DBAPI connection inside the import's one transaction
(ids assigned in order under ``BEGIN IMMEDIATE``). PostgreSQL: ``COPY`` into a temporary staging
table, then one ``INSERT … ON CONFLICT (code) DO UPDATE … WHERE <changed> RETURNING`` that says which
rows were created and which updated. Geometry crosses as WKB (``ST_GeomFromWKB`` on PostGIS).
The ORM is bypassed, so this module fills what its events would: bbox columns, timestamps, version.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import shapely
from sqlalchemy import DateTime, select
from sqlalchemy.engine import Connection

from geowarn.admin.codes import county_of, parent_of, prefix_range
from geowarn.admin.models import AdminUnit
from geowarn.db import utcnow
from geowarn.db.bulkload import copy_text, sqlite_insert
from geowarn.io.validate import Scope

_SQLITE_VARS = 900


@dataclass(frozen=True)
class TablePlan:
    """How a kind's parsed values land in its table. ``columns`` maps DB column → parsed value key."""

    table: str
    columns: dict[str, str]
    id_col: str = "id"
    point: bool = False  # geometry built from lon/lat
    polygon: bool = False  # geometry from the file
    defaults: dict[str, Any] = field(default_factory=dict)
    json_cols: frozenset[str] = frozenset()
    versioned: bool = False
    timestamps: bool = True
    bbox: bool = True


PLANS: dict[str, TablePlan] = {
    "sites": TablePlan(
        "hazard_site",
        {
            "code": "code",
            "name": "name",
            "hazard_type": "hazard_type",
            "lon": "lon",
            "lat": "lat",
            "scale": "scale",
            "volume_m3": "volume_m3",
            "danger_grade": "danger_grade",
            "stability": "stability",
            "threatened_households": "threatened_households",
            "threatened_people": "threatened_people",
            "threatened_property_yuan": "threatened_property",
            "unit_code": "unit_code",
            "township_code": "township_code",
            "location_text": "location_text",
            "responsible_person_id": "responsible_person_id",
            "monitor_id": "monitor_id",
            "monitoring_mode": "monitoring_mode",
            "remarks": "remarks",
            "extra": "extra",
        },
        point=True,
        defaults={
            "threatened_households": 0,
            "threatened_people": 0,
            "threatened_property_yuan": 0,
            "monitoring_mode": "community",
            "extra": {},
        },
        json_cols=frozenset({"extra"}),
        versioned=True,
    ),
    "risk_zones": TablePlan(
        "risk_zone",
        {
            "code": "code",
            "name": "name",
            "grade": "grade",
            "households": "households",
            "people": "people",
            "unit_code": "unit_code",
            "remarks": "remarks",
        },
        polygon=True,
        defaults={"households": 0, "people": 0},
    ),
    "households": TablePlan(
        "household",
        {
            "code": "code",
            "head_name": "head_name",
            "phone": "phone",
            "id_number": "id_number",
            "size": "size",
            "address": "address",
            "lon": "lon",
            "lat": "lat",
            "unit_code": "unit_code",
            "site_id": "site_code_id",
            "shelter_id": "shelter_code_id",
        },
        point=True,
        defaults={"size": 1},
    ),
    "shelters": TablePlan(
        "shelter",
        {
            "code": "code",
            "name": "name",
            "capacity": "capacity",
            "address": "address",
            "lon": "lon",
            "lat": "lat",
            "unit_code": "unit_code",
        },
        point=True,
        defaults={"capacity": 0},
    ),
    "units": TablePlan(
        "admin_unit",
        {"code": "code", "name": "name", "level": "level", "parent_code": "parent_code"},
        id_col="code",
        polygon=True,
    ),
}

#: Fields of a kind that name another record by code → the table looked up (a household's site and shelter).
REFS: dict[str, dict[str, str]] = {"households": {"site_code": "hazard_site", "shelter_code": "shelter"}}

#: Value keys that are always written (derived from required or computed values).
ALWAYS = frozenset({"code", "lon", "lat", "extra", "level", "parent_code"})


# --------------------------------------------------------------------------- reading


def load_scope(conn: Connection, scope_unit: str) -> Scope:
    """The scope unit, the units inside it and the other names of its county (for messages)."""
    lo, hi = prefix_range(scope_unit)
    county = county_of(scope_unit)
    rows = conn.execute(
        select(AdminUnit.code, AdminUnit.name, AdminUnit.level, AdminUnit.geom).where(
            (AdminUnit.code >= county) & (AdminUnit.code < county + ":")
            | (AdminUnit.code == scope_unit)
            | ((AdminUnit.code >= lo) & (AdminUnit.code < hi))
        )
    ).all()
    units: dict[str, tuple[str, str]] = {}
    nearby: dict[str, str] = {}
    poly_codes: list[str] = []
    poly_geoms: list[Any] = []
    own_geom = None
    for code, name, level, geom in rows:
        if code == scope_unit or (lo <= code < hi):
            units[code] = (name, level)
            if code == scope_unit:
                own_geom = geom
            elif geom is not None:
                poly_codes.append(code)
                poly_geoms.append(geom)
        else:
            nearby.setdefault(name, code)
    boundary = own_geom
    if boundary is None and poly_geoms:
        children = [g for c, g in zip(poly_codes, poly_geoms, strict=True) if parent_of(c) == scope_unit]
        boundary = shapely.union_all(children) if children else None
    name = units.get(scope_unit, (scope_unit, ""))[0]
    return Scope(scope_unit, name, units, nearby, boundary, poly_codes, np.asarray(poly_geoms, dtype=object))


def _geom_select(conn: Connection, col: str) -> str:
    return f"ST_AsBinary({col})" if conn.dialect.name == "postgresql" else col


def lookup_existing(conn: Connection, kind: str, codes: list[str]) -> dict[str, dict[str, Any]]:
    """Existing records by code, with every column the importer may compare."""
    plan = PLANS[kind]
    cols = list(dict.fromkeys([plan.id_col, *plan.columns]))
    if kind == "sites":
        cols.append("status")
    if kind != "units":
        cols = [c for c in cols if c != "unit_code"] + ["unit_code"]
    sel = ", ".join(cols)
    if plan.polygon:
        sel += f", {_geom_select(conn, 'geom')} AS geom_wkb"
    out: dict[str, dict[str, Any]] = {}
    if not codes:
        return out
    names = [*cols, *(["geom_wkb"] if plan.polygon else [])]
    if conn.dialect.name == "postgresql":
        # One text of codes split by the server: psycopg quotes a list's strings one by one (0.8 s for 300,000).
        # A code with a line break cannot be stored (validation refuses control characters): not looked up.
        lines = "\n".join(c for c in codes if "\n" not in c)
        res = conn.exec_driver_sql(
            f"SELECT {sel} FROM {plan.table} WHERE code = ANY(string_to_array(%(codes)s, E'\\n'))",  # noqa: S608  (identifiers from TablePlan constants; values are bound)
            {"codes": lines},
        )
        batches = [res.all()]
    else:
        batches = []
        for i in range(0, len(codes), _SQLITE_VARS):
            part = codes[i : i + _SQLITE_VARS]
            marks = ",".join("?" * len(part))
            batches.append(
                conn.exec_driver_sql(f"SELECT {sel} FROM {plan.table} WHERE code IN ({marks})", tuple(part)).all()  # noqa: S608  (identifiers from TablePlan constants; values are bound)
            )
    for batch in batches:
        for row in batch:
            rec = dict(zip(names, row, strict=True))
            for c in plan.json_cols:
                if isinstance(rec.get(c), str):
                    rec[c] = orjson.loads(rec[c])
            if rec.get("geom_wkb") is not None:
                rec["geom_wkb"] = bytes(rec["geom_wkb"])
            rec.setdefault("unit_code", rec.get("code"))
            out[rec["code"]] = rec
    return out


def lookup_ids(conn: Connection, table: str, codes: list[str]) -> dict[str, dict[str, Any]]:
    """``code → {"id": …}`` for references (a household's site and shelter)."""
    uniq = sorted(set(codes))
    out: dict[str, dict[str, Any]] = {}
    for i in range(0, len(uniq), _SQLITE_VARS):
        part = uniq[i : i + _SQLITE_VARS]
        if conn.dialect.name == "postgresql":
            rows = conn.exec_driver_sql(f"SELECT code, id FROM {table} WHERE code = ANY(%(c)s)", {"c": part}).all()  # noqa: S608  (identifiers from TablePlan constants; values are bound)
        else:
            marks = ",".join("?" * len(part))
            rows = conn.exec_driver_sql(f"SELECT code, id FROM {table} WHERE code IN ({marks})", tuple(part)).all()  # noqa: S608  (identifiers from TablePlan constants; values are bound)
        out.update({c: {"id": i_} for c, i_ in rows})
    return out


# --------------------------------------------------------------------------- persons


class PersonDirectory:
    """The persons of an import's counties, read once; matches and creates responsible persons and monitors.

    A person is the same person when name and phone agree and their unit is the site's unit, one
    of its parents (a township official answering for a village's site) or one of its children;
    the nearest such unit wins. Without a phone only the same unit matches: names alone are
    ambiguous. Anyone else is created in the site's unit. Persons created by one chunk of a file
    are found by the next: the directory keeps what it wrote.
    """

    def __init__(self, conn: Connection, scope_unit: str) -> None:
        self.conn = conn
        lo, hi = prefix_range(county_of(scope_unit))  # the scope's counties: its parents and children
        p = "%s" if conn.dialect.name == "postgresql" else "?"
        rows = conn.exec_driver_sql(
            f"SELECT id, unit_code, name, phone, roles FROM person WHERE unit_code >= {p} AND unit_code < {p}",  # noqa: S608  (constant SQL; values are bound)
            (lo, hi),
        ).all()
        self.by_name: dict[tuple[str, str | None], list[tuple[str, int]]] = {}
        self.roles_of: dict[int, tuple[str, ...]] = {}
        for pid, unit, name, phone, roles in rows:
            self.roles_of[pid] = tuple(orjson.loads(roles) if isinstance(roles, str) else roles or ())
            self.by_name.setdefault((name, phone), []).append((unit, pid))
        #: Set by the importer while it holds the person table exclusively (ids by one ``setval``).
        self.locked = False

    def _match(self, key: tuple[str, str, str | None]) -> int | None:
        unit, name, phone = key
        candidates = self.by_name.get((name, phone), [])
        if phone is None:
            return next((pid for u, pid in candidates if u == unit), None)
        related = [(u, pid) for u, pid in candidates if unit.startswith(u) or u.startswith(unit)]
        if not related:
            return None
        return min(related, key=lambda c: (abs(len(c[0]) - len(unit)), len(unit) < len(c[0]), c[1]))[1]

    def resolve(self, units: list[str], names: list[str], phones: list[str | None], role: str) -> list[int]:
        """Person ids for sites in ``units[i]`` naming ``(names[i], phones[i])``; ``role`` added to their roles."""
        if not units:
            return []
        conn = self.conn
        keys = list(zip(units, names, phones, strict=True))
        unique = dict.fromkeys(keys)
        resolved: dict[tuple[str, str, str | None], int] = {}
        if self.by_name.keys() & set(zip(names, phones, strict=True)):  # someone may be known already
            for k in unique:
                if (k[1], k[2]) in self.by_name and (pid := self._match(k)) is not None:
                    resolved[k] = pid
        new = [k for k in unique if k not in resolved] if resolved else list(unique)
        now = utcnow()
        ids = _reserve_ids(conn, "person", len(new), locked=self.locked)
        n = len(new)
        new_units, new_names, new_phones = (list(c) for c in zip(*new, strict=True)) if new else ([], [], [])
        columns = [ids, new_names, new_phones, [orjson.dumps([role]).decode()] * n, new_units, [True] * n]
        _insert(conn, "person", ["id", "name", "phone", "roles", "unit_code", "active"], columns, now)
        for unit, name, phone, pid in zip(new_units, new_names, new_phones, ids, strict=True):
            self.by_name.setdefault((name, phone), []).append((unit, pid))
        self.roles_of.update(dict.fromkeys(ids, (role,)))
        add_role = sorted({pid for pid in resolved.values() if role not in self.roles_of[pid]})
        resolved.update(zip(new, ids, strict=True))
        if add_role:
            p = "%s" if conn.dialect.name == "postgresql" else "?"
            sql = f"UPDATE person SET roles = {p}, updated_at = {p} WHERE id = {p}"  # noqa: S608  (constant SQL; values are bound)
            ts = _ts(conn, now)
            for pid in add_role:
                self.roles_of[pid] = (*self.roles_of[pid], role)
            conn.connection.dbapi_connection.cursor().executemany(  # type: ignore[union-attr]
                sql, [(orjson.dumps(list(self.roles_of[pid])).decode(), ts, pid) for pid in add_role]
            )
        return list(map(resolved.__getitem__, keys))


# --------------------------------------------------------------------------- low-level writes


def _ts(conn: Connection, when: dt.datetime) -> Any:
    """A timestamp as the dialect stores it (SQLite: SQLAlchemy's text format)."""
    if conn.dialect.name == "postgresql":
        return when
    proc = DateTime(timezone=True).dialect_impl(conn.dialect).bind_processor(conn.dialect)
    return proc(when) if proc else when


def _reserve_ids(conn: Connection, table: str, n: int, *, locked: bool = False) -> list[int]:
    """``n`` new ids for ``table``; ``locked``: this transaction holds the table exclusively.

    PostgreSQL draws them from the table's sequence. Under an exclusive lock nobody else can insert
    (so nobody else draws), and one ``setval`` takes the whole run: ``nextval`` row by row cost
    0.8 s for 300,000 ids.
    """
    if n == 0:
        return []
    if conn.dialect.name == "postgresql" and locked:
        last = conn.exec_driver_sql(
            "SELECT setval(s::regclass, nextval(s::regclass) + %(n)s - 1) "
            "FROM pg_get_serial_sequence(%(t)s, 'id') AS s",
            {"t": table, "n": n},
        ).scalar_one()
        return list(range(int(last) - n + 1, int(last) + 1))
    if conn.dialect.name == "postgresql":
        # The ids drawn are one run unless another session drew at the same moment: then (only then)
        # the server sends them all. Fetching 300,000 single-value rows cost about 0.5 s.
        lo, hi, ids = conn.exec_driver_sql(
            "SELECT min(v), max(v), CASE WHEN max(v) - min(v) + 1 = count(*) THEN NULL "
            "ELSE array_agg(v ORDER BY v) END FROM (SELECT nextval(pg_get_serial_sequence(%(t)s, 'id')) AS v "
            "FROM generate_series(1, %(n)s)) s",
            {"t": table, "n": n},
        ).one()
        return list(range(int(lo), int(hi) + 1)) if ids is None else [int(i) for i in ids]
    start = conn.exec_driver_sql(f"SELECT coalesce(max(id), 0) FROM {table}").scalar_one()  # noqa: S608  (identifiers from TablePlan constants; values are bound)
    return list(range(start + 1, start + 1 + n))


def _insert(conn: Connection, table: str, cols: list[str], columns: list[list[Any]], now: dt.datetime) -> None:
    """Plain bulk insert of ``columns`` (one list per name in ``cols``) with created_at/updated_at appended."""
    n = len(columns[0]) if columns else 0
    if not n:
        return
    cols = [*cols, "created_at", "updated_at"]
    ts = _ts(conn, now)
    columns = [*columns, [ts] * n, [ts] * n]
    raw: Any = conn.connection.dbapi_connection
    assert raw is not None
    if conn.dialect.name == "postgresql":
        with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as cp:
            for block in copy_text(columns):
                cp.write(block)
    else:
        sqlite_insert(raw.cursor(), table, cols, columns)
