"""Rainfall at a site: increments, trailing accumulations, event rainfall, effective rainfall, I–D.

Series are numpy arrays of epoch-ms times (sorted) and values; every function evaluates at an array
of times at once, so persistence ("3 of the last 5") and batch re-evaluation cost one call.

* Accumulations over (t − w, t] by prefix sums and binary search (O(n + m log n)).
* Cumulative counters (a gauge's ``totalValue``) become increments; a drop means the counter was
  reset (power loss, rollover), and the reading after a reset counts in full (rain since the reset).
* Event rainfall: rain since the start of the current rain event, where an event ends after a dry
  spell of ``dry_gap_h`` hours (6 h by default, the inter-event time used in Chinese
  rainfall-induced landslide studies and by Guzzetti et al. 2007 for I–D thresholds).
* Effective (antecedent) rainfall: R_e = R_0 + Σ_{i≥1} k^i · R_i over daily totals, k ≈ 0.8
  (DOMAIN.md; Fujian uses 3 days with k = 0.79; Crozier 1986).
* Intensity–duration threshold: I = a · D^−b (Caine 1980; Guzzetti et al. 2008); the ratio of the
  event's mean intensity to the threshold at its duration, >= 1 meaning "above the threshold".
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


def increments_from_cumulative(total: npt.ArrayLike) -> Floats:
    """Rain between readings from a cumulative counter; a drop is a reset (the new value counts)."""
    v = np.asarray(total, np.float64)
    if v.size == 0:
        return v.copy()
    out = np.empty_like(v)
    out[0] = 0.0
    d = np.diff(v)
    out[1:] = np.where(d >= 0, d, v[1:])
    out[~np.isfinite(out)] = 0.0
    return out


def prefix_sums(inc: npt.ArrayLike) -> Floats:
    """0 followed by the running total of ``inc`` (NaN and ±inf count as 0): reuse it across windows."""
    x = np.nan_to_num(np.asarray(inc, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    return np.concatenate([[0.0], np.cumsum(x)])


def window_sums(
    t_ms: npt.ArrayLike, inc: npt.ArrayLike, at_ms: npt.ArrayLike, window_ms: int, *, csum: Floats | None = None
) -> Floats:
    """Sum of ``inc`` with time in (at − window, at] for each ``at`` (NaN increments count as 0).
    ``csum`` is ``prefix_sums(inc)`` when the caller already has it."""
    t = np.asarray(t_ms, np.int64)
    at = np.asarray(at_ms, np.int64)
    if csum is None:
        csum = prefix_sums(inc)
    hi = np.searchsorted(t, at, side="right")
    lo = np.searchsorted(t, at - window_ms, side="right")
    return np.asarray(csum[hi] - csum[lo], np.float64)


def accumulations(
    t_ms: npt.ArrayLike, inc: npt.ArrayLike, at_ms: npt.ArrayLike, hours: tuple[int, ...] = (1, 3, 6, 12, 24, 72)
) -> dict[int, Floats]:
    """Trailing accumulations (mm) for each window in ``hours``."""
    return {h: window_sums(t_ms, inc, at_ms, h * HOUR_MS) for h in hours}


def event_rainfall(
    t_ms: npt.ArrayLike, inc: npt.ArrayLike, at_ms: npt.ArrayLike, *, dry_gap_h: float = 6.0
) -> tuple[Floats, Floats]:
    """Rain (mm) and duration (h) of the event in progress at each time (0, 0 when it is dry).

    An event starts with the first rain after a dry spell of at least ``dry_gap_h`` and lasts while
    rain keeps coming within that gap; its duration runs from its first rainy reading to ``at``.
    """
    t = np.asarray(t_ms, np.int64)
    x = np.nan_to_num(np.asarray(inc, np.float64), nan=0.0)
    at = np.asarray(at_ms, np.int64)
    gap = int(dry_gap_h * HOUR_MS)
    wet = np.flatnonzero(x > 0)
    if wet.size == 0:
        return np.zeros(at.shape), np.zeros(at.shape)
    tw = t[wet]
    # event id of each wet reading: a new event when the gap since the previous wet reading >= gap
    new = np.concatenate([[True], np.diff(tw) >= gap])
    event_start_t = tw[np.maximum.accumulate(np.where(new, np.arange(tw.size), 0))]
    last_wet = np.searchsorted(tw, at, side="right") - 1  # the last wet reading at or before at
    csum = np.concatenate([[0.0], np.cumsum(x)])
    mm = np.zeros(at.shape)
    hours = np.zeros(at.shape)
    ok = (last_wet >= 0) & (at - tw[np.maximum(last_wet, 0)] < gap)
    if ok.any():
        idx = last_wet[ok]
        start_t = event_start_t[idx]
        lo = np.searchsorted(t, start_t, side="left")
        hi = np.searchsorted(t, at[ok], side="right")
        mm[ok] = csum[hi] - csum[lo]
        # a single reading's rain fell during its interval: count at least that interval
        hours[ok] = np.maximum((at[ok] - start_t) / HOUR_MS, 1.0)
    return mm, hours


def daily_totals(t_ms: npt.ArrayLike, inc: npt.ArrayLike, at_ms: npt.ArrayLike, days: int) -> Floats:
    """Rain of the 24-hour periods ending at ``at`` (column 0), ``at − 1 day`` (column 1) … (m × days)."""
    at = np.asarray(at_ms, np.int64)
    csum = prefix_sums(inc)
    cols = [window_sums(t_ms, inc, at - i * DAY_MS, DAY_MS, csum=csum) for i in range(days)]
    return np.stack(cols, axis=-1) if cols else np.zeros((*at.shape, 0))


def effective_rainfall(daily: npt.ArrayLike, k: float = 0.8) -> Floats:
    """R_0 + Σ_{i≥1} k^i · R_i over the last axis (column 0 is today)."""
    d = np.asarray(daily, np.float64)
    # term by term, not ``d @ k**i``: a matrix product may sum in an order that depends on the shape,
    # and a site must get the same value whether it is evaluated alone or with others
    out = np.zeros(d.shape[:-1], np.float64)
    for i in range(d.shape[-1]):
        out = out + (k**i) * d[..., i]
    return out


def id_ratio(event_mm: npt.ArrayLike, duration_h: npt.ArrayLike, a: float, b: float) -> Floats:
    """Mean intensity over the I–D threshold a·D^−b at the event's duration (0 when there is no event)."""
    mm = np.asarray(event_mm, np.float64)
    d = np.asarray(duration_h, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        intensity = np.where(d > 0, mm / d, 0.0)
        threshold = a * np.power(np.where(d > 0, d, 1.0), -b)
        return np.asarray(np.where(d > 0, intensity / threshold, 0.0), np.float64)


def window_sums_regular(x: npt.ArrayLike, steps: int) -> Floats:
    """Trailing sums over ``steps`` samples along the last axis of a regular 2-D series (sites × time)."""
    a = np.nan_to_num(np.asarray(x, np.float64), nan=0.0)
    c = np.cumsum(a, axis=-1)
    out = c.copy()
    out[..., steps:] = c[..., steps:] - c[..., :-steps]
    return out
