"""Hand-computed cases for every QC test, flags and packing (geowarn.monitoring.qc)."""

from __future__ import annotations

import numpy as np
import pytest

from geowarn.errors import InvalidInput
from geowarn.monitoring.qc import (
    TEST_ORDER,
    QcFlag,
    aggregate,
    as_epoch_seconds,
    duplicate_and_order_test,
    flat_line_test,
    gross_range_test,
    pack_flags,
    rate_of_change_test,
    spike_test,
    time_gap_test,
    timestamp_test,
    unpack_flags,
)

NAN = np.nan
G, N, S, F, M = 1, 2, 3, 4, 9


def flags(a: np.ndarray) -> list[int]:
    assert a.dtype == np.uint8
    return a.tolist()


# --- gross range -------------------------------------------------------------------------------------


def test_gross_range_bounds_are_inside() -> None:
    v = [-101, -100, -60, -50, 0, 1000, 1000.5, 2000, 2001, NAN, np.inf, -np.inf]
    got = gross_range_test(v, fail_span=(-100, 2000), suspect_span=(-50, 1000))
    assert flags(got) == [F, S, S, G, G, G, S, S, F, M, F, F]
    assert flags(gross_range_test(v, fail_span=(2000, -100))) == [F, G, G, G, G, G, G, G, F, M, F, F]


def test_gross_range_suspect_span_must_lie_within_fail_span() -> None:
    with pytest.raises(InvalidInput):
        gross_range_test([1.0], fail_span=(0, 10), suspect_span=(-1, 5))


def test_gross_range_empty_and_all_nan() -> None:
    assert flags(gross_range_test([], fail_span=(0, 1))) == []
    assert flags(gross_range_test([NAN, NAN], fail_span=(0, 1))) == [M, M]


# --- spike -------------------------------------------------------------------------------------------


def test_spike_hand_computed() -> None:
    # deviations: i1 |1-3|=2, i2 |5-1|=4, i3 |1-3|=2, i4 0
    got = spike_test([1, 1, 5, 1, 1, 1], suspect_threshold=1, fail_threshold=3)
    assert flags(got) == [N, S, F, S, G, N]


def test_spike_exactly_at_threshold_is_not_beyond() -> None:
    assert flags(spike_test([0, 2, 0], suspect_threshold=2, fail_threshold=4)) == [N, G, N]
    assert flags(spike_test([0, 4, 0], suspect_threshold=2, fail_threshold=4)) == [N, S, N]
    assert flags(spike_test([0, 4.5, 0], suspect_threshold=2, fail_threshold=4)) == [N, F, N]


def test_spike_uses_nearest_valid_neighbours_across_nan() -> None:
    # valid readings 0, 0, 10, 0, 0: deviations 5 (=suspect, not beyond fail 5), 10, 5
    got = spike_test([0, NAN, 0, 10, NAN, NAN, 0, 0], suspect_threshold=1, fail_threshold=5)
    assert flags(got) == [N, M, S, F, M, M, S, N]


def test_spike_short_inputs() -> None:
    kw = {"suspect_threshold": 1.0, "fail_threshold": 2.0}
    assert flags(spike_test([], **kw)) == []
    assert flags(spike_test([3.0], **kw)) == [N]
    assert flags(spike_test([3.0, 9.0], **kw)) == [N, N]
    assert flags(spike_test([NAN, NAN, NAN], **kw)) == [M, M, M]
    assert flags(spike_test([1.0, NAN, 9.0], **kw)) == [N, M, N]


def test_spike_thresholds_must_be_ordered() -> None:
    with pytest.raises(InvalidInput):
        spike_test([1.0, 2.0, 3.0], suspect_threshold=5, fail_threshold=1)


# --- rate of change ----------------------------------------------------------------------------------


def test_rate_of_change_hand_computed() -> None:
    # rates: 5/10=0.5, 0, 20/20=1.0 (at threshold: GOOD), dt=0 -> not evaluated, NaN -> missing
    got = rate_of_change_test([0, 10, 20, 40, 40, 50], [0, 5, 5, 25, 30, NAN], threshold_per_s=1.0)
    assert flags(got) == [N, G, G, G, N, M]


def test_rate_of_change_honours_irregular_sampling() -> None:
    # the same 20-unit step is 2/s after 10 s but 0.22/s after 90 s
    assert flags(rate_of_change_test([0, 10, 100], [0, 20, 40], threshold_per_s=1.0)) == [N, S, G]


def test_rate_of_change_measures_from_previous_valid_reading() -> None:
    t, v = [0, 10, 20], [0, NAN, 15]
    assert flags(rate_of_change_test(t, v, threshold_per_s=1.0)) == [N, M, G]  # 15/20 = 0.75
    assert flags(rate_of_change_test(t, v, threshold_per_s=0.5)) == [N, M, S]
    # a reading without a time is skipped too
    assert flags(rate_of_change_test([0, NAN, 20], [0, 100, 15], threshold_per_s=0.5)) == [N, N, S]


