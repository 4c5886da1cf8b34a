"""Time-axis QC tests: timestamp plausibility, duplicates and order, data-reception gaps.

Times are float seconds since the Unix epoch or numpy ``datetime64`` (any unit); both are accepted and
NaN / NaT mark a missing time. Every test returns one uint8 QARTOD flag per input element. The tests that
compare a reading with earlier ones take ``segments`` (a group id per element; a run of equal ids is one
series) and compare only within a segment, so many series can be checked in one call.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from geowarn.errors import InvalidInput
from geowarn.monitoring.qc._segments import limit, running_max_in_runs, segment_runs, starts_of, take
from geowarn.monitoring.qc.flags import FlagArray, QcFlag, full

TimeLike = npt.ArrayLike
FloatArray = npt.NDArray[np.float64]


def as_epoch_seconds(times: TimeLike) -> FloatArray:
    """Float seconds since 1970-01-01T00:00Z; ``datetime64`` is converted (NaT becomes NaN)."""
    t = np.asarray(times)
    if t.ndim != 1:
        t = t.reshape(-1)
    if t.dtype.kind == "M":
        ns = t.astype("datetime64[ns]")
        out = ns.astype(np.int64).astype(np.float64) / 1e9
        out[np.isnat(ns)] = np.nan
        return out
    if t.dtype.kind == "O" and t.size and isinstance(t.flat[0], datetime):
        return as_epoch_seconds(t.astype("datetime64[ns]"))
    try:
        return t.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"times must be numbers or datetime64, not {t.dtype}", message_zh="时间格式无效") from exc


def as_epoch_scalar(value: float | np.datetime64 | datetime) -> float:
    """One instant as float epoch seconds (see :func:`as_epoch_seconds`)."""
    if isinstance(value, datetime):
        return value.timestamp()
    return float(as_epoch_seconds(np.array([value]))[0])


def timestamp_test(
    times: TimeLike,
    *,
    now: float | np.datetime64 | datetime,
    max_future_seconds: npt.ArrayLike,
    not_before: float | np.datetime64 | datetime | npt.NDArray[Any] | None = None,
) -> FlagArray:
    """FAIL a reading stamped in the future, before the sensor was installed, or without a time.

    Follows the spirit of the QARTOD "timing/gap test" and ioos_qc's ``impossible_date_test``: a time later
    than ``now + max_future_seconds`` (device clocks drift, so a little slack is allowed) or earlier than
    ``not_before`` (the installation time) cannot be right. Exactly at either bound is GOOD.
    A missing time (NaN/NaT) is FAIL: the reading cannot be placed on the time axis.
    ``max_future_seconds`` may be one value per element, and ``not_before`` an array with one time per
    element in which NaN / NaT means "not known".
    """
    t = as_epoch_seconds(times)
    latest = as_epoch_scalar(now) + limit(max_future_seconds, t.size, "max_future_seconds")
    flags = full(t.size, QcFlag.GOOD)
    bad = ~np.isfinite(t)
    with np.errstate(invalid="ignore"):
        bad |= t > latest
        if isinstance(not_before, np.ndarray):
            nb = as_epoch_seconds(not_before)
            bad |= t < (limit(nb, t.size, "not_before") if not_before.ndim else nb[0])
        elif not_before is not None:
            bad |= t < as_epoch_scalar(not_before)
    flags[bad] = QcFlag.FAIL
    return flags


def duplicate_and_order_test(
    times: TimeLike, *, ignore: npt.ArrayLike | None = None, segments: npt.ArrayLike | None = None
) -> FlagArray:
    """FAIL a repeated timestamp, SUSPECT a timestamp earlier than one already received.

    Times are taken in array (arrival) order. A time equal to any earlier time is a duplicate: the first
    occurrence is GOOD, later ones FAIL (a re-sent packet). A time earlier than the latest time before it
    is out of order: SUSPECT (a late, buffered upload is plausible but must be looked at). Points marked in
    ``ignore`` (e.g. already failed by :func:`timestamp_test`) and missing times are NOT_EVALUATED and take no
    part in the comparison. With ``segments``, "earlier" means earlier in the same segment.
    Not a QARTOD test; QARTOD assumes a clean, ordered time axis.
    """
    t = as_epoch_seconds(times)
    runs = segment_runs(segments, t.size)
    flags = full(t.size, QcFlag.NOT_EVALUATED)
    considered = np.isfinite(t)
    if ignore is not None:
        considered &= ~np.asarray(ignore, dtype=bool)
    idx = np.flatnonzero(considered)
    if idx.size == 0:
        return flags
    tc = t[idx]
    rc = None if runs is None else runs[idx]
    first = starts_of(rc, idx.size)
    sub = full(tc.size, QcFlag.GOOD)
    previous_max = np.empty_like(tc)
    previous_max[1:] = running_max_in_runs(tc, first)[:-1]
    previous_max[first] = -np.inf
    sub[tc < previous_max] = QcFlag.SUSPECT
    # A stable sort by (segment, time) puts repeats right after their first occurrence.
    order = np.argsort(tc, kind="stable") if rc is None else np.lexsort((tc, rc))
    ts = tc[order]
    repeat = ts[1:] == ts[:-1]
    if rc is not None:
        rs = rc[order]
        repeat &= rs[1:] == rs[:-1]
    sub[order[1:][repeat]] = QcFlag.FAIL
    flags[idx] = sub
    return flags


def time_gap_test(
    times: TimeLike, *, max_gap_seconds: npt.ArrayLike, segments: npt.ArrayLike | None = None
) -> FlagArray:
    """SUSPECT a reading that follows a data-reception gap longer than ``max_gap_seconds``.

    After the QARTOD "timing/gap test" (test 1 of the T&S manual v2.1), which checks that data arrive when
    expected. The gap is measured from the previous reading with a valid time, in array order; a gap exactly
    equal to the limit is GOOD. The first reading (nothing before it) and readings without a time are
    NOT_EVALUATED. Deviation: QARTOD and ioos_qc flag FAIL; a gap says nothing wrong about the value that
    ends it, so we flag SUSPECT. A negative step (out of order) is left to :func:`duplicate_and_order_test`.
    With ``segments``, the first reading of each segment is NOT_EVALUATED.
    """
    t = as_epoch_seconds(times)
    max_gap = limit(max_gap_seconds, t.size, "max_gap_seconds")
    runs = segment_runs(segments, t.size)
    flags = full(t.size, QcFlag.NOT_EVALUATED)
    idx = np.flatnonzero(np.isfinite(t))
    if idx.size == 0:
        return flags
    gaps = np.diff(t[idx])
    sub = full(idx.size, QcFlag.GOOD)
    sub[1:][gaps > take(max_gap, idx[1:])] = QcFlag.SUSPECT
    sub[starts_of(None if runs is None else runs[idx], idx.size)] = QcFlag.NOT_EVALUATED
    flags[idx] = sub
    return flags
