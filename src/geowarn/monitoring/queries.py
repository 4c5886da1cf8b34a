"""Time-series questions: raw ranges, bucketed aggregates, latest values, rainfall windows.

Bucket arithmetic is integer arithmetic on epoch milliseconds, so both backends answer alike.
Buckets are aligned to China Standard Time (UTC+8) so a "day" is a local day.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import text

from geowarn.admin.codes import prefix_range
from geowarn.monitoring.store import HOUR_MS, USABLE_MAX_FLAG

BUCKETS_MS = {"1min": 60_000, "10min": 600_000, "1h": 3_600_000, "1day": 86_400_000}
CST_OFFSET_MS = 8 * 3_600_000
RAIN_WINDOWS_H = (1, 3, 6, 12, 24, 72)


@dataclass(frozen=True, slots=True)
class Bucket:
    start_ms: int
    min: float | None
    max: float | None
    mean: float | None
    sum: float | None
    count: int
    last: float | None


def raw(conn: Any, sensor_id: int, start_ms: int, end_ms: int, *, limit: int = 100_000) -> list[tuple[int, float, int]]:
    """(t_ms, value, flag) of one sensor in [start, end), oldest first."""
    rows = conn.execute(
        text(
            "SELECT t_ms, value, flag FROM observation WHERE sensor_id = :s AND t_ms >= :a AND t_ms < :b "
            "ORDER BY t_ms LIMIT :n"
        ),
        {"s": sensor_id, "a": start_ms, "b": end_ms, "n": limit},
    ).all()
    return [(int(t), v, int(f)) for t, v, f in rows]


def aggregate(
    conn: Any, sensor_id: int, start_ms: int, end_ms: int, bucket: str, *, max_flag: int = USABLE_MAX_FLAG
) -> list[Bucket]:
    """min, max, mean, sum, count and last value per bucket, over readings no worse than ``max_flag``
    (default: good, not evaluated and suspect; failed and missing readings are left out).

    Hourly and daily buckets with the default flags come from the hourly roll-up (whole hours) plus
    the raw rows of any partial hour at either end; other requests read the raw rows.
    """
    size = BUCKETS_MS[bucket]
    if size < HOUR_MS or max_flag != USABLE_MAX_FLAG:
        return _merge(_raw_parts(conn, sensor_id, start_ms, end_ms, max_flag), size)
    a_h = -(-start_ms // HOUR_MS) * HOUR_MS
    b_h = end_ms // HOUR_MS * HOUR_MS
    if a_h >= b_h:
        return _merge(_raw_parts(conn, sensor_id, start_ms, end_ms, max_flag), size)
    rows = conn.exec_driver_sql(
        "SELECT hour_ms, n, total, vmin, vmax, last_t, last_v FROM observation_hourly "
        "WHERE sensor_id = ? AND hour_ms >= ? AND hour_ms < ? ORDER BY hour_ms"
        if conn.dialect.name == "sqlite"
        else "SELECT hour_ms, n, total, vmin, vmax, last_t, last_v FROM observation_hourly "
        "WHERE sensor_id = %s AND hour_ms >= %s AND hour_ms < %s ORDER BY hour_ms",
        (sensor_id, a_h, b_h),
    ).fetchall()
    parts = [_Part(int(h), int(n), tot, lo, hi, int(lt), lv) for h, n, tot, lo, hi, lt, lv in rows]
    if start_ms < a_h:
        parts = _raw_parts(conn, sensor_id, start_ms, a_h, max_flag) + parts
    if b_h < end_ms:
        parts += _raw_parts(conn, sensor_id, b_h, end_ms, max_flag)
    return _merge(parts, size)


@dataclass(frozen=True, slots=True)
class _Part:
    """Partial aggregate of readings starting at ``start_ms`` (one hour, or one raw reading)."""

    start_ms: int
    n: int
    total: float
    vmin: float
    vmax: float
    last_t: int
    last_v: float


def _raw_parts(conn: Any, sensor_id: int, start_ms: int, end_ms: int, max_flag: int) -> list[_Part]:
    rows = conn.execute(
        text(
            "SELECT t_ms, value FROM observation WHERE sensor_id = :s AND t_ms >= :a AND t_ms < :b "
            "AND flag <= :f AND flag <> 9 AND value IS NOT NULL ORDER BY t_ms"
        ),
        {"s": sensor_id, "a": start_ms, "b": end_ms, "f": max_flag},
    ).all()
    return [_Part(int(t), 1, v, v, v, int(t), v) for t, v in rows]


def _merge(parts: list[_Part], size: int) -> list[Bucket]:
    """Group partial aggregates into buckets of ``size`` ms aligned to China time."""
    if not parts:
        return []
    start = np.array([p.start_ms for p in parts], dtype=np.int64)
    key = (start + CST_OFFSET_MS) // size * size - CST_OFFSET_MS
    n = np.array([p.n for p in parts], dtype=np.int64)
    total = np.array([p.total for p in parts], dtype=np.float64)
    lo = np.array([p.vmin for p in parts], dtype=np.float64)
    hi = np.array([p.vmax for p in parts], dtype=np.float64)
    last_t = np.array([p.last_t for p in parts], dtype=np.int64)
    last_v = np.array([p.last_v for p in parts], dtype=np.float64)
    order = np.lexsort((last_t, key))
    key, n, last_t = key[order], n[order], last_t[order]
    total, lo, hi, last_v = total[order], lo[order], hi[order], last_v[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    ends = np.r_[starts[1:], len(key)] - 1
    counts = np.add.reduceat(n, starts)
    sums = np.add.reduceat(total, starts)
    return [
        Bucket(int(k), float(mn), float(mx), float(sm / c), float(sm), int(c), float(lv))
        for k, mn, mx, sm, c, lv in zip(
            key[starts].tolist(), np.minimum.reduceat(lo, starts).tolist(), np.maximum.reduceat(hi, starts).tolist(),
            sums.tolist(), counts.tolist(), last_v[ends].tolist(), strict=True,
        )
    ]  # fmt: skip


@dataclass(frozen=True, slots=True)
class LatestValues:
    """The latest reading of every sensor in a scope, as columns (ready for orjson's numpy support)."""

    sensor_id: npt.NDArray[np.int64]
    t_ms: npt.NDArray[np.int64]
    value: npt.NDArray[np.float64]
    flag: npt.NDArray[np.int16]

    def __len__(self) -> int:
        return len(self.sensor_id)


def latest_in_scope(conn: Any, scope_unit: str) -> LatestValues:
    """The latest reading of every sensor in scope, from one table in one query."""
    lo, hi = prefix_range(scope_unit)
    sql = (
        "SELECT sensor_id, t_ms, value, flag FROM sensor_latest WHERE unit_code >= ? AND unit_code < ?"
        if conn.dialect.name == "sqlite"
        else "SELECT sensor_id, t_ms, value, flag FROM sensor_latest WHERE unit_code >= %s AND unit_code < %s"
    )
    cur = conn.connection.dbapi_connection.cursor()  # plain tuples: no per-row Row objects
    try:
        cur.execute(sql, (lo, hi))
        rows = cur.fetchall()
    finally:
        cur.close()
    if not rows:
        empty = np.zeros(0, dtype=np.int64)
        return LatestValues(empty, empty, np.zeros(0), np.zeros(0, dtype=np.int16))
    arr = np.array(rows, dtype=np.float64)
    return LatestValues(arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64), arr[:, 2], arr[:, 3].astype(np.int16))


