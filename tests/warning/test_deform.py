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
