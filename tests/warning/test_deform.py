"""Deformation methods against analytic curves."""

from __future__ import annotations

import numpy as np
import pytest

from geowarn.demo.event import TyphoonEvent
from geowarn.warning import deform
from geowarn.warning.levels import Level

DAY = 86_400_000
H = 3_600_000


def test_trailing_rate_is_exact_on_a_line_with_irregular_sampling() -> None:
    rng = np.random.default_rng(1)
    t = np.sort(rng.integers(0, 10 * DAY, 300))
    s = 2.0 * t / DAY + 5
    r = deform.trailing_rate(t, s, DAY)
    ok = np.isfinite(r)
    assert ok.sum() > 250
    np.testing.assert_allclose(r[ok], 2.0, rtol=1e-9)


def test_tangent_angle_crosses_each_band_when_the_creep_law_says() -> None:
    e = TyphoonEvent(start_ms=0, v_eq_mm_h=0.25)
    t = np.arange(-2 * DAY, e.failure_ms - 10 * 60_000, 10 * 60_000)
    s = e.displacement_mm(t)
    rate = deform.trailing_rate(t, s, H) / 24.0  # mm/h
    angle = deform.tangent_angle(rate, e.v_eq_mm_h)
    levels = deform.angle_levels(angle)
    for degrees, level in ((80.0, Level.ORANGE), (85.0, Level.RED)):
        first = int(t[np.argmax(levels >= level)])
        # a trailing 1-hour slope lags the instantaneous rate by at most about half an hour here
        assert 0 <= first - e.angle_crossing_ms(degrees) <= 45 * 60_000, degrees
    assert levels[t < e.accel_ms].max() == 0


def test_inverse_velocity_recovers_the_failure_time_within_two_percent() -> None:
    t0, tf = 0, 10 * DAY
    t = np.linspace(t0, tf - 0.5 * DAY, 200).astype(np.int64)
    a = 0.02
    v = 1.0 / (a * (tf - t) / DAY)  # mm/day
    exact = deform.inverse_velocity(t, v, onset_ms=t0)
    assert exact is not None and abs(exact.t_failure_ms - tf) < 60_000 and exact.r2 > 0.9999
    noisy = v * np.random.default_rng(7).lognormal(0, 0.1, v.size)
    fit = deform.inverse_velocity(t, noisy, onset_ms=t0)
    assert fit is not None and abs(fit.t_failure_ms - tf) <= 0.02 * (tf - t0)
    assert deform.inverse_velocity(t, 1 / v, onset_ms=t0) is None  # slowing down: no forecast
    assert deform.inverse_velocity(t[:3], v[:3]) is None


def test_rate_baseline() -> None:
    quiet = np.array([1.0, 2.0, 3.0])
    v0 = deform.baseline_v0(quiet)
    assert v0 == pytest.approx(1.5 * 2.0 + 2 * 1.0)
    assert deform.baseline_levels(np.array([4.0, 5.0, 25.0, 50.0, np.nan]), v0).tolist() == [0, 2, 3, 4, 0]


def _endpoint_rate_reference(t: np.ndarray, y: np.ndarray, window_ms: int, min_points: int = 4) -> np.ndarray:
    """One least-squares quadratic per reading over its trailing window, in days before the reading."""
    out = np.full(t.size, np.nan)
    for i in range(t.size):
        keep = (t > t[i] - window_ms) & (np.arange(t.size) <= i) & np.isfinite(y)
        if keep.sum() < min_points:
            continue
        u = (t[keep] - t[i]) / DAY
        a = np.vander(u, 3, increasing=True)
        if abs(np.linalg.det(a.T @ a)) <= 1e-18:
            continue
        out[i] = np.linalg.solve(a.T @ a, a.T @ y[keep])[1]
    return out


@pytest.mark.parametrize("seed", range(6))
def test_endpoint_rate_equals_one_quadratic_fit_per_reading(seed: int) -> None:
    """The O(n) prefix-sum form gives the per-window fit, with gaps, NaNs and irregular sampling."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(50, 700))
    t = np.cumsum(rng.integers(1, 60, n) * 60_000).astype(np.int64) + int(rng.integers(0, 10**12))
    t[n // 2 :] += int(rng.integers(0, 3)) * DAY  # a gap longer than a window
    y = np.cumsum(rng.normal(0.02, 0.05, n)) * float(rng.uniform(0.1, 100))
    y[rng.random(n) < 0.05] = np.nan
    window = int(rng.choice([H, 6 * H, DAY]))
    got = deform.endpoint_rate(t, y, window)
    want = _endpoint_rate_reference(t, y, window)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9 * np.nanmax(np.abs(want)))


def test_endpoint_rate_is_exact_on_a_parabola_after_since() -> None:
    t = np.arange(0, 40 * DAY, 10 * 60_000, dtype=np.int64)
    d = t / DAY
    s = 0.5 * d**2 + 3 * d + 1  # rate = d + 3 mm/day
    since = 38 * DAY
    r = deform.endpoint_rate(t, s, DAY, since_ms=since)
    assert np.isnan(r[t <= since]).all()
    np.testing.assert_allclose(r[t > since], d[t > since] + 3, rtol=1e-7)
