"""Quality control on the ingestion path: each sensor's new readings are checked against its stored
history (``geowarn.monitoring.qc``), and flags of stored readings that the new ones settle are revised.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import text

from geowarn.monitoring.qc import qc_config_for
from geowarn.monitoring.qc.config import QcConfig
from geowarn.monitoring.qc.flags import FlagArray
from geowarn.monitoring.qc.many import QcHistories, apply_revisions_many, run_qc_many
from geowarn.monitoring.store import HOUR_MS, USABLE_MAX_FLAG, ObservationBatch


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


def assess(
    conn: Any, batch: ObservationBatch, meta: dict[int, tuple[Any, Any]], *, now_ms: int
) -> set[tuple[int, int]]:
    """Fill ``batch.flag`` and ``batch.qc`` in place; revise stored flags that the batch settles.

    ``meta`` maps sensor id to (SensorInfo, DeviceInfo). Returns the (sensor, hour) pairs whose
    hourly roll-up must be rebuilt because a stored reading moved in or out of the usable flags.
    All sensors of the batch are checked in one :func:`run_qc_many` pass, each against its own stored
    history (one query) and config, exactly as :func:`run_qc` would check them one by one.
    """
    if len(batch) == 0:
        return set()
    order = np.lexsort((batch.t_ms, batch.sensor_id))
    sensors = batch.sensor_id[order]
    first = np.r_[True, sensors[1:] != sensors[:-1]]
    ids = sensors[first]  # sorted: np.searchsorted maps a stored row's sensor to its segment
    segment = np.cumsum(first) - 1
    slot: dict[int, int] = {}  # distinct configs by identity (config_of caches them): id -> index
    distinct: list[QcConfig] = []
    config_index = np.empty(ids.size, dtype=np.intp)
    installed = np.full(ids.size, np.nan)  # NaN: installation time not known
    for k, sid in enumerate(ids.tolist()):
        sensor, device = meta[sid]
        cfg = config_of(sensor, device.interval_s)
        if id(cfg) not in slot:
            slot[id(cfg)] = len(distinct)
            distinct.append(cfg)
        config_index[k] = slot[id(cfg)]
        if device.installed_ms is not None:
            installed[k] = device.installed_ms / 1000.0
    h_sid, h_t, h_v, h_q, h_f = _history(conn, batch, distinct, ids)
    result = run_qc_many(
        batch.t_ms[order] / 1000.0,
        batch.value[order],
        segment,
        distinct,
        config_index,
        now=now_ms / 1000.0,
        installed_at=installed,
        histories=QcHistories(h_t / 1000.0, h_v, np.searchsorted(ids, h_sid), h_q),
    )
    batch.flag[order] = result.aggregate
    batch.qc[order] = result.packed
    if not result.revisions:
        return set()
    packed, agg = apply_revisions_many(h_q, h_f, result.revisions)
    rows = np.unique(np.concatenate([r for r, _ in result.revisions.values()]))
    rows = rows[(packed[rows] != h_q[rows]) | (agg[rows] != h_f[rows])]  # a settled flag may not change
    if rows.size:
        _store_revised(conn, h_sid[rows], h_t[rows], packed[rows], agg[rows])
    moved = rows[(h_f[rows] <= USABLE_MAX_FLAG) != (agg[rows] <= USABLE_MAX_FLAG)]
    hours = h_t[moved] - h_t[moved] % HOUR_MS
    return set(zip(h_sid[moved].tolist(), hours.tolist(), strict=True))


def _store_revised(
    conn: Any,
    sensor_id: npt.NDArray[np.int64],
    t_ms: npt.NDArray[np.int64],
    qc: npt.NDArray[np.int32],
    flag: FlagArray,
) -> None:
    """Write revised flags of stored readings; on PostgreSQL in one statement over arrays (an executemany
    of thousands of single-row UPDATEs costs ~0.1 s there)."""
    columns = (sensor_id.tolist(), t_ms.tolist(), qc.tolist(), flag.tolist())
    if conn.dialect.name == "postgresql":
        conn.execute(
            text(
                "UPDATE observation AS o SET qc = r.q, flag = r.f FROM unnest(CAST(:s AS int4[]), "
                "CAST(:t AS int8[]), CAST(:q AS int4[]), CAST(:f AS int2[])) AS r(s, t, q, f) "
                "WHERE o.sensor_id = r.s AND o.t_ms = r.t"
            ),
            dict(zip("stqf", columns, strict=True)),
        )
        return
    conn.execute(
        text("UPDATE observation SET qc = :q, flag = :f WHERE sensor_id = :s AND t_ms = :t"),
        [{"s": s, "t": t, "q": q, "f": f} for s, t, q, f in zip(*columns, strict=True)],
    )


def _history(
    conn: Any, batch: ObservationBatch, configs: list[QcConfig], ids: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.int32], FlagArray]:
    """Stored (sensor_id, t_ms, value, qc, flag) rows of the ``ids`` sensors, by sensor and time, reaching
    the longest history window of ``configs`` back from the batch's earliest reading."""
    # The flat-line window, and always a few intervals so spike and rate of change see the last readings.
    reach_ms = int(max(max(c.history_seconds, 4 * c.interval_seconds) for c in configs) * 1000)
    since = int(batch.t_ms.min()) - reach_ms
    id_list = ids.tolist()
    rows: list[Any] = []
    for i in range(0, len(id_list), 500):
        chunk = ",".join(str(int(x)) for x in id_list[i : i + 500])
        rows += conn.execute(
            text(
                f"SELECT sensor_id, t_ms, value, qc, flag FROM observation WHERE sensor_id IN ({chunk}) "  # noqa: S608
                "AND t_ms >= :since ORDER BY sensor_id, t_ms"
            ),
            {"since": since},
        ).all()
    if not rows:
        return (
            np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int32), np.zeros(0, np.uint8)
        )  # fmt: skip
    sid = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    t_ms = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
    value = np.array([r[2] for r in rows], dtype=np.float64)  # NULL becomes NaN
    qc = np.fromiter((r[3] for r in rows), dtype=np.int32, count=len(rows))
    flag = np.fromiter((r[4] for r in rows), dtype=np.uint8, count=len(rows))
    return sid, t_ms, value, qc, flag
