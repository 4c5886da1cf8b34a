"""Value QC tests after QARTOD: gross range, spike, rate of change and flat line.

Reference: U.S. IOOS, "Manual for Real-Time Quality Control of In-situ Temperature and Salinity Data",
version 2.1 (2020), tests 6 (gross range), 9 (spike), 10 (rate of change) and 11 (flat line); the same
tests appear in the QARTOD manuals for water level, currents and waves. Each function is pure and
vectorised, takes 1-D arrays and returns one uint8 QARTOD flag per element.

Missing values (NaN) are flagged MISSING. They do not break the evaluation of their neighbours: the
spike, rate-of-change and flat-line tests look at the previous / next *valid* reading, as the QARTOD
manuals prescribe when a value is missing ("the most recent valid observation"). ioos_qc instead flags the
neighbours of a NaN NOT_EVALUATED (spike) or GOOD (rate of change); see bench/bench_qc.py.
Infinite values are not readings either: gross range FAILs them, the other tests skip them.

Many series at once: the tests that look at neighbours take ``segments`` (a group id per element; a run of
equal ids is one series) and never compare across a boundary, and every limit may be one number or one
value per element, so sensors with different configs share one call (see ``run_many``).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from geowarn.errors import InvalidInput
from geowarn.monitoring.qc._segments import limit, running_max_in_runs, segment_runs, starts_of, take
from geowarn.monitoring.qc.flags import FlagArray, QcFlag, full
from geowarn.monitoring.qc.timing import TimeLike, as_epoch_seconds

FloatArray = npt.NDArray[np.float64]


def _values(values: npt.ArrayLike) -> FloatArray:
    v = np.asarray(values, dtype=np.float64)
    return v.reshape(-1) if v.ndim != 1 else v


def _with_missing(flags: FlagArray, v: FloatArray) -> FlagArray:
    flags[np.isnan(v)] = QcFlag.MISSING
    return flags


def gross_range_test(
    values: npt.ArrayLike,
    *,
    fail_span: tuple[npt.ArrayLike, npt.ArrayLike],
    suspect_span: tuple[npt.ArrayLike, npt.ArrayLike] | None = None,
) -> FlagArray:
    """FAIL outside the sensor span, SUSPECT outside the operator span (QARTOD T&S v2.1, test 6).

    A value equal to a bound is inside (GOOD), as in the manual and ioos_qc. ``suspect_span`` must lie
    within ``fail_span``. Each bound is a number or one value per element.
    """
    v = _values(values)
    lo, hi = _span(fail_span, v.size)
    flags = full(v.size, QcFlag.GOOD)
    with np.errstate(invalid="ignore"):
        if suspect_span is not None:
            slo, shi = _span(suspect_span, v.size)
            if np.any(np.less(slo, lo)) or np.any(np.greater(shi, hi)):
                raise InvalidInput(
                    f"suspect span {suspect_span} must lie within fail span {fail_span}",
                    message_zh="可疑范围必须位于失败范围之内",
                )
            flags[(v < slo) | (v > shi)] = QcFlag.SUSPECT
        flags[(v < lo) | (v > hi)] = QcFlag.FAIL
    return _with_missing(flags, v)


def _span(span: tuple[npt.ArrayLike, npt.ArrayLike], n: int) -> tuple[float | FloatArray, float | FloatArray]:
    a, b = limit(span[0], n, "span"), limit(span[1], n, "span")
    if isinstance(a, float) and isinstance(b, float):
        return min(a, b), max(a, b)
    return np.minimum(a, b), np.maximum(a, b)


def spike_test(
    values: npt.ArrayLike,
    *,
    suspect_threshold: npt.ArrayLike,
    fail_threshold: npt.ArrayLike,
    segments: npt.ArrayLike | None = None,
) -> FlagArray:
    """QARTOD spike test (T&S v2.1, test 9): ``|v_i - (v_prev + v_next)/2|`` against two thresholds.

    ``v_prev`` and ``v_next`` are the nearest valid readings on either side, so a NaN between does not
    hide a spike. SUSPECT when the deviation exceeds ``suspect_threshold``, FAIL when it exceeds
    ``fail_threshold``; exactly at a threshold is not beyond it. The first and last valid readings have no
    neighbour on one side and are NOT_EVALUATED (in streaming use the last one is settled when the next
    reading arrives; see :func:`geowarn.monitoring.qc.run.run_qc`). With ``segments``, the first and last
    valid readings of every segment are NOT_EVALUATED and neighbours are taken within the segment only.
    """
    v = _values(values)
    suspect = limit(suspect_threshold, v.size, "suspect_threshold")
    fail = limit(fail_threshold, v.size, "fail_threshold")
    if np.any(np.less(fail, suspect)):
        raise InvalidInput("spike fail threshold is below the suspect threshold", message_zh="尖峰失败阈值小于可疑阈值")
    runs = segment_runs(segments, v.size)
    flags = full(v.size, QcFlag.NOT_EVALUATED)
    idx = np.flatnonzero(np.isfinite(v))
    if idx.size >= 3:
        x = v[idx]
        deviation = np.abs(x[1:-1] - (x[:-2] + x[2:]) / 2.0)
        inner = full(deviation.size, QcFlag.GOOD)
        centre = idx[1:-1]
        inner[deviation > take(suspect, centre)] = QcFlag.SUSPECT
        inner[deviation > take(fail, centre)] = QcFlag.FAIL
        if runs is not None:
            r = runs[idx]
            one_series = (r[:-2] == r[1:-1]) & (r[1:-1] == r[2:])
            centre, inner = centre[one_series], inner[one_series]
        flags[centre] = inner
    return _with_missing(flags, v)


def rate_of_change_test(
    times: TimeLike,
    values: npt.ArrayLike,
    *,
    threshold_per_s: npt.ArrayLike,
    segments: npt.ArrayLike | None = None,
) -> FlagArray:
    """QARTOD rate-of-change test (T&S v2.1, test 10): SUSPECT when ``|dv/dt|`` exceeds a rate.

    The rate is taken over the previous valid reading (valid value and valid time), so irregular sampling
    is honoured: the same jump is a lower rate after a longer interval. Exactly at the threshold is GOOD.
    Deviations: the manual compares with a multiple of a running standard deviation, ioos_qc (and we) with
    a fixed rate in units per second; the first valid reading, and a reading whose time does not follow
    the previous one (duplicate or out of order), are NOT_EVALUATED (ioos_qc flags the first GOOD).
    With ``segments``, the previous reading is taken within the segment; each segment's first valid
    reading is NOT_EVALUATED.
    """
    v = _values(values)
    t = as_epoch_seconds(times)
    if t.size != v.size:
        raise InvalidInput("times and values differ in length", message_zh="时间与数值的个数不一致")
    threshold = limit(threshold_per_s, v.size, "threshold_per_s")
    runs = segment_runs(segments, v.size)
    flags = full(v.size, QcFlag.NOT_EVALUATED)
    ok = np.isfinite(v) & np.isfinite(t)
    every = bool(ok.all())  # the common case: no copies through an index
    ok_idx = slice(None) if every else np.flatnonzero(ok)
    x, tx = v[ok_idx], t[ok_idx]
    if x.size >= 2:
        dt = np.diff(tx)
        forward = dt > 0
        rate = np.abs(np.diff(x))
        np.divide(rate, dt, out=rate, where=forward)
        sub = np.where(forward, np.uint8(QcFlag.GOOD), np.uint8(QcFlag.NOT_EVALUATED))
        later = take(threshold, ok_idx)
        sub[forward & (rate > (later if isinstance(later, float) else later[1:]))] = QcFlag.SUSPECT
        if runs is not None:
            r = runs[ok_idx]
            sub[r[1:] != r[:-1]] = QcFlag.NOT_EVALUATED
        if every:
            flags[1:] = sub
        else:
            flags[ok_idx[1:]] = sub  # type: ignore[index]
    return _with_missing(flags, v)


def _running_range_in_runs(x: FloatArray, starts: npt.NDArray[np.bool_]) -> FloatArray:
    """``max - min`` of ``x`` from the start of each element's run up to the element (``starts`` marks runs).

    Exact (no shifting or rescaling), so a series gives the same result alone or among other segments.
    """
    return running_max_in_runs(x, starts) + running_max_in_runs(-x, starts)


def _run_start_index(starts: npt.NDArray[np.bool_]) -> npt.NDArray[np.intp]:
    """For each element, the index of the first element of its run (``starts`` marks run beginnings)."""
    positions = np.where(starts, np.arange(starts.size), 0)
    return np.maximum.accumulate(positions)


def flat_line_test(
    times: TimeLike,
    values: npt.ArrayLike,
    *,
    suspect_seconds: npt.ArrayLike,
    fail_seconds: npt.ArrayLike,
    tolerance: npt.ArrayLike,
    exempt_values: npt.ArrayLike = (),
    segments: npt.ArrayLike | None = None,
) -> FlagArray:
    """QARTOD flat-line test (T&S v2.1, test 11): a stuck sensor repeats one value.

    A reading is flat for the time since the start of its flat run; SUSPECT when that is at least
    ``suspect_seconds``, FAIL when at least ``fail_seconds`` (exactly at the limit counts). A flat run is a
    stretch of consecutive valid readings in which every step is below ``tolerance`` and the values so far
    span less than ``tolerance`` (max - min, as in ioos_qc); a run of exactly repeated values is always
    flat, so ``tolerance=0`` detects exact repeats. The first readings of a run are GOOD until it has
    lasted long enough. Readings within ``tolerance`` of an ``exempt_values`` entry are never flagged: a
    rain gauge legitimately reports zero for days. ``exempt_values`` is a list for all elements, or a 2-D
    array with one row per element (NaN pads a shorter row). With ``segments``, every segment starts a
    new run.

    Deviations: the manual counts repeated observations (REP_CNT) and ioos_qc converts seconds to a count
    with the median interval and compares a rolling window at every point (O(n x window)); we measure
    duration on the time axis (irregular sampling honoured) with run lengths in O(n). A run that drifts by
    sub-tolerance steps beyond ``tolerance`` stops counting as flat until a step of at least ``tolerance``
    or an exact repeat restarts it; a real stuck sensor repeats its value, which is always caught.
    """
    v = _values(values)
    t = as_epoch_seconds(times)
    if t.size != v.size:
        raise InvalidInput("times and values differ in length", message_zh="时间与数值的个数不一致")
    suspect = limit(suspect_seconds, v.size, "suspect_seconds")
    fail = limit(fail_seconds, v.size, "fail_seconds")
    if np.any(np.less(fail, suspect)):
        raise InvalidInput("flat-line fail time is below the suspect time", message_zh="平直线失败时长小于可疑时长")
    tol = limit(tolerance, v.size, "tolerance")
    exempt = np.asarray(exempt_values, dtype=np.float64)
    if exempt.ndim == 2 and exempt.shape[0] != v.size:
        raise InvalidInput("exempt_values needs one row per element", message_zh="豁免值的行数与数据个数不一致")
    runs = segment_runs(segments, v.size)
    flags = full(v.size, QcFlag.NOT_EVALUATED)
    idx = np.flatnonzero(np.isfinite(v) & np.isfinite(t))
    if idx.size == 0:
        return _with_missing(flags, v)
    x, tx, tol_x = v[idx], t[idx], take(tol, idx)
    new_series = starts_of(None if runs is None else runs[idx], idx.size)
    step = np.abs(np.diff(x))
    near = new_series.copy()
    near[1:] |= ~(step < (tol_x if isinstance(tol_x, float) else tol_x[1:]))
    near_start = _run_start_index(near)
    within = _running_range_in_runs(x, near) < tol_x
    duration = np.where(within, tx - tx[near_start], -np.inf)
    exact = new_series
    exact[1:] |= step != 0
    duration = np.maximum(duration, tx - tx[_run_start_index(exact)])
    sub = full(x.size, QcFlag.GOOD)
    sub[duration >= take(suspect, idx)] = QcFlag.SUSPECT
    sub[duration >= take(fail, idx)] = QcFlag.FAIL
    if exempt.ndim == 2:
        rows = exempt[idx]
        tol_col = tol_x if isinstance(tol_x, float) else tol_x[:, None]
        sub[((np.abs(x[:, None] - rows) < tol_col) | (x[:, None] == rows)).any(axis=1)] = QcFlag.GOOD
    else:
        for value in exempt.reshape(-1).tolist():
            sub[(np.abs(x - value) < tol_x) | (x == value)] = QcFlag.GOOD
    flags[idx] = sub
    return _with_missing(flags, v)
