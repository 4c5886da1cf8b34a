"""Bulk, idempotent writes of observations: ``(sensor, time)`` is stored once, whatever arrives twice.

PostgreSQL: binary ``COPY`` into a temporary staging table, then ``INSERT … ON CONFLICT DO NOTHING
RETURNING`` into the partitioned table, which tells exactly which rows were new.
SQLite: ``INSERT OR IGNORE`` through ``executemany`` on the single writer connection, with the new
rows identified by looking up existing keys first (safe: the writer holds ``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, text

from geowarn.monitoring.partitions import ensure_partitions


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
    first.sort()
    return batch.take(first), len(batch) - len(first)


_PG_ROW = np.dtype(
    [
        ("n", ">i2"),
        ("l1", ">i4"), ("sensor", ">i4"),
        ("l2", ">i4"), ("t", ">i8"),
        ("l3", ">i4"), ("v", ">f8"),
        ("l4", ">i4"), ("flag", ">i2"),
        ("l5", ">i4"), ("qc", ">i4"),
        ("l6", ">i4"), ("recv", ">i8"),
    ]
)  # fmt: skip
_PG_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_PG_TRAILER = struct.pack(">h", -1)


def pg_binary_copy(batch: ObservationBatch) -> bytes:
    """The batch in PostgreSQL's binary COPY format, built with numpy (no per-row Python)."""
    rows = np.empty(len(batch), dtype=_PG_ROW)
    rows["n"] = 6
    rows["l1"], rows["l2"], rows["l3"], rows["l4"], rows["l5"], rows["l6"] = 4, 8, 8, 2, 4, 8
    rows["sensor"] = batch.sensor_id
    rows["t"] = batch.t_ms
    rows["v"] = batch.value
    rows["flag"] = batch.flag
    rows["qc"] = batch.qc
    rows["recv"] = batch.received_ms
    return _PG_HEADER + rows.tobytes() + _PG_TRAILER


def write_observations(conn: Connection, batch: ObservationBatch) -> npt.NDArray[np.bool_]:
    """Store the batch (already de-duplicated within itself); return the mask of rows that were new."""
    if len(batch) == 0:
        return np.zeros(0, dtype=bool)
    if conn.dialect.name == "postgresql":
        return _write_pg(conn, batch)
    return _write_sqlite(conn, batch)


