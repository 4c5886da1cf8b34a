"""Quality control on the ingestion path: each sensor's new readings are checked against its stored
series (``geowarn.monitoring.qc``), and flags of stored readings that the new ones settle are revised.

The stored series is stood for by each sensor's QC state (:mod:`geowarn.monitoring.qc_state`): a few
rows that give QC the context the whole series gives, so the common batch reads one small row per sensor
instead of up to 30 days of history. A sensor without a state built under its current config (its first
batch, or after its QC settings changed) is checked against its stored history, read as before, and gets
its state from it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection

from geowarn.monitoring.qc import qc_config_for
from geowarn.monitoring.qc.config import QcConfig
from geowarn.monitoring.qc.flags import FlagArray, QcFlag
from geowarn.monitoring.qc.many import QcHistories, apply_revisions_many, run_qc_many
from geowarn.monitoring.qc_state import (
    COLUMNS,
    FLOAT_COLUMNS,
    NO_T,
    QcStates,
    Rows,
    compact_history,
    config_key,
    flat_tolerance,
    fold_states,
    usable_fields,
    usable_history,
)
from geowarn.monitoring.store import HOUR_MS, USABLE_MAX_FLAG, ObservationBatch, pg_array, pg_stage, raw_cursor


@lru_cache(maxsize=4096)
def _config(sensor_type: str, channel: str, overrides_json: str) -> QcConfig:
    overrides = json.loads(overrides_json) if overrides_json != "{}" else None
    return qc_config_for(sensor_type, channel=channel, overrides=overrides)


def config_of(sensor: Any, interval_s: int) -> QcConfig:
    if not sensor.qc_overrides:  # the common case: no JSON to build (a per-sensor cost on the ingest path)
        return _plain_config(sensor.sensor_type, sensor.channel, interval_s)
    overrides = dict(sensor.qc_overrides)
    overrides.setdefault("interval_seconds", interval_s)
    return _config(sensor.sensor_type, sensor.channel, json.dumps(overrides, sort_keys=True))


@lru_cache(maxsize=4096)
def _plain_config(sensor_type: str, channel: str, interval_s: int) -> QcConfig:
    return _config(sensor_type, channel, json.dumps({"interval_seconds": interval_s}))


@dataclass(slots=True)
class Assessment:
    """What :func:`assess` found, and what :meth:`save_states` needs once the batch is written."""

    #: (sensor, hour) pairs whose hourly roll-up must be rebuilt: a stored reading changed usability.
    stale_hours: set[tuple[int, int]]
    #: Batch rows (input order) later than their sensor's latest stored time: certainly new.
    surely_new: npt.NDArray[np.bool_]
    ids: npt.NDArray[np.int64]
    order: npt.NDArray[np.intp]
    segment: npt.NDArray[np.intp]
    context: Rows  # usable context rows, revised flags applied
    usable: npt.NDArray[np.bool_]  # batch rows (sorted) that later batches take as context
    keys: npt.NDArray[np.int64]
    tolerance: npt.NDArray[np.float64]
    max_t: npt.NDArray[np.int64]

    def save_states(self, conn: Connection, batch: ObservationBatch, new: npt.NDArray[np.bool_]) -> None:
        """Write each sensor's state after the batch; ``new`` marks the rows stored (input order)."""
        stored = new[self.order]
        max_t = self.max_t.copy()
        if stored.any():
            np.maximum.at(max_t, self.segment[stored], batch.t_ms[self.order][stored])
        keep = stored & self.usable
        rows = Rows(
            self.segment[keep], batch.t_ms[self.order][keep], batch.value[self.order][keep],
            batch.qc[self.order][keep], batch.flag[self.order][keep].astype(np.uint8),
        )  # fmt: skip
        states = fold_states(self.context, rows, self.ids.size, self.tolerance, self.keys, max_t)
        _save_states(conn, self.ids, states)


