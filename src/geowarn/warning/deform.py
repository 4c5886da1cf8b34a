"""Deformation methods: smoothed rate, improved tangent angle, rate baseline, inverse velocity.

* Rate: the least-squares slope of displacement over a trailing window at every reading (prefix
  sums, O(n)), robust to irregular sampling and single noisy readings; mm/day.
* Improved tangent angle (许强 Xu Qiang et al. 2008/2009, "改进的切线角"): T(t) = S(t)/v_eq so that
  both axes are time; α = arctan(v / v_eq). α ≈ 45° constant velocity (注意, blue, when the slope
  creeps faster than a set minimum); 45° < α < 80° initial acceleration (警示, yellow);
  80° ≤ α < 85° medium acceleration (警戒, orange); α ≥ 85° imminent failure (警报, red).
* Rate baseline: V0 = 1.5·mean + 2·σ of the rate over a quiet window; yellow ≥ V0, orange ≥ 5·V0,
  red ≥ 10·V0 (DOMAIN.md).
* Inverse velocity (Fukuzono 1985; Voight 1988 with α = 2): in tertiary creep 1/v falls linearly;
  fit 1/v = m·t + b over the accelerating stage, failure time t_f = −b/m, with R² and the fit window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from geowarn.warning.levels import Level

DAY_MS = 86_400_000
Floats = npt.NDArray[np.float64]

ANGLE_BANDS = ((85.0, Level.RED), (80.0, Level.ORANGE), (45.0, Level.YELLOW))


def trailing_rate(t_ms: npt.ArrayLike, s: npt.ArrayLike, window_ms: int, *, min_points: int = 3) -> Floats:
    """Slope (units per day) of ``s`` against time over (t − window, t] at each reading; NaN if too few points."""
    t = np.asarray(t_ms, np.int64)
    y = np.asarray(s, np.float64)
    ok = np.isfinite(y)
    t, y = t[ok], y[ok]
    out_full = np.full(ok.shape, np.nan)
    if t.size == 0:
        return out_full
    x = (t - t[0]) / DAY_MS  # days, small numbers for stable sums
    c1 = np.concatenate([[0.0], np.cumsum(x)])
    c2 = np.concatenate([[0.0], np.cumsum(x * x)])
    cy = np.concatenate([[0.0], np.cumsum(y)])
    cxy = np.concatenate([[0.0], np.cumsum(x * y)])
    hi = np.arange(1, t.size + 1)
    lo = np.searchsorted(t, t - window_ms, side="right")
    n = hi - lo
    sx, sxx, sy, sxy = c1[hi] - c1[lo], c2[hi] - c2[lo], cy[hi] - cy[lo], cxy[hi] - cxy[lo]
    den = n * sxx - sx * sx
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where((n >= min_points) & (den > 1e-12), (n * sxy - sx * sy) / den, np.nan)
    out_full[ok] = slope
    return out_full


def endpoint_rate(
    t_ms: npt.ArrayLike, s: npt.ArrayLike, window_ms: int, *, since_ms: int | None = None, min_points: int = 4
) -> Floats:
    """Rate (units per day) at each reading from a quadratic fitted over the trailing window.

    The slope of a straight line over a trailing window describes the middle of the window, so on
    an accelerating slope it lags by about half the window; the derivative of a local quadratic at
    the window's end does not (Savitzky–Golay smoothing for irregular sampling). Computed for the
    readings after ``since_ms`` only (NaN before).

    O(n): the normal equations of every window come from prefix sums of ``u^k`` (k ≤ 4) and
    ``y·u^k`` (k ≤ 2). So that these sums stay small and exact enough, the readings are taken in
    chunks one window long, each with its own origin ``u = 0`` (so ``|u| ≤`` two windows), and each
    window's sums are moved to its end point with the binomial theorem before solving.
    """
    t = np.asarray(t_ms, np.int64)
    y = np.asarray(s, np.float64)
    out = np.full(t.shape, np.nan)
    first = 0 if since_ms is None else int(np.searchsorted(t, since_ms, side="right"))
    if t.size - first <= 0:
        return out
    finite = np.isfinite(y)
    w = finite.astype(np.float64)
    yv = np.where(finite, y, 0.0)
    x = (t - t[first]) / DAY_MS
    ends = np.arange(first, t.size)
    starts = np.searchsorted(t, t[ends] - window_ms, side="right")
    span = max(window_ms / DAY_MS, 1e-9)
    chunk_stop = np.searchsorted(x[ends], x[ends] + span, side="right")
    i = 0
    while i < ends.size:
        j = max(int(chunk_stop[i]), i + 1)
        out[ends[i:j]] = _chunk_rates(x, yv, w, ends[i:j], starts[i:j], min_points)
        i = j
    return out


def _chunk_rates(
    x: Floats, yv: Floats, w: Floats, ends: npt.NDArray[np.int64], starts: npt.NDArray[np.int64], min_points: int
) -> Floats:
    """End-point rates of the windows ``[starts[k], ends[k]]`` (see :func:`endpoint_rate`)."""
    a, b = int(starts.min()), int(ends.max()) + 1
    origin = x[ends[0]]
    u = x[a:b] - origin
    ww, wy = w[a:b], w[a:b] * yv[a:b]
    prefix = np.zeros((8, b - a + 1))
    term = ww.copy()
    for k in range(5):  # Σ w·u^k
        np.cumsum(term, out=prefix[k, 1:])
        term *= u
    term = wy.copy()
    for k in range(3):  # Σ w·y·u^k
        np.cumsum(term, out=prefix[5 + k, 1:])
        term *= u
    sums = prefix[:, ends - a + 1] - prefix[:, starts - a]
    d = x[ends] - origin  # each window's end in the chunk's coordinates: centre the sums there
    m = [np.ones_like(d), -d, d * d, -(d**3), d**4]  # (-d)^k
    binom = ((1,), (1, 1), (1, 2, 1), (1, 3, 3, 1), (1, 4, 6, 4, 1))
    p = [sum(c * m[k - r] * sums[r] for r, c in enumerate(binom[k])) for k in range(5)]
    q = [sum(c * m[k - r] * sums[5 + r] for r, c in enumerate(binom[k])) for k in range(3)]
    mat = np.stack([np.stack([p[0], p[1], p[2]], -1), np.stack([p[1], p[2], p[3]], -1),
                    np.stack([p[2], p[3], p[4]], -1)], -2)  # fmt: skip
    rhs = np.stack(q, -1)
    ok = p[0] >= min_points
    with np.errstate(invalid="ignore", over="ignore"):
        ok &= np.abs(np.linalg.det(mat)) > 1e-18
    sol = np.zeros((ends.size, 3))
    if ok.any():
        sol[ok] = np.linalg.solve(mat[ok], rhs[ok][..., None])[..., 0]
    return np.where(ok, sol[:, 1], np.nan)  # d/du at the end point is the linear coefficient


def value_at(t_ms: npt.ArrayLike, v: npt.ArrayLike, at_ms: npt.ArrayLike) -> Floats:
    """The last value at or before each time (NaN before the first)."""
    t = np.asarray(t_ms, np.int64)
    x = np.asarray(v, np.float64)
    i = np.searchsorted(t, np.asarray(at_ms, np.int64), side="right") - 1
    return np.where(i >= 0, x[np.maximum(i, 0)] if x.size else np.nan, np.nan)


def change_over(t_ms: npt.ArrayLike, v: npt.ArrayLike, at_ms: npt.ArrayLike, window_ms: int) -> Floats:
    """Value at ``at`` minus the value at ``at − window`` (last readings at or before those times)."""
    at = np.asarray(at_ms, np.int64)
    return value_at(t_ms, v, at) - value_at(t_ms, v, at - window_ms)


def tangent_angle(rate: npt.ArrayLike, v_eq: float) -> Floats:
    """α = arctan(v / v_eq) in degrees (v and v_eq in the same units)."""
    if not v_eq > 0:
        raise ValueError("v_eq (the constant-velocity rate) must be positive")
    return np.degrees(np.arctan(np.asarray(rate, np.float64) / v_eq))


#: Degrees above 45° before "initial acceleration" is called: a slope creeping at constant velocity
#: sits at α ≈ 45° and measurement noise alone would cross 45° half the time.
NOISE_MARGIN_DEG = 3.0


def angle_levels(
    angle: npt.ArrayLike, *, creep_blue: bool = False, margin: float = NOISE_MARGIN_DEG
) -> npt.NDArray[np.int8]:
    """Level of each angle by the bands 45°(+margin)/80°/85° (blue for steady creep when ``creep_blue``)."""
    a = np.asarray(angle, np.float64)
    out = np.where(a >= 85.0, 4, np.where(a >= 80.0, 3, np.where(a > 45.0 + margin, 2, 0)))
    if creep_blue:
        out = np.where((out == 0) & (a > 40.0), 1, out)
    return np.where(np.isfinite(a), out, 0).astype(np.int8)


def baseline_v0(rate: npt.ArrayLike) -> float:
    """V0 = 1.5·mean + 2·σ of the rate over a quiet window (NaNs ignored; NaN when empty)."""
    r = np.asarray(rate, np.float64)
    r = r[np.isfinite(r)]
    if r.size < 2:
        return math.nan
    return float(1.5 * r.mean() + 2.0 * r.std(ddof=1))


def baseline_levels(rate: npt.ArrayLike, v0: float) -> npt.NDArray[np.int8]:
    """Yellow ≥ V0, orange ≥ 5·V0, red ≥ 10·V0."""
    r = np.asarray(rate, np.float64)
    if not v0 > 0:
        return np.zeros(r.shape, np.int8)
    out = np.where(r >= 10 * v0, 4, np.where(r >= 5 * v0, 3, np.where(r >= v0, 2, 0)))
    return np.where(np.isfinite(r), out, 0).astype(np.int8)


@dataclass(frozen=True, slots=True)
class FailureForecast:
    """A Fukuzono inverse-velocity forecast."""

    t_failure_ms: int
    slope: float  # d(1/v)/dt, per day
    intercept: float
    r2: float
    n_points: int
    start_ms: int
    end_ms: int

    def as_dict(self) -> dict[str, float | int]:
        return {"t_failure_ms": self.t_failure_ms, "r2": round(self.r2, 4), "n_points": self.n_points,
                "start_ms": self.start_ms, "end_ms": self.end_ms, "slope": self.slope,
                "intercept": self.intercept}  # fmt: skip


def inverse_velocity(
    t_ms: npt.ArrayLike, rate: npt.ArrayLike, *, onset_ms: int | None = None, min_points: int = 5, min_r2: float = 0.5
) -> FailureForecast | None:
    """Fit 1/v = m·t + b over the accelerating stage; None unless 1/v falls with a usable fit.

    The stage starts at ``onset_ms`` when given, else after the last time the rate was at or below
    its median over the series (the end of the steady stage).
    """
    t = np.asarray(t_ms, np.int64)
    v = np.asarray(rate, np.float64)
    ok = np.isfinite(v) & (v > 0)
    t, v = t[ok], v[ok]
    if t.size < min_points:
        return None
    if onset_ms is None:
        steady = np.flatnonzero(v <= np.median(v))
        start = int(steady[-1]) + 1 if steady.size else 0
        start = min(start, t.size - min_points)
    else:
        start = int(np.searchsorted(t, onset_ms, side="left"))
    tt, inv = t[start:], 1.0 / v[start:]
    if tt.size < min_points:
        return None
    x = (tt - tt[0]) / DAY_MS
    m, b = np.polyfit(x, inv, 1)
    if not m < 0:
        return None
    pred = m * x + b
    ss_res = float(((inv - pred) ** 2).sum())
    ss_tot = float(((inv - inv.mean()) ** 2).sum())
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 0.0
    if r2 < min_r2:
        return None
    t_fail = int(tt[0] + (-b / m) * DAY_MS)
    return FailureForecast(t_fail, float(m), float(b), r2, int(tt.size), int(tt[0]), int(tt[-1]))
