"""The demo typhoon: deterministic, physically sensible rain, and a slope whose failure time is known."""

from __future__ import annotations

import numpy as np

from geowarn.demo.event import HOUR_MS, TyphoonEvent

E = TyphoonEvent(start_ms=1_782_864_000_000)


def test_rain_is_zero_outside_the_event_and_sums_consistently() -> None:
    lon, lat = np.array([118.9, 118.7]), np.array([26.6, 26.5])
    assert E.rain_mm(lon, lat, E.start_ms - 5 * HOUR_MS, E.start_ms).tolist() == [0.0, 0.0]
    whole = E.rain_mm(lon, lat, E.start_ms, E.end_ms)
    halves = E.rain_mm(lon, lat, E.start_ms, E.start_ms + 18 * HOUR_MS) + E.rain_mm(
        lon, lat, E.start_ms + 18 * HOUR_MS, E.end_ms
    )
    np.testing.assert_allclose(whole, halves, rtol=1e-3)
    assert 100 < whole.max() < 200  # a typhoon's outer bands, not a world record


def test_grid_matches_points() -> None:
    g = E.grid_mm(118.8, 26.5, 0.05, (4, 4), E.start_ms, E.end_ms)
    # cell (row 0, col 0) is the north-west cell: centre (118.825, 26.675)
    point = E.rain_mm(np.array([118.825]), np.array([26.675]), E.start_ms, E.end_ms, step_min=60)
    assert g[0, 0] == point[0]


def test_the_slope_is_continuous_and_its_tangent_angle_crosses_at_known_times() -> None:
    t80, t85 = E.angle_crossing_ms(80), E.angle_crossing_ms(85)
    assert E.accel_ms < t80 < t85 < E.end_ms < E.failure_ms
    v = E.velocity_mm_h(np.array([t80, t85]))
    np.testing.assert_allclose(np.degrees(np.arctan(v / E.v_eq_mm_h)), [80, 85], atol=1e-3)
    t = np.array([E.accel_ms - 1, E.accel_ms, E.accel_ms + 1], np.float64)
    d = E.displacement_mm(t)
    assert abs(d[1] - d[0]) < 1e-3 and abs(d[2] - d[1]) < 1e-3
    # inverse velocity falls linearly to zero at the failure time
    ts = np.linspace(E.accel_ms + HOUR_MS, E.end_ms, 20)
    m, b = np.polyfit(ts, 1 / E.velocity_mm_h(ts), 1)
    assert abs(-b / m - E.failure_ms) < 60_000