def assess(conn: Connection, batch: ObservationBatch, meta: dict[int, tuple[Any, Any]], *, now_ms: int) -> Assessment:
    """Fill ``batch.flag`` and ``batch.qc`` in place; revise stored flags that the batch settles.

    ``meta`` maps sensor id to (SensorInfo, DeviceInfo). All sensors of the batch are checked in one
    :func:`run_qc_many` pass, each against its own context and config, exactly as :func:`run_qc` would
    check them one by one against their whole stored series.
    """
    order = np.lexsort((batch.t_ms, batch.sensor_id))
    sensors = batch.sensor_id[order]
    first = np.r_[True, sensors[1:] != sensors[:-1]]
    ids = sensors[first]  # sorted: np.searchsorted maps a stored row's sensor to its segment
    segment = np.cumsum(first) - 1
    m = ids.size
    slot: dict[int, int] = {}  # distinct configs by identity (config_of caches them): id -> index
    distinct: list[QcConfig] = []
    config_index = np.empty(m, dtype=np.intp)
    installed = np.full(m, np.nan)  # NaN: installation time not known
    for k, sid in enumerate(ids.tolist()):
        sensor, device = meta[sid]
        cfg = config_of(sensor, device.interval_s)
        if id(cfg) not in slot:
            slot[id(cfg)] = len(distinct)
            distinct.append(cfg)
        config_index[k] = slot[id(cfg)]
        if device.installed_ms is not None:
            installed[k] = device.installed_ms / 1000.0
    per_config = np.array([(config_key(c), usable_fields(c), c.duplicate_and_order) for c in distinct], np.int64)
    keys, usable_packed = per_config[config_index, 0], per_config[config_index, 1].astype(np.int32)
    checks_order = per_config[config_index, 2].astype(bool)
    tolerance = np.array([flat_tolerance(c) for c in distinct])[config_index]

    states = _load_states(conn, ids)
    t_sorted = batch.t_ms[order]
    earliest = t_sorted[first]
    fast = (states.config_key == keys) & (checks_order | (earliest > states.last_t))
    slow = np.flatnonzero(~fast)
    parts = [compact_history(states.take(np.flatnonzero(fast)), np.flatnonzero(fast), tolerance[fast],
                             usable_packed[fast])]  # fmt: skip
    max_t = states.max_t.copy()
    if slow.size:
        slow_configs = [distinct[i] for i in np.unique(config_index[slow]).tolist()]
        parts.append(_history(conn, ids, slow, earliest[slow].min(), slow_configs))
        max_t[slow] = _latest_times(conn, ids[slow])
    context = Rows.concat(parts)
    context = context.take(np.argsort(context.seg, kind="stable"))

    result = run_qc_many(
        t_sorted / 1000.0,
        batch.value[order],
        segment,
        distinct,
        config_index,
        now=now_ms / 1000.0,
        installed_at=installed,
        histories=QcHistories(context.t_ms / 1000.0, context.value, context.seg, context.packed),
    )
    batch.flag[order] = result.aggregate
    batch.qc[order] = result.packed
    stale: set[tuple[int, int]] = set()
    if result.revisions:
        packed, agg = apply_revisions_many(context.packed, context.flag, result.revisions)
        rows = np.unique(np.concatenate([r for r, _ in result.revisions.values()]))
        # a settled flag may not change
        rows = rows[(packed[rows] != context.packed[rows]) | (agg[rows] != context.flag[rows])]
        if rows.size:
            _store_revised(conn, ids[context.seg[rows]], context.t_ms[rows], packed[rows], agg[rows])
        moved = rows[(context.flag[rows] <= USABLE_MAX_FLAG) != (agg[rows] <= USABLE_MAX_FLAG)]
        hours = context.t_ms[moved] - context.t_ms[moved] % HOUR_MS
        stale = set(zip(ids[context.seg[moved]].tolist(), hours.tolist(), strict=True))
        context.packed, context.flag = packed, agg
    usable = np.ones(len(batch), dtype=bool)
    for name in ("timestamp", "duplicate_and_order"):
        f = result.flags.get(name)
        if f is not None:
            usable &= (f == 0) | (f == QcFlag.GOOD)
    surely_new = np.empty(len(batch), dtype=bool)
    surely_new[order] = t_sorted > max_t[segment]
    return Assessment(
        stale, surely_new, ids, order, segment, context.take(usable_history(context, m)), usable, keys, tolerance,
        max_t,
    )  # fmt: skip


