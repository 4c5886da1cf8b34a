"""run_qc, the YAML config and streaming evaluation (geowarn.monitoring.qc)."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geowarn.errors import InvalidInput
from geowarn.monitoring.domain import SensorType
from geowarn.monitoring.qc import (
    QcConfig,
    QcFlag,
    QcHistory,
    QcResult,
    aggregate,
    apply_revisions,
    default_settings,
    pack_flags,
    qc_config_for,
    run_qc,
    unpack_flags,
)

NAN = np.nan
G, N, S, F, M = 1, 2, 3, 4, 9
NOW = 1_800_000_000.0
T0 = NOW - 86_400.0

SMALL_WINDOWS: dict[str, Any] = {
    "interval_seconds": 60,
    "time_gap": {"max_gap_seconds": 180},
    "gross_range": {"fail_span": [-100, 100], "suspect_span": [-50, 50]},
    "spike": {"suspect_threshold": 5, "fail_threshold": 20},
    "rate_of_change": {"threshold_per_s": 0.5},
    "flat_line": {"suspect_seconds": 300, "fail_seconds": 600, "tolerance": 0.001},
}


def gnss_config() -> QcConfig:
    return qc_config_for("GP", overrides=SMALL_WINDOWS)


# --- config ------------------------------------------------------------------------------------------


def test_every_sensor_type_with_readings_has_defaults() -> None:
    for sensor_type in SensorType:
        if sensor_type is SensorType.VIDEO:
            continue
        config = qc_config_for(sensor_type.value)
        assert config.gross_range is not None and config.time_gap is not None
        fail, suspect = config.gross_range.spans(config.interval_seconds)
        assert fail[0] < fail[1]
        assert suspect is None or fail[0] <= suspect[0] <= suspect[1] <= fail[1]
    assert set(default_settings()["sensor_types"]) == {t.value for t in SensorType} - {"VIDEO"}


def test_rain_defaults_scale_with_interval_and_exempt_zero() -> None:
    ten_min = qc_config_for("RAIN")
    hourly = qc_config_for("RAIN", overrides={"interval_seconds": 3600})
    assert ten_min.gross_range is not None and hourly.gross_range is not None
    (lo, hi), suspect = ten_min.gross_range.spans(ten_min.interval_seconds)
    assert lo == 0 and hi == pytest.approx(422 * (1 / 6) ** 0.475) and suspect == (0, pytest.approx(hi / 2))
    assert hourly.gross_range.spans(3600)[0][1] == pytest.approx(422)
    assert ten_min.spike is None and ten_min.rate_of_change is None
    assert ten_min.flat_line is not None and ten_min.flat_line.exempt_values == (0.0,)
    total = qc_config_for("RAIN", channel="totalValue")
    assert total.flat_line is None and total.gross_range is not None and total.gross_range.envelope is None


def test_overrides_merge_and_null_switches_a_test_off() -> None:
    config = qc_config_for("GP", overrides={"flat_line": {"suspect_seconds": 7200}, "spike": None})
    assert config.flat_line is not None and config.flat_line.suspect_seconds == 7200
    assert config.flat_line.fail_seconds == 86400  # kept from the defaults
    assert config.spike is None
    assert qc_config_for("QJ", channel="AZI").spike is None
    assert qc_config_for("QJ", channel="X").spike is not None


@pytest.mark.parametrize(
    "overrides",
    [
        {"spike": {"suspect_threshold": 10, "fail_threshold": 1}},
        {"gross_range": {"fail_span": [0, 10], "suspect_span": [-5, 5]}},
        {"flat_line": {"suspect_seconds": 100, "fail_seconds": 10}},
        {"flat_line": {"tolerence": 0.1}},
        {"interval_seconds": 0},
    ],
)
def test_invalid_overrides_are_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        qc_config_for("GP", overrides=overrides)


def test_unknown_sensor_type_is_refused() -> None:
    with pytest.raises(InvalidInput) as err:
        qc_config_for("XX")
    assert "XX" in err.value.message_zh


def test_history_seconds_follows_flat_line() -> None:
    assert gnss_config().history_seconds == 600
    assert qc_config_for("GP", overrides={"flat_line": None}).history_seconds == 0


# --- run_qc ------------------------------------------------------------------------------------------


def test_run_qc_hand_computed() -> None:
    t = T0 + np.array([0, 60, 120, 120, 180, 240, 600, 660, NOW - T0 + 3600], dtype=np.float64)
    v = np.array([0, 1, 2, 90, NAN, 3, 70, 71, 5], dtype=np.float64)
    result = run_qc(t, v, gnss_config(), now=NOW)
    assert result.flags["timestamp"].tolist() == [G, G, G, G, G, G, G, G, F]
    assert result.flags["duplicate_and_order"].tolist() == [G, G, G, F, G, G, G, G, N]
    assert result.flags["time_gap"].tolist() == [N, G, G, N, G, G, S, G, N]
    assert result.flags["gross_range"].tolist() == [G, G, G, S, M, G, S, S, G]
    # the duplicate (90) and the future reading take no part: 0 1 2 3 70 71 are the context
    assert result.flags["spike"].tolist() == [N, G, G, N, M, F, F, N, N]
    assert result.flags["rate_of_change"].tolist() == [N, G, G, N, M, G, G, G, N]
    assert result.flags["flat_line"].tolist() == [G, G, G, N, M, G, G, G, N]
    assert result.aggregate.tolist() == [G, G, G, F, M, F, F, S, F]
    assert result.aggregate.tolist() == aggregate(*result.flags.values()).tolist()
    assert result.revisions == ()


def test_run_qc_before_installation_fails() -> None:
    t = T0 + np.arange(3) * 60.0
    result = run_qc(t, [1.0, 1.0, 1.0], gnss_config(), now=NOW, installed_at=T0 + 60)
    assert result.flags["timestamp"].tolist() == [F, G, G]
    assert result.aggregate[0] == F


def test_run_qc_accepts_datetime64_and_empty() -> None:
    t = (T0 + np.arange(3) * 60.0).astype("int64").astype("datetime64[s]")
    a = run_qc(t, [1.0, 2.0, 3.0], gnss_config(), now=np.datetime64(int(NOW), "s"))
    b = run_qc(T0 + np.arange(3) * 60.0, [1.0, 2.0, 3.0], gnss_config(), now=NOW)
    assert {k: f.tolist() for k, f in a.flags.items()} == {k: f.tolist() for k, f in b.flags.items()}
    empty = run_qc([], [], gnss_config(), now=NOW)
    assert empty.aggregate.tolist() == [] and all(f.size == 0 for f in empty.flags.values())


def test_run_qc_all_nan_is_missing() -> None:
    result = run_qc(T0 + np.arange(4) * 60.0, [NAN] * 4, gnss_config(), now=NOW)
    assert result.aggregate.tolist() == [M] * 4


def test_run_qc_length_mismatch() -> None:
    with pytest.raises(InvalidInput):
        run_qc([1.0, 2.0], [1.0], gnss_config(), now=NOW)
    with pytest.raises(InvalidInput):
        run_qc([T0], [1.0], gnss_config(), now=NOW, history=QcHistory([1.0, 2.0], [1.0]))


def test_rain_gauge_dry_week_is_good() -> None:
    t = T0 - 6 * 86400 + np.arange(1008) * 600.0  # a week of 10-minute totals
    rain = np.zeros(t.size)
    rain[500:506] = [0.5, 2.0, 7.5, 3.0, 0.5, 0.0]
    rain[700] = -1.0  # a negative total is impossible
    rain[800] = 120.0  # above half the record envelope for 10 min
    result = run_qc(t, rain, qc_config_for("RAIN"), now=NOW)
    bad = np.flatnonzero(result.aggregate != G)
    assert bad.tolist() == [700, 800]
    assert result.aggregate[[700, 800]].tolist() == [F, S]
    assert set(result.flags) == {"timestamp", "duplicate_and_order", "time_gap", "gross_range", "flat_line"}


def test_rain_gauge_stuck_counter_is_flagged() -> None:
    t = T0 + np.arange(80) * 600.0
    rain = np.full(t.size, 0.2)  # the same non-zero amount every 10 min for 13 hours
    flat = run_qc(t, rain, qc_config_for("RAIN"), now=NOW).flags["flat_line"]
    assert flat[:18].tolist() == [G] * 18  # under 3 h
    assert (flat[18:72] == S).all() and (flat[72:] == F).all()  # 3 h, 12 h


# --- streaming ---------------------------------------------------------------------------------------


def gnss_series(seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Three hours at one reading a minute with noise, spikes, a stuck stretch, NaN, a gap, a resent packet."""
    rng = np.random.default_rng(seed)
    t = T0 + np.arange(180) * 60.0
    v = np.round(np.cumsum(rng.normal(0, 0.3, t.size)) + rng.normal(0, 2.0, t.size), 2)
    v[[20, 95]] += [40.0, -12.0]
    v[40:65] = v[40]  # stuck for 25 minutes
    v[[10, 11, 70]] = NAN
    t[120:] += 600.0  # a ten-minute gap
    t = np.insert(t, 150, t[149])  # a resent packet with another value
    v = np.insert(v, 150, v[149] + 30.0)
    t = np.insert(t, 160, t[100] + 30.0)  # a late, buffered reading
    v = np.insert(v, 160, v[100])
    return t, v


