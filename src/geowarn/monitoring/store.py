"""Bulk, idempotent writes of observations: ``(sensor, time)`` is stored once, whatever arrives twice.

Readings later than their sensor's latest stored time (known from the QC state, under the ingest
transaction's device locks) are certainly new and go straight in: binary ``COPY`` into the partitioned
table on PostgreSQL, a plain ``executemany`` on SQLite. The others may be duplicates:
PostgreSQL copies them into a temporary staging table and runs ``INSERT … ON CONFLICT DO NOTHING
RETURNING``, which tells exactly which rows were new; SQLite looks the existing keys up first (safe: the
writer holds ``BEGIN IMMEDIATE``) and inserts with ``INSERT OR IGNORE``.

The per-sensor upserts (latest value, hourly roll-up) and the device health update are one statement
each: on PostgreSQL from a staging table filled by binary ``COPY`` built with numpy (an ``executemany``
of 2,000 rows costs ~0.1 s there), on SQLite an ``executemany`` on the driver.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import IntegrityError

from geowarn.monitoring.partitions import ensure_partitions, month_bounds_ms, month_starts


@dataclass(slots=True)
class ObservationBatch:
    """Column arrays of readings to store, all of one length."""

    sensor_id: npt.NDArray[np.int64]
    t_ms: npt.NDArray[np.int64]
    value: npt.NDArray[np.float64]
    flag: npt.NDArray[np.int16]
    qc: npt.NDArray[np.int32]
    received_ms: int

    def __len__(self) -> int:
        return len(self.sensor_id)

    def take(self, mask_or_index: Any) -> ObservationBatch:
        return ObservationBatch(
            self.sensor_id[mask_or_index],
            self.t_ms[mask_or_index],
            self.value[mask_or_index],
            self.flag[mask_or_index],
            self.qc[mask_or_index],
            self.received_ms,
        )


def dedupe_in_batch(batch: ObservationBatch) -> tuple[ObservationBatch, int]:
    """Keep the first reading of each (sensor, time) within the batch; return it and how many were dropped."""
    if len(batch) == 0:
        return batch, 0
    keys = batch.sensor_id.astype(np.int64) * (1 << 42) + (batch.t_ms - batch.t_ms.min())
    _, first = np.unique(keys, return_index=True)
    if first.size == len(batch):
        return batch, 0
    first.sort()
    return batch.take(first), len(batch) - len(first)


# --- PostgreSQL: binary COPY built with numpy ---------------------------------------------------------

_PG_DTYPE = {"int2": ">i2", "int4": ">i4", "int8": ">i8", "float8": ">f8"}
_PG_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_PG_TRAILER = struct.pack(">h", -1)
#: NULL stand-ins in staged integer columns (floats use NaN), undone with NULLIF in the statements.
PG_NULL_INT = np.iinfo(np.int64).min


def pg_copy_data(columns: Sequence[tuple[str, str, npt.ArrayLike]]) -> bytes:
    """Rows of numeric ``(name, pg type, values)`` columns in PostgreSQL's binary COPY format, no NULLs."""
    n = np.asarray(columns[0][2]).size
    spec: list[tuple[str, str]] = [("n", ">i2")]
    for i, (_, pg_type, _) in enumerate(columns):
        spec += [(f"l{i}", ">i4"), (f"c{i}", _PG_DTYPE[pg_type])]
    rows = np.empty(n, dtype=np.dtype(spec))
    rows["n"] = len(columns)
    for i, (_, pg_type, values) in enumerate(columns):
        rows[f"l{i}"] = np.dtype(_PG_DTYPE[pg_type]).itemsize
        rows[f"c{i}"] = values
    return _PG_HEADER + rows.tobytes() + _PG_TRAILER