def test_rate_of_change_out_of_order_time_not_evaluated() -> None:
    # the late reading is not evaluated but stays the reference of the next one (48 / 90 s > 0.5);
    # run_qc removes out-of-order readings from the context before this test runs
    assert flags(rate_of_change_test([0, 60, 30, 120], [0, 1, 50, 2], threshold_per_s=0.5)) == [N, G, N, S]


def test_rate_of_change_accepts_datetime64() -> None:
    t = np.array(["2026-11-22T00:00:00", "2026-11-22T00:00:10", "2026-11-22T00:01:40"], dtype="datetime64[s]")
    assert flags(rate_of_change_test(t, [0, 20, 40], threshold_per_s=1.0)) == [N, S, G]
    assert flags(rate_of_change_test(t.astype("datetime64[ms]"), [0, 20, 40], threshold_per_s=1.0)) == [N, S, G]


def test_rate_of_change_short_and_mismatched() -> None:
    assert flags(rate_of_change_test([], [], threshold_per_s=1.0)) == []
    assert flags(rate_of_change_test([5.0], [1.0], threshold_per_s=1.0)) == [N]
    with pytest.raises(InvalidInput):
        rate_of_change_test([1.0, 2.0], [1.0], threshold_per_s=1.0)


# --- flat line ---------------------------------------------------------------------------------------

MINUTES = np.arange(20, dtype=np.float64) * 60


def test_flat_line_hand_computed() -> None:
    # run 1 lasts 0..240 s, run 2 300..480 s; suspect from 120 s, fail from 180 s (limits inclusive)
    got = flat_line_test(
        MINUTES[:10], [1, 1, 1, 1, 1, 2, 2, 2, 2, NAN], suspect_seconds=120, fail_seconds=180, tolerance=0.01
    )
    assert flags(got) == [G, G, S, F, F, G, G, S, F, M]


def test_flat_line_jitter_within_tolerance_after_a_step() -> None:
    got = flat_line_test(
        MINUTES[:5], [0, 5, 5.001, 4.999, 5.0005], suspect_seconds=180, fail_seconds=240, tolerance=0.01
    )
    assert flags(got) == [G, G, G, G, S]


def test_flat_line_slow_drift_stops_being_flat_beyond_tolerance() -> None:
    # steps of 0.004 < tolerance 0.01, but the range reaches 0.012 at the fourth reading
    got = flat_line_test(
        MINUTES[:6], [0, 0.004, 0.008, 0.012, 0.016, 0.020], suspect_seconds=60, fail_seconds=120, tolerance=0.01
    )
    assert flags(got) == [G, S, F, G, G, G]


def test_flat_line_exact_repeat_after_drift_is_caught() -> None:
    values = [0, 0.004, 0.008, 0.012, 0.012, 0.012, 0.012]
    got = flat_line_test(MINUTES[:7], values, suspect_seconds=120, fail_seconds=180, tolerance=0.01)
    assert flags(got) == [G, G, S, G, G, S, F]


def test_flat_line_tolerance_is_strict() -> None:
    # binary-exact numbers: a step equal to the tolerance breaks the run, a range equal to it too
    assert flags(flat_line_test(MINUTES[:3], [0, 0.5, 1.0], suspect_seconds=60, fail_seconds=120, tolerance=0.5)) == [
        G,
        G,
        G,
    ]
    assert flags(flat_line_test(MINUTES[:3], [0, 0.25, 0.5], suspect_seconds=60, fail_seconds=120, tolerance=0.5)) == [
        G,
        S,
        G,
    ]


def test_flat_line_zero_tolerance_detects_exact_repeats() -> None:
    got = flat_line_test(MINUTES[:4], [5, 5, 5, 5.1], suspect_seconds=60, fail_seconds=120, tolerance=0)
    assert flags(got) == [G, S, F, G]


def test_flat_line_irregular_sampling_measures_time() -> None:
    got = flat_line_test([0, 10, 1000, 1010, 2000], [7] * 5, suspect_seconds=1000, fail_seconds=2000, tolerance=0.01)
    assert flags(got) == [G, G, S, S, F]


def test_flat_line_nan_does_not_break_a_run() -> None:
    got = flat_line_test(MINUTES[:5], [3, NAN, 3, NAN, 3], suspect_seconds=120, fail_seconds=240, tolerance=0.01)
    assert flags(got) == [G, M, S, M, F]


def test_flat_line_exempt_values_for_rain() -> None:
    t = np.arange(9) * 600.0
    rain = [0, 0, 0, 0, 0, 0.5, 0.5, 0.5, 0.5]
    got = flat_line_test(t, rain, suspect_seconds=1200, fail_seconds=1800, tolerance=0.001, exempt_values=[0])
    assert flags(got) == [G, G, G, G, G, G, G, S, F]