def stream(t: np.ndarray, v: np.ndarray, config: QcConfig, cuts: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Evaluate batch by batch with history, storing packed flags and applying revisions."""
    packed = np.zeros(0, np.int32)
    agg = np.zeros(0, np.uint8)
    bounds = [0, *cuts, t.size]
    for a, b in itertools.pairwise(bounds):
        if a == b:
            continue
        # history: every stored reading within history_seconds of the batch, plus two before that
        reach = np.flatnonzero(t[:a] >= t[a] - config.history_seconds)
        h0 = max(0, (int(reach[0]) if reach.size else a) - 2)
        history = QcHistory(t[h0:a], v[h0:a], packed[h0:a])
        result = run_qc(t[a:b], v[a:b], config, now=NOW, history=history)
        hist_packed, hist_agg = apply_revisions(packed[h0:a], agg[h0:a], result.revisions)
        packed = np.concatenate((packed[:h0], hist_packed, pack_flags(result)))
        agg = np.concatenate((agg[:h0], hist_agg, result.aggregate))
    return packed, agg


def assert_same(whole: QcResult, packed: np.ndarray, agg: np.ndarray) -> None:
    got = unpack_flags(packed)
    assert set(got) == set(whole.flags)
    for name, expected in whole.flags.items():
        np.testing.assert_array_equal(got[name], expected, err_msg=name)
    np.testing.assert_array_equal(agg, whole.aggregate)


def test_batch_of_one_equals_whole_series() -> None:
    t, v = gnss_series()
    config = gnss_config()
    whole = run_qc(t, v, config, now=NOW)
    assert (whole.flags["spike"] == F).sum() >= 1 and (whole.flags["flat_line"] == F).any()
    assert (whole.flags["duplicate_and_order"] == F).sum() == 1 and (whole.flags["duplicate_and_order"] == S).sum() == 1
    packed, agg = stream(t, v, config, list(range(1, t.size)))
    assert_same(whole, packed, agg)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=181), max_size=30, unique=True))
def test_any_batching_equals_whole_series(cuts: list[int]) -> None:
    t, v = gnss_series(seed=11)
    config = gnss_config()
    packed, agg = stream(t, v, config, sorted(cuts))
    assert_same(run_qc(t, v, config, now=NOW), packed, agg)


def test_revision_settles_the_last_stored_spike() -> None:
    config = gnss_config()
    t = T0 + np.arange(3) * 60.0
    first = run_qc(t, [0.0, 0.0, 30.0], config, now=NOW)
    assert first.flags["spike"].tolist() == [N, S, N]  # |0 - (0 + 30) / 2| = 15
    second = run_qc([T0 + 180], [0.0], config, now=NOW, history=QcHistory(t, [0.0, 0.0, 30.0], pack_flags(first)))
    assert [(r.history_index, r.test, r.flag) for r in second.revisions] == [(2, "spike", QcFlag.FAIL)]
    packed, agg = apply_revisions(pack_flags(first), first.aggregate, second.revisions)
    assert unpack_flags(packed)["spike"].tolist() == [N, S, F]  # |30 - (0 + 0) / 2| = 30
    assert first.aggregate.tolist() == [G, S, G]
    assert agg.tolist() == [G, S, F]
    assert apply_revisions(packed, agg, ())[0].tolist() == packed.tolist()