def pg_copy(cur: psycopg.Cursor[Any], table: str, columns: Sequence[tuple[str, str, npt.ArrayLike]]) -> None:
    """Binary COPY of numeric column arrays into ``table``."""
    names = ", ".join(c[0] for c in columns)
    with cur.copy(f"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.write(pg_copy_data(columns))


def pg_stage(cur: psycopg.Cursor[Any], table: str, columns: Sequence[tuple[str, str, npt.ArrayLike]]) -> None:
    """Fill the temporary staging table ``table`` (made on first use, emptied at commit) with the columns."""
    ddl = ", ".join(f"{name} {pg_type}" for name, pg_type, _ in columns)
    cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS {table} ({ddl}) ON COMMIT DELETE ROWS")
    cur.execute(f"TRUNCATE {table}")  # a second use within one transaction
    pg_copy(cur, table, columns)


def raw_cursor(conn: Connection) -> psycopg.Cursor[Any]:
    driver = conn.connection.driver_connection
    assert driver is not None
    return driver.cursor()


_ready: set[tuple[str, str]] = set()
_ready_lock = threading.Lock()
_PARTITION_LOCK = 0x6765_6F77_6172_6E01  # pg_advisory_xact_lock key of partition creation


def prepare_partitions(engine: Engine, t_ms: npt.NDArray[np.int64]) -> None:
    """Create the monthly partitions of the months a batch has readings in, in a short transaction of
    their own before the ingest transaction: creating a partition locks the whole table, and two ingest
    transactions doing it while holding locks on it deadlock. An advisory lock makes concurrent
    creators take turns."""
    key = str(engine.url)
    starts = month_starts(t_ms)
    months = [month_bounds_ms(t)[2] for t in starts]
    with _ready_lock:
        if all((key, m) in _ready for m in months):
            return
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PARTITION_LOCK})
        for t in starts:
            ensure_partitions(conn, t, t)
    with _ready_lock:
        _ready.update((key, m) for m in months)


# --- observations --------------------------------------------------------------------------------------


def write_observations(
    conn: Connection, batch: ObservationBatch, surely_new: npt.NDArray[np.bool_] | None = None
) -> npt.NDArray[np.bool_]:
    """Store the batch (already de-duplicated within itself); return the mask of rows that were new.

    ``surely_new`` marks rows known not to be stored yet (later than their sensor's latest stored time,
    with no other writer of the sensor until commit); they skip the duplicate check.
    """
    if len(batch) == 0:
        return np.zeros(0, dtype=bool)
    if surely_new is None:
        surely_new = np.zeros(len(batch), dtype=bool)
    if conn.dialect.name == "postgresql":
        return _write_pg(conn, batch, surely_new)
    return _write_sqlite(conn, batch, surely_new)


def _obs_columns(batch: ObservationBatch) -> list[tuple[str, str, npt.ArrayLike]]:
    return [("sensor_id", "int4", batch.sensor_id), ("t_ms", "int8", batch.t_ms), ("value", "float8", batch.value),
            ("flag", "int2", batch.flag), ("qc", "int4", batch.qc),
            ("received_ms", "int8", np.full(len(batch), batch.received_ms, np.int64))]  # fmt: skip