def _write_pg(conn: Connection, batch: ObservationBatch) -> npt.NDArray[np.bool_]:
    ensure_partitions(conn, int(batch.t_ms.min()), int(batch.t_ms.max()))
    conn.execute(
        text(
            "CREATE TEMP TABLE IF NOT EXISTS _obs_stage "
            "(sensor_id int4, t_ms int8, value float8, flag int2, qc int4, received_ms int8) ON COMMIT DELETE ROWS"
        )
    )
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cur:
        with cur.copy("COPY _obs_stage FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(pg_binary_copy(batch))
        cur.execute(
            "INSERT INTO observation (sensor_id, t_ms, value, flag, qc, received_ms) "
            "SELECT sensor_id, t_ms, value, flag, qc, received_ms FROM _obs_stage "
            "ON CONFLICT (sensor_id, t_ms) DO NOTHING RETURNING sensor_id, t_ms"
        )
        inserted = cur.fetchall()
        cur.execute("TRUNCATE _obs_stage")
    return _mask_of(batch, inserted)


def _write_sqlite(conn: Connection, batch: ObservationBatch) -> npt.NDArray[np.bool_]:
    sensors = np.unique(batch.sensor_id).tolist()
    existing: list[tuple[int, int]] = []
    lo, hi = int(batch.t_ms.min()), int(batch.t_ms.max())
    for i in range(0, len(sensors), 500):
        chunk = sensors[i : i + 500]
        marks = ",".join("?" * len(chunk))
        existing += conn.exec_driver_sql(
            f"SELECT sensor_id, t_ms FROM observation WHERE sensor_id IN ({marks}) AND t_ms BETWEEN ? AND ?",  # noqa: S608
            (*chunk, lo, hi),
        ).fetchall()
    new = ~_mask_of(batch, existing) if existing else np.ones(len(batch), dtype=bool)
    fresh = batch.take(new)
    if len(fresh):
        rows = zip(
            fresh.sensor_id.tolist(),
            fresh.t_ms.tolist(),
            fresh.value.tolist(),
            fresh.flag.tolist(),
            fresh.qc.tolist(),
            [fresh.received_ms] * len(fresh),
            strict=True,
        )
        conn.exec_driver_sql(
            "INSERT OR IGNORE INTO observation (sensor_id, t_ms, value, flag, qc, received_ms) VALUES (?,?,?,?,?,?)",
            list(rows),
        )
    return new


def _mask_of(batch: ObservationBatch, keys: list[Any]) -> npt.NDArray[np.bool_]:
    if not keys:
        return np.zeros(len(batch), dtype=bool)
    arr = np.asarray(keys, dtype=np.int64)
    base = int(min(batch.t_ms.min(), arr[:, 1].min()))
    span = 1 << 42
    batch_keys = batch.sensor_id.astype(np.int64) * span + (batch.t_ms - base)
    hit_keys = arr[:, 0] * span + (arr[:, 1] - base)
    return np.isin(batch_keys, hit_keys)


def update_latest(conn: Connection, batch: ObservationBatch, unit_of: dict[int, str]) -> None:
    """Move each sensor's latest reading forward (never back) from the newly stored rows."""
    if len(batch) == 0:
        return
    order = np.lexsort((batch.t_ms, batch.sensor_id))
    s = batch.sensor_id[order]
    last = np.ones(len(s), dtype=bool)
    last[:-1] = s[1:] != s[:-1]
    idx = order[last]
    rows = [
        {"s": a, "u": unit_of[a], "t": b, "v": c, "f": d}
        for a, b, c, d in zip(
            batch.sensor_id[idx].tolist(), batch.t_ms[idx].tolist(), batch.value[idx].tolist(),
            batch.flag[idx].tolist(), strict=True,
        )
    ]  # fmt: skip
    conn.execute(
        text(
            "INSERT INTO sensor_latest (sensor_id, unit_code, t_ms, value, flag) VALUES (:s, :u, :t, :v, :f) "
            "ON CONFLICT (sensor_id) DO UPDATE SET t_ms = excluded.t_ms, value = excluded.value, flag = excluded.flag "
            "WHERE excluded.t_ms > sensor_latest.t_ms"
        ),
        rows,
    )


HOUR_MS = 3_600_000
#: Readings that count in charts and roll-ups: good, not evaluated, suspect (not fail, not missing).
USABLE_MAX_FLAG = 3


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
    rows = [
        {"s": a, "h": b, "n": c, "sum": d, "lo": e, "hi": f, "lt": g, "lv": h}
        for a, b, c, d, e, f, g, h in zip(
            sid[starts].tolist(), hour[starts].tolist(), (ends - starts + 1).tolist(),
            np.add.reduceat(v, starts).tolist(), np.minimum.reduceat(v, starts).tolist(),
            np.maximum.reduceat(v, starts).tolist(), t[ends].tolist(), v[ends].tolist(), strict=True,
        )
    ]  # fmt: skip
    conn.execute(
        text(
            "INSERT INTO observation_hourly (sensor_id, hour_ms, n, total, vmin, vmax, last_t, last_v) "
            "VALUES (:s, :h, :n, :sum, :lo, :hi, :lt, :lv) ON CONFLICT (sensor_id, hour_ms) DO UPDATE SET "
            "n = observation_hourly.n + excluded.n, total = observation_hourly.total + excluded.total, "
            "vmin = CASE WHEN excluded.vmin < observation_hourly.vmin THEN excluded.vmin "
            "ELSE observation_hourly.vmin END, "
            "vmax = CASE WHEN excluded.vmax > observation_hourly.vmax THEN excluded.vmax "
            "ELSE observation_hourly.vmax END, "
            "last_v = CASE WHEN excluded.last_t > observation_hourly.last_t THEN excluded.last_v "
            "ELSE observation_hourly.last_v END, "
            "last_t = CASE WHEN excluded.last_t > observation_hourly.last_t THEN excluded.last_t "
            "ELSE observation_hourly.last_t END"
        ),
        rows,
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
