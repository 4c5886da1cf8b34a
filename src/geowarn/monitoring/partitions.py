"""Monthly range partitions of ``observation`` on PostgreSQL, made on demand before writes."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import text

_known: set[tuple[str, str]] = set()
_lock = threading.Lock()


def month_bounds_ms(t_ms: int) -> tuple[int, int, str]:
    """Start and end (epoch ms, UTC) of the calendar month holding ``t_ms``, and its suffix ``YYYY_MM``."""
    d = dt.datetime.fromtimestamp(t_ms / 1000, dt.UTC)
    start = dt.datetime(d.year, d.month, 1, tzinfo=dt.UTC)
    end = dt.datetime(d.year + (d.month == 12), d.month % 12 + 1, 1, tzinfo=dt.UTC)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000), f"{d.year:04d}_{d.month:02d}"


def month_starts(t_ms: npt.NDArray[np.int64]) -> list[int]:
    """The first instant (epoch ms, UTC) of each distinct calendar month among ``t_ms``.

    A batch gets partitions for the months it has readings in, not for every month between its
    oldest and newest reading: one clock-reset reading from 1970 beside today's would otherwise
    make some 680 empty partitions."""
    months = np.unique(np.asarray(t_ms, np.int64).astype("datetime64[ms]").astype("datetime64[M]"))
    return [int(m) for m in months.astype("datetime64[ms]").astype(np.int64)]


def ensure_partitions(conn: Any, t_min_ms: int, t_max_ms: int) -> None:
    """Create the monthly partitions covering [t_min_ms, t_max_ms] that do not exist yet."""
    db_key = str(conn.engine.url)
    t = t_min_ms
    while True:
        start, end, suffix = month_bounds_ms(t)
        with _lock:
            known = (db_key, suffix) in _known
        if not known:
            conn.execute(
                text(
                    f"CREATE TABLE IF NOT EXISTS observation_{suffix} PARTITION OF observation "
                    f"FOR VALUES FROM ({start}) TO ({end})"
                )
            )
            with _lock:
                _known.add((db_key, suffix))
        if end > t_max_ms:
            break
        t = end


def forget_partitions() -> None:
    """Tests that drop and recreate databases call this."""
    with _lock:
        _known.clear()
