"""Rainfall methods against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from geowarn.warning import rain

H = 3_600_000


def test_window_sums_are_half_open_on_the_left() -> None:
    t = np.array([0, H, 2 * H, 3 * H])
    inc = np.array([1.0, 2.0, np.nan, 4.0])
    assert rain.window_sums(t, inc, np.array([3 * H, 2 * H, -1]), 2 * H).tolist() == [4.0, 2.0, 0.0]


def test_counter_resets_count_the_rain_since_the_reset() -> None:
    assert rain.increments_from_cumulative([0, 1, 3, 0.5, 2.5]).tolist() == [0, 1, 2, 0.5, 2.0]
    assert rain.increments_from_cumulative([]).size == 0


def test_event_rainfall_splits_on_a_dry_gap() -> None:
    t = np.array([0, H, 2 * H, 10 * H, 11 * H])
    inc = np.array([5.0, 3.0, 0.0, 2.0, 4.0])
    mm, hours = rain.event_rainfall(t, inc, np.array([2 * H, 7 * H, 9 * H, 11 * H]), dry_gap_h=6)
    # at 2h: event since 0 h (8 mm, 2 h); at 7h and 9h: 6 h and more after the last rain, the event
    # is over; at 11h: a new event since 10h
    assert mm.tolist() == [8.0, 0.0, 0.0, 6.0]
    assert hours.tolist() == [2.0, 0.0, 0.0, 1.0]
    mm, hours = rain.event_rainfall(t, inc, np.array([6 * H]), dry_gap_h=6)
    assert (mm.tolist(), hours.tolist()) == ([8.0], [6.0])


def test_effective_rainfall_and_intensity_duration() -> None:
    assert rain.effective_rainfall([[10.0, 20.0, 30.0]], 0.8).tolist() == pytest.approx([45.2])
    ratio = rain.id_ratio([30.0, 0.0], [2.0, 0.0], a=14.82, b=0.39)
    assert ratio[0] == pytest.approx(15.0 / (14.82 * 2.0**-0.39)) and ratio[1] == 0.0


def test_daily_totals_and_regular_sums() -> None:
    t = np.arange(0, 72) * H
    inc = np.ones(72)
    assert rain.daily_totals(t, inc, np.array([71 * H]), 3).tolist() == [[24.0, 24.0, 24.0]]
    x = np.array([[1.0, 2.0, 3.0, 4.0]])
    assert rain.window_sums_regular(x, 2).tolist() == [[1.0, 3.0, 5.0, 7.0]]
