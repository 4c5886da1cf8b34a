"""Device health: online rate (在线率) and device-offline events.

Online rate over a period = readings received ÷ readings expected from the reporting interval,
counted per device as distinct report times (a GNSS report of X, Y and Z is one report), capped
at 1 so a chatty device cannot hide a silent one when rates are rolled up to a site, township or
county (the roll-up sums received and expected over devices). Contracts usually ask for ≥ 95–98 %.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import text

from geowarn.admin.codes import prefix_range

DAY_MS = 86_400_000


def online_rate(received: npt.ArrayLike, expected: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Element-wise received ÷ expected, capped at 1; NaN where nothing was expected."""
    r = np.asarray(received, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    out = np.full(r.shape, np.nan)
    ok = e > 0
    out[ok] = np.minimum(r[ok] / e[ok], 1.0)
    return out


def expected_reports(
    start_ms: int, end_ms: int, interval_s: npt.ArrayLike, installed_ms: npt.ArrayLike | None = None
) -> npt.NDArray[np.float64]:
    """Reports a device should have sent in [start, end), from its interval and install time."""
    iv = np.asarray(interval_s, dtype=np.float64) * 1000.0
    begin = np.full(iv.shape, float(start_ms))
    if installed_ms is not None:
        inst = np.asarray(installed_ms, dtype=np.float64)
        begin = np.where(np.isnan(inst), begin, np.maximum(begin, inst))
    span = np.maximum(float(end_ms) - begin, 0.0)
    return np.floor(span / np.where(iv > 0, iv, np.inf))


@dataclass(frozen=True, slots=True)
class DeviceRate:
    device_id: int
    device_code: str
    station_id: int
    site_id: int | None
    unit_code: str
    received: int
    expected: int

    @property
    def rate(self) -> float | None:
        return None if self.expected == 0 else min(self.received / self.expected, 1.0)


def device_online_rates(conn: Any, start_ms: int, end_ms: int, scope_unit: str) -> list[DeviceRate]:
    """Online rate of every device in scope over [start_ms, end_ms)."""
    lo, hi = prefix_range(scope_unit)
    devices = conn.execute(
        text(
            "SELECT d.id, d.device_code, d.station_id, st.site_id, d.unit_code, d.reporting_interval_s, d.installed_at "
            "FROM device d JOIN monitoring_station st ON st.id = d.station_id "
            "WHERE d.unit_code >= :lo AND d.unit_code < :hi AND d.status <> 'retired' AND d.device_type <> 'VIDEO' "
            "ORDER BY d.id"
        ),
        {"lo": lo, "hi": hi},
    ).all()
    if not devices:
        return []
    counts = dict(
        conn.execute(
            text(
                "SELECT s.device_id, COUNT(DISTINCT o.t_ms) FROM observation o JOIN sensor s ON s.id = o.sensor_id "
                "WHERE o.t_ms >= :a AND o.t_ms < :b AND s.unit_code >= :lo AND s.unit_code < :hi "
                "GROUP BY s.device_id"
            ),
            {"a": start_ms, "b": end_ms, "lo": lo, "hi": hi},
        ).all()
    )
    installed = np.array([np.nan if d[6] is None else _to_ms(d[6]) for d in devices], dtype=np.float64)
    expected = expected_reports(start_ms, end_ms, [d[5] for d in devices], installed)
    return [
        DeviceRate(d[0], d[1], d[2], d[3], d[4], int(counts.get(d[0], 0)), int(e))
        for d, e in zip(devices, expected.tolist(), strict=True)
    ]


def _to_ms(value: Any) -> float:
    if isinstance(value, str):  # SQLite returns text through a raw text() query
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return float(value.timestamp() * 1000)


def roll_up(rates: list[DeviceRate], key: str) -> dict[Any, dict[str, float | int | None]]:
    """Sum received and expected (each device capped) per site, station, township or unit."""
    out: dict[Any, dict[str, Any]] = {}
    for r in rates:
        k = {"site": r.site_id, "station": r.station_id, "township": r.unit_code[:9], "unit": r.unit_code}[key]
        acc = out.setdefault(k, {"received": 0, "expected": 0, "devices": 0})
        acc["received"] += min(r.received, r.expected)
        acc["expected"] += r.expected
        acc["devices"] += 1
    for acc in out.values():
        acc["rate"] = None if acc["expected"] == 0 else acc["received"] / acc["expected"]
    return out


def check_offline(conn: Any, now_ms: int, *, missed_intervals: int = 3) -> tuple[list[int], list[int]]:
    """Open an offline event for each device silent for ``missed_intervals`` intervals; close the
    events of devices that have reported since. Returns (opened device ids, closed device ids)."""
    rows = conn.execute(
        text(
            "SELECT d.id, d.unit_code, d.last_seen_ms, d.reporting_interval_s, d.installed_at, "
            "(SELECT min(e.id) FROM device_event e WHERE e.device_id = d.id AND e.kind = 'offline' "
            "AND e.ended_ms IS NULL) FROM device d WHERE d.status = 'active' AND d.device_type <> 'VIDEO'"
        )
    ).all()
    opened: list[int] = []
    closed: list[int] = []
    for dev_id, unit, last_seen, interval_s, installed_at, open_event in rows:
        reference = last_seen if last_seen is not None else (_to_ms(installed_at) if installed_at else None)
        if reference is None:
            continue
        silent = now_ms - reference > missed_intervals * interval_s * 1000
        if silent and open_event is None:
            # another process may open it at the same moment: the unique index keeps one open event
            res = conn.execute(
                text(
                    "INSERT INTO device_event (device_id, kind, started_ms, unit_code, detail) "
                    "VALUES (:d, 'offline', :t, :u, :detail) ON CONFLICT DO NOTHING"
                ),
                {
                    "d": dev_id,
                    "t": int(reference + interval_s * 1000),
                    "u": unit,
                    "detail": f"no report for {missed_intervals} intervals of {interval_s} s",
                },
            )
            if res.rowcount == 1:
                opened.append(dev_id)
        elif not silent and open_event is not None:
            res = conn.execute(
                text(
                    "UPDATE device_event SET ended_ms = :t "
                    "WHERE device_id = :d AND kind = 'offline' AND ended_ms IS NULL"
                ),
                {"t": last_seen, "d": dev_id},
            )
            if res.rowcount:
                closed.append(dev_id)
    return opened, closed