def _write_pg(conn: Connection, batch: ObservationBatch, surely_new: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    for t in month_starts(batch.t_ms):  # done already: see prepare_partitions
        ensure_partitions(conn, t, t)
    new = surely_new.copy()
    with raw_cursor(conn) as cur:
        if new.any():
            cur.execute("SAVEPOINT observation_copy")
            try:
                pg_copy(cur, "observation", _obs_columns(batch.take(new)))
                cur.execute("RELEASE SAVEPOINT observation_copy")
            except psycopg.errors.UniqueViolation:  # the sensor's state was behind: check them all
                cur.execute("ROLLBACK TO SAVEPOINT observation_copy")
                new[:] = False
        rest = ~new
        if rest.any():
            maybe = batch.take(rest)
            pg_stage(cur, "_obs_stage", _obs_columns(maybe))
            cur.execute(
                "INSERT INTO observation (sensor_id, t_ms, value, flag, qc, received_ms) "
                "SELECT sensor_id, t_ms, value, flag, qc, received_ms FROM _obs_stage "
                "ON CONFLICT (sensor_id, t_ms) DO NOTHING RETURNING sensor_id, t_ms"
            )
            new[rest] = _mask_of(maybe, cur.fetchall())
    return new


def _write_sqlite(
    conn: Connection, batch: ObservationBatch, surely_new: npt.NDArray[np.bool_]
) -> npt.NDArray[np.bool_]:
    new = surely_new.copy()
    if new.any():
        conn.exec_driver_sql("SAVEPOINT observation_insert")
        try:
            _insert_sqlite(conn, batch.take(new), "INSERT")
            conn.exec_driver_sql("RELEASE SAVEPOINT observation_insert")
        except IntegrityError:  # the sensor's state was behind: check them all
            conn.exec_driver_sql("ROLLBACK TO SAVEPOINT observation_insert")
            conn.exec_driver_sql("RELEASE SAVEPOINT observation_insert")
            new[:] = False
    rest = np.flatnonzero(~new)
    if rest.size:
        maybe = batch.take(rest)
        sensors = np.unique(maybe.sensor_id).tolist()
        existing: list[tuple[int, int]] = []
        lo, hi = int(maybe.t_ms.min()), int(maybe.t_ms.max())
        for i in range(0, len(sensors), 500):
            chunk = sensors[i : i + 500]
            marks = ",".join("?" * len(chunk))
            existing += conn.exec_driver_sql(
                f"SELECT sensor_id, t_ms FROM observation WHERE sensor_id IN ({marks}) AND t_ms BETWEEN ? AND ?",  # noqa: S608
                (*chunk, lo, hi),
            ).fetchall()
        fresh = ~_mask_of(maybe, existing) if existing else np.ones(rest.size, dtype=bool)
        new[rest] = fresh
        _insert_sqlite(conn, maybe.take(fresh), "INSERT OR IGNORE")
    return new


def _insert_sqlite(conn: Connection, batch: ObservationBatch, verb: str) -> None:
    if len(batch) == 0:
        return
    rows = zip(
        batch.sensor_id.tolist(), batch.t_ms.tolist(), batch.value.tolist(), batch.flag.tolist(),
        batch.qc.tolist(), [batch.received_ms] * len(batch), strict=True,
    )  # fmt: skip
    conn.exec_driver_sql(
        f"{verb} INTO observation (sensor_id, t_ms, value, flag, qc, received_ms) VALUES (?,?,?,?,?,?)",
        list(rows),
    )


def _mask_of(batch: ObservationBatch, keys: list[Any]) -> npt.NDArray[np.bool_]:
    if not keys:
        return np.zeros(len(batch), dtype=bool)
    arr = np.asarray(keys, dtype=np.int64)
    base = int(min(batch.t_ms.min(), arr[:, 1].min()))
    span = 1 << 42
    batch_keys = batch.sensor_id.astype(np.int64) * span + (batch.t_ms - base)
    hit_keys = arr[:, 0] * span + (arr[:, 1] - base)
    return np.isin(batch_keys, hit_keys)


# --- latest values, hourly roll-up, device health -----------------------------------------------------


def update_latest(conn: Connection, batch: ObservationBatch, unit_of: dict[int, str]) -> None:
    """Move each sensor's latest reading forward (never back) from the newly stored rows."""
    if len(batch) == 0:
        return
    order = np.lexsort((batch.t_ms, batch.sensor_id))
    s = batch.sensor_id[order]
    last = np.ones(len(s), dtype=bool)
    last[:-1] = s[1:] != s[:-1]
    idx = order[last]
    sid = batch.sensor_id[idx]
    units = sorted({unit_of[x] for x in np.unique(sid).tolist()})
    unit_ix = np.searchsorted(units, [unit_of[x] for x in sid.tolist()])
    if conn.dialect.name == "postgresql":
        with raw_cursor(conn) as cur:
            pg_stage(cur, "_latest_stage", [("sensor_id", "int4", sid), ("unit", "int4", unit_ix),
                                             ("t_ms", "int8", batch.t_ms[idx]), ("value", "float8", batch.value[idx]),
                                             ("flag", "int2", batch.flag[idx])])  # fmt: skip
            cur.execute(
                "INSERT INTO sensor_latest (sensor_id, unit_code, t_ms, value, flag) "
                "SELECT sensor_id, (CAST(%s AS text[]))[unit + 1], t_ms, value, flag FROM _latest_stage "
                "ON CONFLICT (sensor_id) DO UPDATE SET t_ms = excluded.t_ms, value = excluded.value, "
                "flag = excluded.flag WHERE excluded.t_ms > sensor_latest.t_ms",
                (units,),
            )
        return
    rows = zip(sid.tolist(), [units[i] for i in unit_ix.tolist()], batch.t_ms[idx].tolist(),
               batch.value[idx].tolist(), batch.flag[idx].tolist(), strict=True)  # fmt: skip
    conn.exec_driver_sql(
        "INSERT INTO sensor_latest (sensor_id, unit_code, t_ms, value, flag) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (sensor_id) DO UPDATE SET t_ms = excluded.t_ms, value = excluded.value, flag = excluded.flag "
        "WHERE excluded.t_ms > sensor_latest.t_ms",
        list(rows),
    )


HOUR_MS = 3_600_000
#: Readings that count in charts and roll-ups: good, not evaluated, suspect (not fail, not missing).
USABLE_MAX_FLAG = 3

_HOURLY_UPSERT = (
    "ON CONFLICT (sensor_id, hour_ms) DO UPDATE SET "
    "n = observation_hourly.n + excluded.n, total = observation_hourly.total + excluded.total, "
    "vmin = CASE WHEN excluded.vmin < observation_hourly.vmin THEN excluded.vmin ELSE observation_hourly.vmin END, "
    "vmax = CASE WHEN excluded.vmax > observation_hourly.vmax THEN excluded.vmax ELSE observation_hourly.vmax END, "
    "last_v = CASE WHEN excluded.last_t > observation_hourly.last_t THEN excluded.last_v "
    "ELSE observation_hourly.last_v END, "
    "last_t = CASE WHEN excluded.last_t > observation_hourly.last_t THEN excluded.last_t "
    "ELSE observation_hourly.last_t END"
)


def update_hourly(conn: Connection, batch: ObservationBatch) -> None:
    """Merge the newly stored usable readings into the hourly roll-up (exact, incremental)."""
    usable = (batch.flag <= USABLE_MAX_FLAG) & np.isfinite(batch.value)
    if not usable.any():
        return
    sid, t, v = batch.sensor_id[usable], batch.t_ms[usable], batch.value[usable]
    hour = t - t % HOUR_MS
    order = np.lexsort((t, hour, sid))
    sid, hour, t, v = sid[order], hour[order], t[order], v[order]
    starts = np.flatnonzero(np.r_[True, (sid[1:] != sid[:-1]) | (hour[1:] != hour[:-1])])
    ends = np.r_[starts[1:], len(sid)] - 1
    columns = [
        ("sensor_id", "int4", sid[starts]), ("hour_ms", "int8", hour[starts]), ("n", "int4", ends - starts + 1),
        ("total", "float8", np.add.reduceat(v, starts)), ("vmin", "float8", np.minimum.reduceat(v, starts)),
        ("vmax", "float8", np.maximum.reduceat(v, starts)), ("last_t", "int8", t[ends]), ("last_v", "float8", v[ends]),
    ]  # fmt: skip
    names = ", ".join(c[0] for c in columns)
    if conn.dialect.name == "postgresql":
        with raw_cursor(conn) as cur:
            pg_stage(cur, "_hourly_stage", columns)
            cur.execute(
                f"INSERT INTO observation_hourly ({names}) SELECT {names} FROM _hourly_stage " + _HOURLY_UPSERT  # noqa: S608
            )
        return
    rows = zip(*(np.asarray(c[2]).tolist() for c in columns), strict=True)
    conn.exec_driver_sql(
        f"INSERT INTO observation_hourly ({names}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) " + _HOURLY_UPSERT,  # noqa: S608
        list(rows),
    )


def recompute_hourly(conn: Connection, pairs: set[tuple[int, int]]) -> None:
    """Rebuild the roll-up of (sensor, hour) pairs from the raw rows (after flags were revised)."""
    for sensor_id, hour_ms in sorted(pairs):
        params = {"s": sensor_id, "a": hour_ms, "b": hour_ms + HOUR_MS, "f": USABLE_MAX_FLAG}
        conn.execute(text("DELETE FROM observation_hourly WHERE sensor_id = :s AND hour_ms = :a"), params)
        conn.execute(
            text(
                "INSERT INTO observation_hourly (sensor_id, hour_ms, n, total, vmin, vmax, last_t, last_v) "
                "SELECT :s, :a, COUNT(*), SUM(o.value), MIN(o.value), MAX(o.value), MAX(o.t_ms), "
                "(SELECT l.value FROM observation l WHERE l.sensor_id = :s AND l.t_ms >= :a AND l.t_ms < :b "
                " AND l.flag <= :f AND l.value IS NOT NULL ORDER BY l.t_ms DESC LIMIT 1) "
                "FROM observation o WHERE o.sensor_id = :s AND o.t_ms >= :a AND o.t_ms < :b AND o.flag <= :f "
                "AND o.value IS NOT NULL HAVING COUNT(*) > 0"
            ),
            params,
        )


def pg_array(values: npt.ArrayLike) -> str:
    """A numeric array as a PostgreSQL array literal (one text parameter: far cheaper to send than a list)."""
    return "{" + ",".join(map(repr, np.asarray(values).tolist())) + "}"


def lock_devices(conn: Connection, device_ids: Sequence[int]) -> None:
    """Lock the batch's devices in id order (PostgreSQL) for the rest of the ingest transaction.

    Every ingest transaction locks the devices it touches first, in one order, so two workers sharing a
    device take turns without deadlock, and a sensor's QC state, latest value and roll-up (all written
    under its device's lock) see no other writer until commit.
    """
    if conn.dialect.name != "postgresql" or not device_ids:
        return
    conn.exec_driver_sql(
        "SELECT id FROM device WHERE id = ANY(CAST(%s AS int4[])) ORDER BY id FOR NO KEY UPDATE",
        (pg_array(sorted(device_ids)),),
    )


def touch_devices(conn: Connection, seen: dict[int, tuple[int, dict[str, float]]]) -> None:
    """Move each device's last-seen time forward and keep its latest battery / signal readings."""
    if not seen:
        return
    ids = sorted(seen)
    last = [seen[i][0] for i in ids]
    battery = [seen[i][1].get("battery") for i in ids]
    signal = [seen[i][1].get("signal") for i in ids]
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(
            "UPDATE device SET last_seen_ms = CASE WHEN last_seen_ms IS NULL OR last_seen_ms < u.t THEN u.t "
            "ELSE last_seen_ms END, battery = COALESCE(NULLIF(u.b, 'NaN'), battery), "
            "signal = COALESCE(NULLIF(u.s, 'NaN'), signal) FROM unnest(CAST(%s AS int4[]), CAST(%s AS int8[]), "
            "CAST(%s AS float8[]), CAST(%s AS float8[])) AS u(id, t, b, s) WHERE device.id = u.id",
            (pg_array(ids), pg_array(last), pg_array(np.array(battery, dtype=np.float64)),
             pg_array(np.array(signal, dtype=np.float64))),
        )  # fmt: skip
        return
    conn.exec_driver_sql(
        "UPDATE device SET last_seen_ms = CASE WHEN last_seen_ms IS NULL OR last_seen_ms < ?1 THEN ?1 "
        "ELSE last_seen_ms END, battery = COALESCE(?2, battery), signal = COALESCE(?3, signal) WHERE id = ?4",
        list(zip(last, battery, signal, ids, strict=True)),
    )
