"""run_qc_many and the segment-aware checks: many channels in one pass equal one run_qc per channel."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geowarn.errors import InvalidInput
from geowarn.monitoring.qc import (
    QcConfig,
    QcHistories,
    QcHistory,
    QcResult,
    apply_revisions,
    apply_revisions_many,
    duplicate_and_order_test,
    flat_line_test,
    pack_flags,
    qc_config_for,
    rate_of_change_test,
    run_qc,
    run_qc_many,
    spike_test,
    time_gap_test,
    timestamp_test,
)
from geowarn.monitoring.qc._segments import running_max_in_runs

NAN = math.nan
G, N, S, F, M = 1, 2, 3, 4, 9
NOW = 1_800_000_000.0
T0 = NOW - 86_400.0

SMALL: dict[str, Any] = {
    "interval_seconds": 60,
    "time_gap": {"max_gap_seconds": 180},
    "gross_range": {"fail_span": [-100, 100], "suspect_span": [-50, 50]},
    "spike": {"suspect_threshold": 5, "fail_threshold": 20},
    "rate_of_change": {"threshold_per_s": 0.5},
    "flat_line": {"suspect_seconds": 300, "fail_seconds": 600, "tolerance": 0.001},
}

CONFIGS: list[QcConfig] = [
    qc_config_for("GP", overrides=SMALL),
    # rain: no spike / rate of change, zero exempt from the flat line, envelope upper bound
    qc_config_for("RAIN", overrides={"interval_seconds": 60, "flat_line": {"suspect_seconds": 180}}),
    qc_config_for("QJ", channel="AZI", overrides={**SMALL, "spike": None, "rate_of_change": None}),
    qc_config_for("GP", overrides={**SMALL, "timestamp": None, "duplicate_and_order": False, "time_gap": None}),
    qc_config_for("ZD", overrides={"interval_seconds": 60, "flat_line": {"suspect_seconds": 120, "tolerance": 0.3}}),
    qc_config_for(
        "GP",
        overrides={
            "interval_seconds": 60,
            "timestamp": None,
            "duplicate_and_order": False,
            "time_gap": None,
            "gross_range": None,
            "spike": None,
            "rate_of_change": None,
            "flat_line": None,
        },
    ),
]


# --- strategies --------------------------------------------------------------------------------------

value = st.one_of(
    st.integers(-8, 8).map(lambda k: k / 4),
    st.sampled_from([0.0, 0.0, 0.5, 30.0, 70.0, 150.0, NAN, NAN, math.inf]),
)
# steps between readings: regular, irregular, duplicate, out of order, gap
step = st.sampled_from([60.0, 60.0, 60.0, 61.5, 0.0, -60.0, -200.0, 400.0])


@st.composite
def series(draw: st.DrawFn, max_size: int = 50) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(0, max_size))
    v = np.array(draw(st.lists(value, min_size=n, max_size=n)), dtype=np.float64)
    t = T0 + np.cumsum(np.array(draw(st.lists(step, min_size=n, max_size=n)), dtype=np.float64))
    for i in draw(st.lists(st.integers(0, max(n - 1, 0)), max_size=2)) if n else []:
        t[i] = draw(st.sampled_from([NAN, NOW + 3600.0, T0 - 7200.0]))  # no time, future, before install
    return t, v


@dataclass
class Channel:
    config: int
    installed_at: float
    history: tuple[np.ndarray, np.ndarray, np.ndarray] | None
    batch: tuple[np.ndarray, np.ndarray]


@st.composite
def channel(draw: st.DrawFn, packed_mode: str) -> Channel:
    config = draw(st.integers(0, len(CONFIGS) - 1))
    t, v = draw(series())
    h = draw(st.integers(0, t.size))
    packed = np.zeros(h, dtype=np.int32)
    if packed_mode == "computed":  # the flags the history got when it was stored
        flags = run_qc(t[:h], v[:h], CONFIGS[config], now=NOW).flags
        packed = pack_flags(flags) if flags else np.zeros(h, dtype=np.int32)  # a config may run no test
    elif packed_mode == "random":  # any valid nibbles, including fields some rows lack
        fields = st.sampled_from([G, G, G, G, G, 0, N, S, F, M])
        for shift in (0, 4, 16):
            packed |= np.array(draw(st.lists(fields, min_size=h, max_size=h)), dtype=np.int32) << shift
    installed = draw(st.sampled_from([NAN, T0 - 3600.0, T0 + 600.0]))
    return Channel(config, installed, (t[:h], v[:h], packed), (t[h:], v[h:]))


@st.composite
def channels(draw: st.DrawFn) -> tuple[list[Channel], bool]:
    mode = draw(st.sampled_from(["none", "computed", "random"]))
    return draw(st.lists(channel(mode), max_size=8)), mode != "none"


def reference(ch: Channel, with_packed: bool) -> QcResult:
    assert ch.history is not None
    ht, hv, hp = ch.history
    history = QcHistory(ht, hv, hp if with_packed else None) if ht.size else None
    return run_qc(
        ch.batch[0],
        ch.batch[1],
        CONFIGS[ch.config],
        now=NOW,
        installed_at=None if math.isnan(ch.installed_at) else ch.installed_at,
        history=history,
    )


def many(chs: list[Channel], with_packed: bool, configs: list[QcConfig] = CONFIGS) -> Any:
    def cat(parts: list[np.ndarray], dtype: Any = np.float64) -> np.ndarray:
        return np.concatenate([np.zeros(0, dtype), *parts]).astype(dtype)

    assert all(c.history is not None for c in chs)
    hist = [c.history for c in chs if c.history is not None]
    return run_qc_many(
        cat([c.batch[0] for c in chs]),
        cat([c.batch[1] for c in chs]),
        cat([np.full(c.batch[0].size, i) for i, c in enumerate(chs)], np.intp),
        configs,
        [c.config for c in chs],
        now=NOW,
        installed_at=np.array([c.installed_at for c in chs], dtype=np.float64),
        histories=QcHistories(
            cat([h[0] for h in hist]),
            cat([h[1] for h in hist]),
            cat([np.full(h[0].size, i) for i, h in enumerate(hist)], np.intp),
            cat([h[2] for h in hist], np.int32) if with_packed else None,
        ),
    )


def assert_same_result(got: QcResult, expected: QcResult) -> None:
    assert set(got.flags) == set(expected.flags)
    for name, flags in expected.flags.items():
        assert got.flags[name].tolist() == flags.tolist(), name
    assert got.aggregate.tolist() == expected.aggregate.tolist()
    assert got.revisions == expected.revisions


# --- run_qc_many equals a loop of run_qc -------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(channels())
def test_run_qc_many_equals_run_qc_per_channel(drawn: tuple[list[Channel], bool]) -> None:
    chs, with_packed = drawn
    result = many(chs, with_packed)
    offsets = result.batch_offsets
    for s, ch in enumerate(chs):
        expected = reference(ch, with_packed)
        assert_same_result(result.segment(s), expected)
        # the columnar output: packed flags and aggregate of every row, in input order
        packed = pack_flags(expected.flags) if expected.flags else np.zeros(expected.aggregate.size, np.int32)
        assert result.packed[offsets[s] : offsets[s + 1]].tolist() == packed.tolist()
        assert result.aggregate[offsets[s] : offsets[s + 1]].tolist() == expected.aggregate.tolist()
    # every test some channel runs is in the columnar flags (0 on the rows of channels that do not run
    # it, which the packed comparison above checks); a test of a channel without batch rows may be too
    ran = {name for ch in chs if ch.batch[0].size for name in reference(ch, with_packed).flags}
    assert ran <= {name for name, f in result.flags.items() if f.size}


@settings(max_examples=150, deadline=None)
@given(channels())
def test_revisions_applied_in_one_pass_equal_apply_revisions(drawn: tuple[list[Channel], bool]) -> None:
    chs, with_packed = drawn
    result = many(chs, with_packed)
    hist_packed = np.concatenate([np.zeros(0, np.int32)] + [c.history[2] for c in chs if c.history is not None])
    hist_agg = np.resize(np.array([G, S, M, F, N], np.uint8), hist_packed.size)  # stored aggregates
    packed, agg = apply_revisions_many(hist_packed, hist_agg, result.revisions)
    offsets = result.history_offsets
    for s in range(len(chs)):
        a, b = offsets[s], offsets[s + 1]
        want_p, want_a = apply_revisions(hist_packed[a:b], hist_agg[a:b], result.segment(s).revisions)
        assert packed[a:b].tolist() == want_p.tolist()
        assert agg[a:b].tolist() == want_a.tolist()


def test_configs_may_be_listed_in_any_order_and_unused() -> None:
    t = T0 + np.arange(6) * 60.0
    v = np.array([0.0, 0.0, 30.0, 0.0, 0.0, 0.0])
    chs = [Channel(0, NAN, (t[:3], v[:3], np.zeros(3, np.int32)), (t[3:], v[3:])) for _ in range(2)]
    a = many(chs, False)
    b = many([Channel(1, NAN, c.history, c.batch) for c in chs], False, [CONFIGS[5], CONFIGS[0]])
    assert a.packed.tolist() == b.packed.tolist() and a.aggregate.tolist() == b.aggregate.tolist()
    assert a.revisions["spike"][0].tolist() == [2, 5]  # the 30 of each channel, settled as FAIL
    assert a.revisions["spike"][1].tolist() == [F, F]


# --- hand cases at segment boundaries ----------------------------------------------------------------


def test_boundary_between_two_channels_is_not_a_neighbour() -> None:
    # Channel 0 ends with a high stuck value late in time; channel 1 starts with the same value earlier.
    t0 = T0 + np.arange(12) * 60.0
    v0 = np.full(12, 40.0)
    t1 = T0 + np.array([0.0, 60.0, 120.0])
    v1 = np.array([40.0, 0.0, 0.0])
    result = run_qc_many(
        np.concatenate((t0, t1)), np.concatenate((v0, v1)), [0] * 12 + [1] * 3, [CONFIGS[0]], [0, 0], now=NOW
    )
    second = result.segment(1)
    assert second.flags["duplicate_and_order"].tolist() == [G, G, G]  # not a duplicate of channel 0's T0
    assert second.flags["time_gap"].tolist() == [N, G, G]  # first of its channel
    assert second.flags["flat_line"].tolist() == [G, G, G]  # channel 0's stuck run does not carry over
    # 40 -> 0 is a spike of channel 1's own; nothing of channel 0 enters its verdicts
    assert_same_result(second, run_qc(t1, v1, CONFIGS[0], now=NOW))
    first = result.segment(0)
    assert first.flags["spike"][-1] == N and first.flags["flat_line"][-1] == F
    assert_same_result(first, run_qc(t0, v0, CONFIGS[0], now=NOW))


def test_empty_segments_and_empty_input() -> None:
    t = T0 + np.arange(3) * 60.0
    result = run_qc_many(t, [1.0, 2.0, 3.0], [1, 1, 1], CONFIGS[:1], [0, 0, 0], now=NOW)
    assert result.batch_offsets.tolist() == [0, 0, 3, 3]
    assert result.segment(0).aggregate.size == 0 and result.segment(2).flags["spike"].size == 0
    assert_same_result(result.segment(1), run_qc(t, [1.0, 2.0, 3.0], CONFIGS[0], now=NOW))
    none = run_qc_many([], [], [], CONFIGS, [], now=NOW)
    assert none.aggregate.size == 0 and none.packed.size == 0 and none.revisions == {}


def test_history_only_segment_still_settles_its_last_spike() -> None:
    t = T0 + np.arange(4) * 60.0
    v = np.array([0.0, 0.0, 30.0, 0.0])
    hist = QcHistories(t, v, [0, 0, 0, 0], pack_flags(run_qc(t, v, CONFIGS[0], now=NOW)))
    result = run_qc_many([], [], [], CONFIGS[:1], [0], now=NOW, histories=hist)
    expected = run_qc([], [], CONFIGS[0], now=NOW, history=QcHistory(t, v, hist.packed_flags))
    assert result.segment(0).revisions == expected.revisions
    assert [(r.history_index, r.flag) for r in expected.revisions] == [(3, N)]


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"segments": [1, 0]}, "sorted"),
        ({"segments": [0, 2]}, "sorted"),
        ({"segments": [0]}, "2 integers"),
        ({"config_index": [0, 9]}, "index configs"),
        ({"installed_at": [1.0]}, "one time per segment"),
    ],
)
def test_bad_layout_is_refused(kwargs: dict[str, Any], fragment: str) -> None:
    args: dict[str, Any] = {"segments": [0, 1], "config_index": [0, 0], "installed_at": None}
    args.update(kwargs)
    with pytest.raises(InvalidInput, match=fragment):
        run_qc_many(
            [T0, T0], [1.0, 2.0], args["segments"], CONFIGS, args["config_index"], now=NOW,
            installed_at=args["installed_at"],
        )  # fmt: skip


# --- the segment-aware checks equal one call per segment ---------------------------------------------


@st.composite
def segmented(draw: st.DrawFn) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray]:
    parts = draw(st.lists(series(max_size=20), max_size=6))
    ids = np.concatenate([np.zeros(0, np.int64)] + [np.full(p[0].size, 7 - i) for i, p in enumerate(parts)])
    return parts, ids  # any ids; a run of equal ids is one segment


def per_segment(parts: list[tuple[np.ndarray, np.ndarray]], fn: Any) -> list[int]:
    return [f for i, p in enumerate(parts) for f in fn(i, *p).tolist()]


def joined(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    return (
        np.concatenate([np.zeros(0)] + [p[0] for p in parts]),
        np.concatenate([np.zeros(0)] + [p[1] for p in parts]),
    )


def per_element(parts: list[tuple[np.ndarray, np.ndarray]], by_segment: list[float]) -> np.ndarray:
    return np.concatenate([np.zeros(0)] + [np.full(p[0].size, by_segment[i % 2]) for i, p in enumerate(parts)])


@settings(max_examples=200, deadline=None)
@given(segmented())
def test_segmented_checks_equal_one_call_per_segment(drawn: tuple[list[tuple[np.ndarray, np.ndarray]], Any]) -> None:
    parts, ids = drawn
    t, v = joined(parts)
    sus, fail, rate, gap, tol = [2.0, 5.0], [10.0, 40.0], [0.05, 0.5], [100.0, 300.0], [0.3, 0.0]
    fs, ff = [120.0, 300.0], [240.0, 300.0]

    def pe(x: list[float]) -> np.ndarray:
        return per_element(parts, x)

    got = spike_test(v, suspect_threshold=pe(sus), fail_threshold=pe(fail), segments=ids).tolist()
    assert got == per_segment(
        parts, lambda i, _t, x: spike_test(x, suspect_threshold=sus[i % 2], fail_threshold=fail[i % 2])
    )
    got = rate_of_change_test(t, v, threshold_per_s=pe(rate), segments=ids).tolist()
    assert got == per_segment(parts, lambda i, tt, x: rate_of_change_test(tt, x, threshold_per_s=rate[i % 2]))
    got = time_gap_test(t, max_gap_seconds=pe(gap), segments=ids).tolist()
    assert got == per_segment(parts, lambda i, tt, _x: time_gap_test(tt, max_gap_seconds=gap[i % 2]))
    ignore = np.isnan(v)
    got = duplicate_and_order_test(t, ignore=ignore, segments=ids).tolist()
    assert got == per_segment(parts, lambda _i, tt, x: duplicate_and_order_test(tt, ignore=np.isnan(x)))
    exempt = np.where(np.arange(2)[None, :] == 0, 0.0, NAN)[np.zeros(v.size, np.intp)]  # one row per element
    got = flat_line_test(
        t, v, suspect_seconds=pe(fs), fail_seconds=pe(ff), tolerance=pe(tol), exempt_values=exempt, segments=ids
    ).tolist()
    assert got == per_segment(
        parts,
        lambda i, tt, x: flat_line_test(
            tt, x, suspect_seconds=fs[i % 2], fail_seconds=ff[i % 2], tolerance=tol[i % 2], exempt_values=[0.0]
        ),
    )


def test_segmented_spike_hand_case() -> None:
    v = [0.0, 0.0, 30.0, 0.0, 0.0, 30.0, 0.0]
    assert spike_test(v, suspect_threshold=5, fail_threshold=20).tolist() == [N, S, F, S, S, F, N]
    # segments [0 0 0 | 1 1 1 1]: the 30 ending segment 0 and the 0 starting segment 1 have one neighbour
    seg = [0, 0, 0, 1, 1, 1, 1]
    assert spike_test(v, suspect_threshold=5, fail_threshold=20, segments=seg).tolist() == [N, S, N, N, S, F, N]


def test_per_element_limits_and_not_before() -> None:
    t = np.array([T0, T0, NOW + 100.0, NOW + 100.0])
    flags = timestamp_test(t, now=NOW, max_future_seconds=[0, 0, 0, 300], not_before=np.array([T0 + 1, NAN, NAN, NAN]))
    assert flags.tolist() == [F, G, F, G]
    with pytest.raises(InvalidInput):
        spike_test([1.0, 2.0, 3.0], suspect_threshold=[1.0, 2.0], fail_threshold=5.0)
    with pytest.raises(InvalidInput):
        spike_test([1.0, 2.0, 3.0], suspect_threshold=[1.0, 9.0, 1.0], fail_threshold=5.0)
    with pytest.raises(InvalidInput):
        spike_test([1.0, 2.0], suspect_threshold=1.0, fail_threshold=5.0, segments=[0])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(st.floats(-1e12, 1e12), st.floats(-1, 1), st.sampled_from([0.0, -0.0, 1e6, 1e6 + 1e-9])), max_size=80
    ),
    st.lists(st.booleans(), max_size=80),
)
def test_running_max_in_runs_is_exact(values: list[float], starts: list[bool]) -> None:
    y = np.array(values, dtype=np.float64)
    flags = np.resize(np.array(starts or [True]), y.size)
    if y.size:
        flags[0] = True
    expected, current = [], -math.inf
    for x, new in zip(values, flags.tolist(), strict=True):
        current = x if new else max(current, x)
        expected.append(current)
    assert running_max_in_runs(y, flags).tolist() == expected


def test_flat_line_range_is_exact_after_many_runs() -> None:
    # Thousands of short runs before a run whose span is a hair under the tolerance: shifting each run
    # above the previous ones (the former algorithm) rounded the span up to the tolerance.
    noise = np.resize([0.0, 5.0], 4000)
    tail = np.array([0.0, 0.001 - 1e-12, 0.0, 0.001 - 1e-12])
    v = np.concatenate((noise, tail))
    t = T0 + np.arange(v.size) * 60.0
    flags = flat_line_test(t, v, suspect_seconds=120, fail_seconds=180, tolerance=0.001)
    assert flags[-4:].tolist() == [G, G, S, F]