def test_flat_line_short_inputs_and_bad_limits() -> None:
    kw = {"suspect_seconds": 60.0, "fail_seconds": 120.0, "tolerance": 0.1}
    assert flags(flat_line_test([], [], **kw)) == []
    assert flags(flat_line_test([0.0], [1.0], **kw)) == [G]
    assert flags(flat_line_test([0.0, 60.0], [NAN, NAN], **kw)) == [M, M]
    with pytest.raises(InvalidInput):
        flat_line_test([0.0], [1.0], suspect_seconds=120, fail_seconds=60, tolerance=0.1)


# --- time tests --------------------------------------------------------------------------------------


def test_time_gap_hand_computed() -> None:
    got = time_gap_test([0, 60, 120, 300, NAN, 360, 361], max_gap_seconds=120)
    assert flags(got) == [N, G, G, S, N, G, G]
    assert flags(time_gap_test([0, 120], max_gap_seconds=120)) == [N, G]  # exactly at the limit
    assert flags(time_gap_test([], max_gap_seconds=1)) == []
    assert flags(time_gap_test([NAN], max_gap_seconds=1)) == [N]


def test_timestamp_future_before_install_and_missing() -> None:
    got = timestamp_test([99, 100, 500, 1010, 1011, NAN], now=1000, max_future_seconds=10, not_before=100)
    assert flags(got) == [F, G, G, G, F, F]
    assert flags(timestamp_test([99, 1011], now=1000, max_future_seconds=10, not_before=None)) == [G, F]


def test_timestamp_accepts_datetime64_everywhere() -> None:
    t = np.array(["2026-11-22T08:00", "2026-11-22T08:06", "NaT"], dtype="datetime64[m]")
    got = timestamp_test(
        t, now=np.datetime64("2026-11-22T08:00:00"), max_future_seconds=300, not_before=np.datetime64("2026-01-01")
    )
    assert flags(got) == [G, F, F]


def test_as_epoch_seconds() -> None:
    t = np.array(["1970-01-01T00:00:01.5", "NaT"], dtype="datetime64[ms]")
    got = as_epoch_seconds(t)
    assert got[0] == 1.5 and np.isnan(got[1])
    assert as_epoch_seconds([1, 2]).dtype == np.float64
    with pytest.raises(InvalidInput):
        as_epoch_seconds(np.array(["x"], dtype=object))


def test_duplicate_and_order_hand_computed() -> None:
    got = duplicate_and_order_test([0, 60, 60, 30, 120, 30, NAN, 180])
    assert flags(got) == [G, G, F, S, G, F, N, G]
    ignore = np.array([False, True, False, False, False, False, False, False])
    assert flags(duplicate_and_order_test([0, 60, 60, 30, 120, 30, NAN, 180], ignore=ignore)) == [
        G,
        N,
        G,
        S,
        G,
        F,
        N,
        G,
    ]
    assert flags(duplicate_and_order_test([])) == []


# --- aggregate and packing ---------------------------------------------------------------------------


def test_aggregate_by_severity_with_missing_on_top() -> None:
    got = aggregate([G, N, G, N, G, F], [N, N, S, F, M, S])
    assert flags(got) == [G, N, S, F, M, F]
    assert flags(aggregate(np.array([], dtype=np.uint8))) == []


def test_aggregate_rejects_bad_input() -> None:
    with pytest.raises(InvalidInput):
        aggregate()
    with pytest.raises(InvalidInput):
        aggregate([1, 2], [1])
    with pytest.raises(InvalidInput):
        aggregate([1, 5])
    with pytest.raises(InvalidInput):
        aggregate([1, 300])


def test_pack_flags_layout() -> None:
    packed = pack_flags({"timestamp": np.array([1, 9], np.uint8), "duplicate_and_order": np.array([4, 2], np.uint8)})
    assert packed.dtype == np.int32
    assert packed.tolist() == [1 | 4 << 4, 9 | 2 << 4]
    everything = pack_flags({name: np.array([9], np.uint8) for name in TEST_ORDER})
    assert everything.tolist() == [0x9999999]
    assert set(unpack_flags(packed)) == {"timestamp", "duplicate_and_order"}
    assert unpack_flags(packed)["duplicate_and_order"].tolist() == [4, 2]
    assert unpack_flags(np.array([], np.int32)) == {}


def test_pack_flags_rejects_unknown_tests_and_values() -> None:
    with pytest.raises(InvalidInput):
        pack_flags({"sharpness": np.array([1], np.uint8)})
    with pytest.raises(InvalidInput):
        pack_flags({"spike": np.array([7], np.uint8)})
    with pytest.raises(InvalidInput):
        pack_flags({"spike": np.array([1], np.uint8), "flat_line": np.array([1, 1], np.uint8)})


def test_flag_values_are_qartod() -> None:
    assert [int(f) for f in QcFlag] == [1, 2, 3, 4, 9]
