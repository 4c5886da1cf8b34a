"""``/api/monitoring``: time series of a sensor, the latest value of every sensor (the map) and rainfall windows."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

import numpy as np
import numpy.typing as npt
import orjson
from fastapi import APIRouter, Query, Response
from sqlalchemy import text

from geowarn.admin.codes import prefix_range
from geowarn.api.deps import Reader, ReadSession
from geowarn.api.routes.monitoring_common import when_ms
from geowarn.api.schemas.monitoring import iso_ms
from geowarn.api.scoping import get_scoped
from geowarn.errors import InvalidInput
from geowarn.monitoring.models import Sensor
from geowarn.monitoring.qc.flags import unpack_flags
from geowarn.monitoring.queries import BUCKETS_MS, CST_OFFSET_MS, RAIN_WINDOWS_H, aggregate, rainfall_windows
from geowarn.monitoring.store import USABLE_MAX_FLAG

router = APIRouter(prefix="/monitoring", tags=["monitoring: data"])

MAX_RAW_POINTS = 100_000
DAY_MS = 86_400_000


def json_response(doc: Any, status_code: int = 200) -> Response:
    return Response(
        orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY), status_code=status_code, media_type="application/json"
    )


def iso_column(t_ms: npt.NDArray[np.int64]) -> list[str]:
    """Epoch ms as ISO 8601 China time, vectorised (the map sends tens of thousands)."""
    local = (t_ms + CST_OFFSET_MS).astype("datetime64[ms]")
    whole = (t_ms % 1000 == 0).all()
    text_col = np.datetime_as_string(local, unit="s" if whole else "ms")
    return [s + "+08:00" for s in text_col.tolist()]


@router.get("/sensors/{sensor_id}/observations")
def observations(
    sensor_id: int,
    session: ReadSession,
    user: Reader,
    start: Annotated[str | None, Query(description="ISO 8601 or epoch ms; default: end − 1 day")] = None,
    end: Annotated[str | None, Query(description="ISO 8601 or epoch ms; default: now")] = None,
    bucket: Literal["raw", "1min", "10min", "1h", "1day"] = "raw",
    max_flag: Annotated[int | None, Query(ge=1, le=9, description="worst QARTOD flag to include")] = None,
) -> Response:
    """Raw readings (time, value, flag and each QC test's flag) or min/max/mean/sum/count/last per bucket."""
    sensor = get_scoped(session, Sensor, sensor_id, user)
    b = when_ms(end, "end") if end else int(time.time() * 1000)
    a = when_ms(start, "start") if start else b - DAY_MS
    if a >= b:
        raise InvalidInput("start must be before end", message_zh="开始时间须早于结束时间")
    conn = session.connection()
    head = {"sensor_id": sensor.id, "code": sensor.code, "unit": sensor.unit, "bucket": bucket,
            "start": iso_ms(a), "end": iso_ms(b)}  # fmt: skip
    if bucket != "raw":
        if (b - a) // BUCKETS_MS[bucket] > MAX_RAW_POINTS:
            raise InvalidInput(f"more than {MAX_RAW_POINTS} buckets", message_zh="时间段内分组过多，请选择更大的分组")
        rows = aggregate(conn, sensor.id, a, b, bucket, max_flag=max_flag or USABLE_MAX_FLAG)
        items = [{"t": iso_ms(r.start_ms), "min": r.min, "max": r.max, "mean": r.mean, "sum": r.sum,
                  "count": r.count, "last": r.last} for r in rows]  # fmt: skip
        return json_response({**head, "items": items})
    raw = conn.execute(
        text(
            "SELECT t_ms, value, flag, qc FROM observation WHERE sensor_id = :s AND t_ms >= :a AND t_ms < :b "
            "AND flag <= :f ORDER BY t_ms LIMIT :n"
        ),
        {"s": sensor.id, "a": a, "b": b, "f": max_flag or 9, "n": MAX_RAW_POINTS + 1},
    ).all()
    if len(raw) > MAX_RAW_POINTS:
        raise InvalidInput(
            f"more than {MAX_RAW_POINTS} readings in the range; shorten it or use a bucket",
            message_zh=f"时间段内读数超过 {MAX_RAW_POINTS} 条，请缩短时间段或按时段汇总",
        )
    t = np.array([r[0] for r in raw], dtype=np.int64)
    tests = unpack_flags(np.array([r[3] for r in raw], dtype=np.int32))
    times = iso_column(t)
    points: list[dict[str, Any]] = [
        {"t": times[i], "value": r[1], "flag": int(r[2]), "qc": {k: int(v[i]) for k, v in tests.items() if v[i]}}
        for i, r in enumerate(raw)
    ]
    return json_response({**head, "items": points})


def _sql(conn: Any, sql: str) -> str:
    return sql if conn.dialect.name == "sqlite" else sql.replace("?", "%s")


@router.get("/latest")
def latest(session: ReadSession, user: Reader) -> Response:
    """Every active sensor in scope with its place and latest reading (null before its first), for the map."""
    conn = session.connection()
    lo, hi = prefix_range(user.unit_code)
    dbapi: Any = conn.connection.dbapi_connection
    cur = dbapi.cursor()  # plain tuples: no per-row Row objects
    try:
        cur.execute(
            _sql(
                conn,
                "SELECT s.id, s.code, s.sensor_type, s.channel, s.unit, d.station_id, s.lon, s.lat, l.t_ms, l.value, "
                "l.flag FROM sensor s JOIN device d ON d.id = s.device_id "
                "LEFT JOIN sensor_latest l ON l.sensor_id = s.id "
                "WHERE s.unit_code >= ? AND s.unit_code < ? AND s.active ORDER BY s.id",
            ),
            (lo, hi),
        )
        rows = cur.fetchall()
    finally:
        cur.close()
    seen = [i for i, r in enumerate(rows) if r[8] is not None]
    times: list[str | None] = [None] * len(rows)
    for i, s in zip(seen, iso_column(np.array([rows[i][8] for i in seen], dtype=np.int64)), strict=True):
        times[i] = s
    keys = ("sensor_id", "code", "type", "channel", "unit", "station_id", "lon", "lat")
    items = [{**dict(zip(keys, r[:8], strict=True)), "t": times[i], "value": r[9], "flag": r[10]}
             for i, r in enumerate(rows)]  # fmt: skip
    return json_response({"count": len(items), "items": items})


@router.get("/rainfall")
def rainfall(
    session: ReadSession,
    user: Reader,
    at: Annotated[str | None, Query(description="ISO 8601 or epoch ms; default: now")] = None,
) -> Response:
    """Rainfall (mm) of every rain gauge in scope over the 1, 3, 6, 12, 24 and 72 hours before ``at``."""
    now = when_ms(at, "at") if at else int(time.time() * 1000)
    conn = session.connection()
    sums = rainfall_windows(conn, now, user.unit_code)
    lo, hi = prefix_range(user.unit_code)
    gauges = conn.execute(
        text(
            "SELECT s.id, s.code, d.device_code, st.id, st.code, st.name, st.site_id, h.code, h.name, s.lon, s.lat "
            "FROM sensor s JOIN device d ON d.id = s.device_id JOIN monitoring_station st ON st.id = d.station_id "
            "LEFT JOIN hazard_site h ON h.id = st.site_id WHERE s.sensor_type = 'RAIN' AND s.channel = 'value' "
            "AND s.active AND s.unit_code >= :lo AND s.unit_code < :hi ORDER BY s.code"
        ),
        {"lo": lo, "hi": hi},
    ).all()
    keys = ("sensor_id", "code", "device_code", "station_id", "station_code", "station_name", "site_id",
            "site_code", "site_name", "lon", "lat")  # fmt: skip
    items = []
    for g in gauges:
        windows = sums.get(int(g[0]))
        items.append(
            {**dict(zip(keys, g, strict=True)),
             "rain_mm": {f"{h}h": (None if windows is None else round(windows[h], 3)) for h in RAIN_WINDOWS_H}}
        )  # fmt: skip
    return json_response({"at": iso_ms(now), "items": items})