def _store_revised(
    conn: Connection,
    sensor_id: npt.NDArray[np.int64],
    t_ms: npt.NDArray[np.int64],
    qc: npt.NDArray[np.int32],
    flag: FlagArray,
) -> None:
    """Write revised flags of stored readings; on PostgreSQL in one statement over arrays (an executemany
    of thousands of single-row UPDATEs costs ~0.1 s there)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(
            "UPDATE observation AS o SET qc = r.q, flag = r.f FROM unnest(CAST(%s AS int4[]), "
            "CAST(%s AS int8[]), CAST(%s AS int4[]), CAST(%s AS int2[])) AS r(s, t, q, f) "
            "WHERE o.sensor_id = r.s AND o.t_ms = r.t",
            (pg_array(sensor_id), pg_array(t_ms), pg_array(qc), pg_array(flag)),
        )
        return
    conn.exec_driver_sql(
        "UPDATE observation SET qc = ?, flag = ? WHERE sensor_id = ? AND t_ms = ?",
        list(zip(qc.tolist(), flag.tolist(), sensor_id.tolist(), t_ms.tolist(), strict=True)),
    )


def _chunks(ids: npt.NDArray[np.int64], size: int = 500) -> list[str]:
    values = ids.tolist()
    return [",".join(str(int(x)) for x in values[i : i + size]) for i in range(0, len(values), size)]


def _fetch(conn: Connection, sql: str) -> list[tuple[Any, ...]]:
    """Rows as plain tuples from the driver (numpy reads them ~30x faster than SQLAlchemy rows)."""
    cur = conn.connection.cursor()
    try:
        cur.execute(sql)
        return list(cur.fetchall())
    finally:
        cur.close()


def _load_states(conn: Connection, ids: npt.NDArray[np.int64]) -> QcStates:
    rows: list[Any] = []
    columns = ", ".join(COLUMNS)
    for chunk in _chunks(ids, 2000):
        rows += _fetch(conn, f"SELECT sensor_id, {columns} FROM sensor_qc_state WHERE sensor_id IN ({chunk})")  # noqa: S608
    return QcStates.from_rows(rows, ids)


def _save_states(conn: Connection, ids: npt.NDArray[np.int64], states: QcStates) -> None:
    names = ("sensor_id", *COLUMNS)
    update = ", ".join(f"{c} = excluded.{c}" for c in COLUMNS)
    if conn.dialect.name == "postgresql":
        types = {"q1": "int4", "f1": "int2"}
        columns = [("sensor_id", "int4", ids)] + [
            (c, "float8" if c in FLOAT_COLUMNS else types.get(c, "int8"), getattr(states, c)) for c in COLUMNS
        ]
        nullable = ", ".join(_pg_nullable(c) for c in names)
        with raw_cursor(conn) as cur:
            pg_stage(cur, "_qc_stage", columns)
            cur.execute(
                f"INSERT INTO sensor_qc_state ({', '.join(names)}) SELECT {nullable} FROM _qc_stage "  # noqa: S608
                f"ON CONFLICT (sensor_id) DO UPDATE SET {update}"
            )
        return
    cols: list[list[Any]] = [ids.tolist()]
    for c in COLUMNS:
        values = getattr(states, c).tolist()
        if c not in FLOAT_COLUMNS and c not in ("q1", "f1"):
            values = [None if x == NO_T else x for x in values]
        cols.append(values)  # NaN is stored as NULL by SQLite
    marks = ", ".join("?" * len(names))
    conn.exec_driver_sql(
        f"INSERT INTO sensor_qc_state ({', '.join(names)}) VALUES ({marks}) "  # noqa: S608
        f"ON CONFLICT (sensor_id) DO UPDATE SET {update}",
        list(zip(*cols, strict=True)),
    )


def _pg_nullable(column: str) -> str:
    """The staged column with its NULL stand-in (NaN, NO_T) turned back into NULL."""
    if column in ("sensor_id", "q1", "f1"):
        return column
    return f"NULLIF({column}, 'NaN')" if column in FLOAT_COLUMNS else f"NULLIF({column}, {NO_T})"


def _latest_times(conn: Connection, ids: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Each sensor's latest stored time (``sensor_latest``), NO_T where it has none."""
    out = np.full(ids.size, NO_T, np.int64)
    for chunk in _chunks(ids):
        rows = _fetch(conn, f"SELECT sensor_id, t_ms FROM sensor_latest WHERE sensor_id IN ({chunk})")  # noqa: S608
        if rows:
            a = np.array(rows, dtype=np.int64)
            out[np.searchsorted(ids, a[:, 0])] = a[:, 1]
    return out


def _history(conn: Connection, ids: npt.NDArray[np.int64], segments: npt.NDArray[np.intp], earliest: int,
             configs: list[QcConfig]) -> Rows:  # fmt: skip
    """Stored rows of the sensors ``ids[segments]`` by sensor and time, reaching the longest history window
    of ``configs`` back from the earliest batch reading."""
    # The flat-line window, and always a few intervals so spike and rate of change see the last readings.
    reach_ms = int(max(max(c.history_seconds, 4 * c.interval_seconds) for c in configs) * 1000)
    rows: list[Any] = []
    for chunk in _chunks(ids[segments]):
        rows += _fetch(
            conn,
            f"SELECT sensor_id, t_ms, value, qc, flag FROM observation WHERE sensor_id IN ({chunk}) "  # noqa: S608
            f"AND t_ms >= {int(earliest) - reach_ms} ORDER BY sensor_id, t_ms",
        )
    if not rows:
        return Rows(np.zeros(0, np.intp), np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int32),
                    np.zeros(0, np.uint8))  # fmt: skip
    sid = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    t_ms = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
    value = np.array([r[2] for r in rows], dtype=np.float64)  # NULL becomes NaN
    qc = np.fromiter((r[3] for r in rows), dtype=np.int32, count=len(rows))
    flag = np.fromiter((r[4] for r in rows), dtype=np.uint8, count=len(rows))
    return Rows(np.searchsorted(ids, sid), t_ms, value, qc, flag)
