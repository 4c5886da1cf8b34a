"""Bulk insert-or-update of validated records by code, counting created / updated / unchanged.

The Python side compares each incoming row with the stored one (so the audit log can say which
fields changed); the database side then writes only rows that differ. On PostgreSQL the
``ON CONFLICT … WHERE`` clause repeats the comparison and its ``RETURNING`` gives the counts.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import psycopg
import shapely
from sqlalchemy.engine import Connection

from geowarn.db import utcnow
from geowarn.db.bulkload import copy_text, sqlite_insert
from geowarn.inventory.summary import SITE_COLUMNS
from geowarn.io.store import ALWAYS, PLANS, TablePlan, _reserve_ids, _ts


@dataclass
class Outcome:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    #: (code, id, {column: [old, new]}) of every updated record
    changes: list[tuple[str, Any, dict[str, list[Any]]]] = field(default_factory=list)
    #: Sites only: the summary's columns of the inserted sites as written
    #: (see :func:`geowarn.inventory.summary.add_sites`); None when which rows were inserted is unknown.
    inserted_sites: dict[str, list[Any]] | None = None


def _pylist(arr: Any) -> list[Any]:
    out = arr.tolist() if isinstance(arr, np.ndarray) else list(arr)
    if isinstance(arr, np.ndarray) and arr.dtype.kind == "f":
        return [None if v != v else v for v in out]
    return out


_POINT_WKB = np.dtype([("order", "u1"), ("type", "<u4"), ("x", "<f8"), ("y", "<f8")])


_POINT_EWKB = np.dtype([("order", "u1"), ("type", "<u4"), ("srid", "<u4"), ("x", "<f8"), ("y", "<f8")])
_EWKB_SRID_FLAG = 0x20000000


def point_ewkb_hex(x: np.ndarray, y: np.ndarray, srid: int = 4326) -> list[str]:
    """Points as hex EWKB with their SRID (PostGIS's text input of geometry), built by numpy."""
    buf = np.empty(len(x), dtype=_POINT_EWKB)
    buf["order"], buf["type"], buf["srid"], buf["x"], buf["y"] = 1, 1 | _EWKB_SRID_FLAG, srid, x, y
    text = buf.tobytes().hex()
    return [text[i : i + 50] for i in range(0, len(text), 50)]


def point_wkb(x: np.ndarray, y: np.ndarray) -> list[bytes]:
    """2-D little-endian WKB points built by numpy (what ``shapely.to_wkb`` writes, without the objects)."""
    buf = np.empty(len(x), dtype=_POINT_WKB)
    buf["order"], buf["type"], buf["x"], buf["y"] = 1, 1, x, y
    raw = buf.tobytes()
    return [raw[i : i + 21] for i in range(0, len(raw), 21)]


def _canon(value: Any) -> Any:
    """A form in which a number and its text agree (19.0, 19 and "19.0" all give "19")."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return value
    try:
        number = float(value)
    except ValueError:
        return value
    if not math.isfinite(number):
        return value
    return str(int(number)) if number.is_integer() and abs(number) < 2**53 else repr(number)


def _same(old: Any, new: Any) -> bool:
    if old is None or new is None:
        return old is None and new is None
    if isinstance(old, dict) and isinstance(new, dict):
        # Unmapped columns come back from text formats as text: compare numbers by value.
        return old.keys() == new.keys() and all(_canon(old[k]) == _canon(new[k]) for k in old)
    if isinstance(old, float) or isinstance(new, float):
        return math.isclose(float(old), float(new), rel_tol=0, abs_tol=0)
    return bool(old == new)


def _columns(
    plan: TablePlan, vals: dict[str, Any], present: set[str], n: int
) -> tuple[dict[str, list[Any]], list[str]]:
    """Every column's values (defaults where the file lacks the field) and the columns the file sets."""
    data: dict[str, list[Any]] = {}
    written: list[str] = []
    for col, key in plan.columns.items():
        if key in vals:  # a value computed without the file saying so (a fallback unit) is kept for new rows only
            data[col] = _pylist(vals[key])
            if plan.defaults.get(col) is not None:  # a blank cell of a NOT NULL column means its default
                default = plan.defaults[col]
                data[col] = [default if v is None else v for v in data[col]]
            if key in present or key in ALWAYS:
                written.append(col)
        else:
            data[col] = [plan.defaults.get(col)] * n
    return data, written


def upsert(
    conn: Connection,
    kind: str,
    vals: dict[str, Any],
    present: set[str],
    existing: dict[str, dict[str, Any]],
    *,
    locked: bool = False,
) -> Outcome:
    """Insert the new codes and update the changed ones; ``locked``: the table is held exclusively."""
    plan = PLANS[kind]
    n = len(vals["code"])
    data, written = _columns(plan, vals, present, n)
    if plan.point:
        lon, lat = np.asarray(vals["lon"], float), np.asarray(vals["lat"], float)
        wkb = point_wkb(lon, lat)
        bbox = [data["lon"], data["lat"], data["lon"], data["lat"]]  # the same lists: COPY formats them once
    else:
        geoms = np.asarray(vals["geom"], dtype=object)
        wkb = _pylist(shapely.to_wkb(geoms, output_dimension=2))
        bounds = shapely.bounds(geoms)
        bbox = [[None if v != v else v for v in bounds[:, k].tolist()] for k in range(4)]
    for c in plan.json_cols:
        data[c] = [v if v is not None else {} for v in data[c]]

    new_idx: list[int] = [] if existing else list(range(n))  # nothing stored: every row is new
    upd_idx: list[int] = []
    out = Outcome()
    compare = [c for c in written if c != "code"]
    codes = data["code"]
    incoming = list(zip(*[data[c] for c in compare], strict=True)) if compare and existing else [()] * n
    for i, code in enumerate(codes if existing else ()):
        old = existing.get(code)
        if old is None:
            new_idx.append(i)
            continue
        # whole-row tuple equality first (C speed); the field-by-field diff only for rows that differ
        same_row = tuple(map(old.get, compare)) == incoming[i]
        diff = {} if same_row else {c: [old.get(c), data[c][i]] for c in compare if not _same(old.get(c), data[c][i])}
        if plan.polygon and old.get("geom_wkb") != wkb[i]:
            diff["geom"] = ["(旧几何)", "(新几何)"]
        if diff:
            upd_idx.append(i)
            out.changes.append((code, old[plan.id_col], diff))
        else:
            out.unchanged += 1
    status = _pylist(vals["status"]) if "status" in vals else [None] * n
    ctx = _Rows(plan, data, written, wkb, bbox, [s or "registered" for s in status])
    if conn.dialect.name == "postgresql":
        if locked and plan.point and new_idx and _pg_copy_new(conn, kind, ctx, new_idx):
            created, updated = _pg_write(conn, kind, ctx, upd_idx, locked=locked)
            created += len(new_idx)
        else:
            created, updated = _pg_write(conn, kind, ctx, new_idx + upd_idx, locked=locked)
        out.created, out.updated = created, updated
        out.unchanged = n - created - updated
    else:
        _sqlite_write(conn, kind, ctx, new_idx, upd_idx, [e[1] for e in out.changes])
        out.created, out.updated = len(new_idx), len(upd_idx)
    # Sites are never deleted, so the codes not found before are the rows inserted, unless another
    # writer inserted one of them meanwhile (PostgreSQL then counts it as updated, not created).
    if kind == "sites" and out.created == len(new_idx):
        names = [c for c in SITE_COLUMNS if c != "status"]
        columns = ctx.columns(names, new_idx, [ctx.status])
        out.inserted_sites = dict(zip([*names, "status"], columns, strict=True))
    return out


@dataclass
class _Rows:
    plan: TablePlan
    data: dict[str, list[Any]]
    written: list[str]
    wkb: list[Any]
    bbox: list[list[Any]]
    status: list[str]

    def __post_init__(self) -> None:
        for c in self.plan.json_cols:  # serialised once, as both drivers take JSON text
            self.data[c] = [orjson.dumps(v).decode() for v in self.data[c]]

    def columns(self, cols: list[str], idx: list[int], tail: list[list[Any]]) -> list[list[Any]]:
        """The columns ``cols`` then each ``tail`` column, at the positions ``idx``."""
        every = len(idx) == len(self.wkb)
        columns = [self.data[c] for c in cols] + tail
        return columns if every else [[col[i] for i in idx] for col in columns]

    def rows(self, cols: list[str], idx: list[int], tail: list[list[Any]]) -> list[tuple[Any, ...]]:
        """Row tuples of ``cols`` then each ``tail`` column, for the positions ``idx`` (column-wise, then zip)."""
        return list(zip(*self.columns(cols, idx, tail), strict=True))


def _sqlite_write(
    conn: Connection, kind: str, r: _Rows, new_idx: list[int], upd_idx: list[int], upd_ids: list[Any]
) -> None:
    plan = r.plan
    now = utcnow()
    ts = _ts(conn, now)
    raw: Any = conn.connection.dbapi_connection
    assert raw is not None
    cur = raw.cursor()
    cols = list(plan.columns)
    geo = ["geom", *(["minx", "miny", "maxx", "maxy"] if plan.bbox else [])]
    sites = kind == "sites"
    if new_idx:
        # No ids: SQLite numbers new rows from max(id) + 1, as _reserve_ids would, and binding them cost.
        today = dt.date.today().isoformat()
        n = len(r.wkb)
        tail = [r.wkb, *(r.bbox if plan.bbox else []), [ts] * n, [ts] * n]
        head = [*cols, *geo, "created_at", "updated_at"]
        if sites:
            head += ["status", "status_since", "version"]
            tail += [r.status, [today] * n, [1] * n]
        columns = r.columns(cols, new_idx, tail)
        # A column without a value in any row is left out (NULL either way): every bound value costs.
        kept = [i for i, col in enumerate(columns) if i >= len(cols) or col.count(None) < len(col)]
        sqlite_insert(cur, plan.table, [head[i] for i in kept], [columns[i] for i in kept])
    if upd_idx:
        sets = [c for c in r.written if c != "code"]
        assign = ", ".join(f"{c} = ?" for c in [*sets, *geo]) + ", updated_at = ?"
        if plan.versioned:
            assign += ", version = version + 1"
        n = len(r.wkb)
        tail = [r.wkb, *(r.bbox if plan.bbox else []), [ts] * n]
        rows = [(*row, pid) for row, pid in zip(r.rows(sets, upd_idx, tail), upd_ids, strict=True)]
        cur.executemany(f"UPDATE {plan.table} SET {assign} WHERE {plan.id_col} = ?", rows)  # noqa: S608  (identifiers from TablePlan constants; values are bound)


def _pg_copy_new(conn: Connection, kind: str, r: _Rows, idx: list[int]) -> bool:
    """New point rows straight into their table by ``COPY``, for a load that holds the table exclusively.

    Skips the staging table and its ``INSERT … SELECT`` (2 of a 300,000-site import's 4 s of server
    time). The codes were looked up before the lock; if another writer took one meanwhile, the
    ``COPY`` fails on the unique code, is undone, and False sends the rows through the staging path.
    """
    plan = r.plan
    raw: Any = conn.connection.dbapi_connection
    assert raw is not None
    n = len(idx)
    cols = list(plan.columns)
    bbox = ["minx", "miny", "maxx", "maxy"] if plan.bbox else []
    now, today = conn.exec_driver_sql("SELECT now(), CURRENT_DATE").one()  # what the staging path writes
    lon = np.asarray(r.columns([], idx, [r.bbox[0]])[0], dtype=np.float64)
    lat = np.asarray(r.columns([], idx, [r.bbox[1]])[0], dtype=np.float64)
    head = [*cols, "geom", *bbox, "created_at", "updated_at"]
    columns = [*r.columns(cols, idx, []), point_ewkb_hex(lon, lat), *r.columns([], idx, r.bbox if bbox else [])]
    columns += [[now] * n, [now] * n]
    if kind == "sites":
        head += ["status", "status_since", "version"]
        columns += [r.columns([], idx, [r.status])[0], [today] * n, [1] * n]
    if plan.id_col == "id":
        head.insert(0, "id")
        columns.insert(0, _reserve_ids(conn, plan.table, n, locked=True))
    with raw.cursor() as cur:
        cur.execute("SAVEPOINT geowarn_copy_new")
        try:
            with cur.copy(f"COPY {plan.table} ({', '.join(head)}) FROM STDIN") as cp:
                for block in copy_text(columns):
                    cp.write(block)
        except psycopg.errors.UniqueViolation:
            cur.execute("ROLLBACK TO SAVEPOINT geowarn_copy_new")
            return False
        cur.execute("RELEASE SAVEPOINT geowarn_copy_new")
    return True


def _pg_write(conn: Connection, kind: str, r: _Rows, idx: list[int], *, locked: bool) -> tuple[int, int]:
    if not idx:
        return 0, 0
    plan = r.plan
    raw: Any = conn.connection.dbapi_connection
    assert raw is not None
    cols = list(plan.columns)
    sites = kind == "sites"
    extra = ["status"] if sites else []
    ids: list[list[Any]] = []
    if locked and plan.id_col == "id":  # one run of ids (rows that turn out to be updates leave gaps)
        ids = [_reserve_ids(conn, plan.table, len(idx), locked=True)]
        extra.append("id")
    bbox = ["minx", "miny", "maxx", "maxy"] if plan.bbox else []
    stage_cols = cols + bbox + extra
    with raw.cursor() as cur:
        cur.execute(
            f"CREATE TEMP TABLE _stage ON COMMIT DROP AS SELECT {', '.join(stage_cols)} FROM {plan.table} WITH NO DATA"  # noqa: S608  (identifiers from TablePlan constants; values are bound)
        )
        cur.execute("ALTER TABLE _stage ADD COLUMN wkb bytea")
        with cur.copy(f"COPY _stage ({', '.join([*stage_cols, 'wkb'])}) FROM STDIN") as cp:
            tail = [*(r.bbox if plan.bbox else []), *([r.status] if sites else [])]
            columns = r.columns(cols, idx, tail) + ids + [r.columns([], idx, [r.wkb])[0]]
            for block in copy_text(columns):
                cp.write(block)
        ins_cols = [*cols, "geom", *bbox, "created_at", "updated_at", *extra]
        ins_vals = [
            *(f"s.{c}" for c in cols),
            "ST_GeomFromWKB(s.wkb, 4326)",
            *(f"s.{c}" for c in bbox),
            "now()",
            "now()",
        ]
        ins_vals += [f"s.{c}" for c in extra]
        if sites:
            ins_cols += ["status_since", "version"]
            ins_vals += ["CURRENT_DATE", "1"]
        upd = [c for c in r.written if c != "code"]
        sets = [f"{c} = EXCLUDED.{c}" for c in [*upd, "geom", *bbox]] + ["updated_at = EXCLUDED.updated_at"]
        if plan.versioned:
            sets.append("version = t.version + 1")
        diff = [f"t.{c} IS DISTINCT FROM EXCLUDED.{c}" for c in upd]
        if plan.polygon:
            diff.append("ST_AsBinary(t.geom) IS DISTINCT FROM ST_AsBinary(EXCLUDED.geom)")
        ret = f"t.{plan.id_col} AS id, (t.xmax = 0) AS inserted"
        sql = (
            f"WITH up AS (INSERT INTO {plan.table} AS t ({', '.join(ins_cols)}) "  # noqa: S608  (identifiers from TablePlan constants; values are bound)
            f"SELECT {', '.join(ins_vals)} FROM _stage s "
            f"ON CONFLICT (code) DO UPDATE SET {', '.join(sets)} WHERE {' OR '.join(diff) or 'false'} "
            f"RETURNING {ret})"
        )
        sql += " SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM up"
        cur.execute(sql)
        got = cur.fetchone()
        assert got is not None
        cur.execute("DROP TABLE _stage")
    return int(got[0]), int(got[1])
