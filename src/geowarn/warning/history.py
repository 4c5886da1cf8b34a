"""A batch of sites' recent readings as numpy arrays, read in one pass per 900 sensors.

The engine asks for each sensor's readings in (start, end] of its own site's window. One query
covers the union of the windows and each sensor's rows are cut to its own window afterwards, so a
site evaluated at an earlier data time sees exactly what it would have seen alone. On PostgreSQL
the rows come packed in one bytea (fixed-width records parsed by numpy, no Python object per row);
on SQLite through the driver's cursor. A day of 10-minute readings of 600 sensors is 86,400 rows,
which row objects made the larger part of an engine drain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

CHUNK = 900  # sensors a query (SQLite's bound-parameter limit is far above; the IN list is inlined)

#: The server packs every row into one bytea (big-endian int8 sensor, int8 time, float8 value, int2
#: flag): one Python object for the whole result instead of one per row (binary COPY sends a
#: message per row, which the driver hands over one at a time). Rows are sorted here: an ORDER BY
#: in the aggregate tripled the query's time (600,000 rows: 600 ms against 200 ms).
_PACKED = np.dtype([("sensor", ">i8"), ("t", ">i8"), ("value", ">f8"), ("flag", ">i2")])
_PG_COLUMNS = ("string_agg(int8send(sensor_id::int8) || int8send(t_ms::int8) || float8send(coalesce(value, 'NaN'))"
               " || int2send(flag::int2), '')")  # fmt: skip


@dataclass(frozen=True, slots=True)
class SensorInfo:
    id: int
    code: str
    sensor_type: str
    channel: str


@dataclass(slots=True)
class Series:
    """One sensor's readings in the evaluation window (sorted by time)."""

    sensor: SensorInfo
    t_ms: npt.NDArray[np.int64]
    value: npt.NDArray[np.float64]
    flag: npt.NDArray[np.int8]


def _columns_postgresql(session: Any, sql: str) -> tuple[np.ndarray, ...]:
    raw = session.connection().connection.driver_connection
    with raw.cursor(binary=True) as cur:
        packed = cur.execute(sql).fetchone()[0] or b""
    rows = np.frombuffer(packed, _PACKED)
    rows = rows[np.lexsort((rows["t"], rows["sensor"]))]
    return (rows["sensor"].astype(np.int64), rows["t"].astype(np.int64), rows["value"].astype(np.float64),
            rows["flag"].astype(np.int8))  # fmt: skip


def _columns_sqlite(session: Any, sql: str) -> tuple[np.ndarray, ...]:
    cur = session.connection().connection.driver_connection.cursor()
    try:
        rows = cur.execute(sql).fetchall()
    finally:
        cur.close()
    if not rows:
        return (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int8))
    arr = np.array(rows, dtype=np.float64)  # a NULL value becomes NaN; times are exact below 2^53 ms
    return arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64), arr[:, 2].copy(), arr[:, 3].astype(np.int8)


def load_series(session: Any, windows: dict[SensorInfo, tuple[int, int]]) -> list[Series]:
    """Readings of each sensor in its window (start, end], sorted by time; sensors without any are left out."""
    if not windows:
        return []
    by_id = {s.id: (s, w) for s, w in windows.items()}
    ids = sorted(by_id)
    start = min(w[0] for w in windows.values())
    end = max(w[1] for w in windows.values())
    postgres = session.get_bind().dialect.name == "postgresql"
    out: list[Series] = []
    for k in range(0, len(ids), CHUNK):
        marks = ", ".join(str(int(i)) for i in ids[k : k + CHUNK])
        cols = _PG_COLUMNS if postgres else "sensor_id, t_ms, value, flag"
        order = "" if postgres else " ORDER BY sensor_id, t_ms"
        sql = (f"SELECT {cols} FROM observation WHERE sensor_id IN ({marks}) "  # noqa: S608 (integers only)
               f"AND t_ms > {int(start)} AND t_ms <= {int(end)}{order}")  # fmt: skip
        sid, t, v, f = _columns_postgresql(session, sql) if postgres else _columns_sqlite(session, sql)
        if sid.size == 0:
            continue
        cuts = np.r_[0, np.flatnonzero(np.diff(sid)) + 1, sid.size]
        for a, b in zip(cuts[:-1].tolist(), cuts[1:].tolist(), strict=True):
            sensor, (lo_t, hi_t) = by_id[int(sid[a])]
            lo = a + int(np.searchsorted(t[a:b], lo_t, side="right"))
            hi = a + int(np.searchsorted(t[a:b], hi_t, side="right"))
            if hi > lo:
                out.append(Series(sensor, t[lo:hi].copy(), v[lo:hi].copy(), f[lo:hi].copy()))
    return out