def rainfall_windows(
    conn: Any, now_ms: int, scope_unit: str, *, sensor_ids: list[int] | None = None, max_flag: int = 3
) -> dict[int, dict[int, float]]:
    """Rainfall (mm) of each rain gauge over the last 1, 3, 6, 12, 24 and 72 hours before ``now_ms``.

    Sums the interval-rainfall channel (``value``), leaving out failed and missing readings.
    """
    lo, hi = prefix_range(scope_unit)
    cols = ", ".join(f"SUM(CASE WHEN o.t_ms > :now - {h * 3_600_000} THEN o.value ELSE 0 END)" for h in RAIN_WINDOWS_H)
    where_ids = ""
    params: dict[str, Any] = {"now": now_ms, "lo": lo, "hi": hi, "f": max_flag, "start": now_ms - 72 * 3_600_000}
    if sensor_ids is not None:
        if not sensor_ids:
            return {}
        where_ids = f" AND s.id IN ({','.join(str(int(i)) for i in sensor_ids)})"
    rows = conn.execute(
        text(
            f"SELECT s.id, {cols} FROM sensor s JOIN observation o ON o.sensor_id = s.id "  # noqa: S608
            "WHERE s.sensor_type = 'RAIN' AND s.channel = 'value' AND s.unit_code >= :lo AND s.unit_code < :hi "
            f"AND o.t_ms > :start AND o.t_ms <= :now AND o.flag <= :f AND o.flag <> 9{where_ids} GROUP BY s.id"
        ),
        params,
    ).all()
    return {int(r[0]): {h: float(v or 0.0) for h, v in zip(RAIN_WINDOWS_H, r[1:], strict=True)} for r in rows}
