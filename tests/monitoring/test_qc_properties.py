"""Property tests of the QC tests against plain-Python reference implementations (hypothesis)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from geowarn.monitoring.qc import (
    QcFlag,
    aggregate,
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

ALLOWED = {int(f) for f in QcFlag}
SEVERITY = [QcFlag.NOT_EVALUATED, QcFlag.GOOD, QcFlag.SUSPECT, QcFlag.FAIL, QcFlag.MISSING]

# values on a coarse grid (as sensors report them), with NaN and the odd infinity
reading = st.one_of(
    st.integers(-20, 20).map(lambda k: k / 4),
    st.just(math.nan),
    st.sampled_from([math.inf, -math.inf]),
)
readings = st.lists(reading, max_size=60)
flag_value = st.sampled_from(sorted(ALLOWED))


@st.composite
def timed(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Irregularly sampled readings: times (s) and values."""
    v = np.array(draw(readings), dtype=np.float64)
    dt = draw(st.lists(st.sampled_from([1.0, 10.0, 60.0, 61.0, 600.0]), min_size=v.size, max_size=v.size))
    return np.cumsum(np.array(dt, dtype=np.float64)), v


@given(st.lists(st.lists(flag_value, min_size=5, max_size=5), min_size=1, max_size=6))
def test_aggregate_is_max_by_severity(arrays: list[list[int]]) -> None:
    got = aggregate(*[np.array(a, dtype=np.uint8) for a in arrays])
    for i in range(5):
        assert got[i] == max((a[i] for a in arrays), key=lambda f: SEVERITY.index(QcFlag(f)))


@given(st.dictionaries(st.sampled_from(["timestamp", "spike", "flat_line", "gross_range"]), st.just(0), min_size=1))
def test_pack_unpack_round_trip(names: dict[str, int]) -> None:
    rng = np.random.default_rng(len(names))
    flags = {n: rng.choice(sorted(ALLOWED), 7).astype(np.uint8) for n in names}
    back = unpack_flags(pack_flags(flags))
    assert set(back) == set(flags)
    assert all((back[n] == flags[n]).all() for n in flags)


@settings(max_examples=200)
@given(timed())
def test_every_test_returns_allowed_flags_aligned_with_input(tv: tuple[np.ndarray, np.ndarray]) -> None:
    t, v = tv
    results = [
        gross_range_test(v, fail_span=(-4, 4), suspect_span=(-2, 2)),
        spike_test(v, suspect_threshold=1, fail_threshold=3),
        rate_of_change_test(t, v, threshold_per_s=0.05),
        flat_line_test(t, v, suspect_seconds=60, fail_seconds=120, tolerance=0.3),
        time_gap_test(t, max_gap_seconds=100),
        timestamp_test(t, now=500, max_future_seconds=10, not_before=5),
        duplicate_and_order_test(t),
    ]
    for r in results:
        assert r.dtype == np.uint8 and r.shape == v.shape
        assert set(np.unique(r).tolist()) <= ALLOWED
    for r in results[:4]:
        assert ((r == QcFlag.MISSING) == np.isnan(v)).all()


def reference_spike(v: list[float], low: float, high: float) -> list[int]:
    valid = [i for i, x in enumerate(v) if math.isfinite(x)]
    out = [QcFlag.MISSING if math.isnan(x) else QcFlag.NOT_EVALUATED for x in v]
    for k in range(1, len(valid) - 1):
        a, b, c = (v[valid[k - 1]], v[valid[k]], v[valid[k + 1]])
        dev = abs(b - (a + c) / 2)
        out[valid[k]] = QcFlag.FAIL if dev > high else QcFlag.SUSPECT if dev > low else QcFlag.GOOD
    return [int(f) for f in out]


@settings(max_examples=300)
@given(readings)
def test_spike_matches_reference(v: list[float]) -> None:
    assert spike_test(v, suspect_threshold=1, fail_threshold=3).tolist() == reference_spike(v, 1, 3)


def reference_rate(t: list[float], v: list[float], limit: float) -> list[int]:
    out = [QcFlag.MISSING if math.isnan(x) else QcFlag.NOT_EVALUATED for x in v]
    prev = None
    for i, (ti, x) in enumerate(zip(t, v, strict=True)):
        if not (math.isfinite(x) and math.isfinite(ti)):
            continue
        if prev is not None and ti > t[prev]:
            out[i] = QcFlag.SUSPECT if abs(x - v[prev]) / (ti - t[prev]) > limit else QcFlag.GOOD
        prev = i
    return [int(f) for f in out]


@settings(max_examples=300)
@given(timed())
def test_rate_of_change_matches_reference(tv: tuple[np.ndarray, np.ndarray]) -> None:
    t, v = tv
    assert rate_of_change_test(t, v, threshold_per_s=0.05).tolist() == reference_rate(list(t), list(v), 0.05)


def reference_flat(t: list[float], v: list[float], suspect: float, fail: float, tol: float) -> list[int]:
    """The documented definition, computed the slow way."""
    out = [int(QcFlag.MISSING) if math.isnan(x) else int(QcFlag.NOT_EVALUATED) for x in v]
    idx = [i for i, x in enumerate(v) if math.isfinite(x) and math.isfinite(t[i])]
    near_start = exact_start = 0
    for k, i in enumerate(idx):
        if k and not abs(v[i] - v[idx[k - 1]]) < tol:
            near_start = k
        if k and v[i] != v[idx[k - 1]]:
            exact_start = k
        window = [v[j] for j in idx[near_start : k + 1]]
        duration = t[i] - t[idx[exact_start]]
        if max(window) - min(window) < tol:
            duration = max(duration, t[i] - t[idx[near_start]])
        out[i] = int(QcFlag.FAIL if duration >= fail else QcFlag.SUSPECT if duration >= suspect else QcFlag.GOOD)
    return out


@settings(max_examples=300)
@given(timed(), st.sampled_from([0.0, 0.25, 0.3, 1.0, 2.6]))
def test_flat_line_matches_reference(tv: tuple[np.ndarray, np.ndarray], tol: float) -> None:
    t, v = tv
    got = flat_line_test(t, v, suspect_seconds=60, fail_seconds=120, tolerance=tol)
    assert got.tolist() == reference_flat(list(t), list(v), 60, 120, tol)


@given(st.integers(0, 80), st.sampled_from([1.0, 30.0, 60.0]), st.floats(-1e6, 1e6, allow_nan=False))
def test_flat_line_on_a_constant_series(n: int, dt: float, level: float) -> None:
    t = 1.7e9 + np.arange(n) * dt
    got = flat_line_test(t, np.full(n, level), suspect_seconds=600, fail_seconds=1800, tolerance=1e-9)
    elapsed = t - t[0] if n else t
    expected = np.where(elapsed >= 1800, QcFlag.FAIL, np.where(elapsed >= 600, QcFlag.SUSPECT, QcFlag.GOOD))
    assert got.tolist() == expected.tolist()
    if n * dt > 1800 + dt:
        assert (got[-1], got[0]) == (QcFlag.FAIL, QcFlag.GOOD)


@given(timed())
def test_nan_is_transparent_to_neighbour_tests(tv: tuple[np.ndarray, np.ndarray]) -> None:
    """Dropping the NaN readings changes no other reading's flag."""
    t, v = tv
    keep = ~np.isnan(v)
    assume(not keep.all())
    for test in (
        lambda tt, vv: spike_test(vv, suspect_threshold=1, fail_threshold=3),
        lambda tt, vv: rate_of_change_test(tt, vv, threshold_per_s=0.05),
        lambda tt, vv: flat_line_test(tt, vv, suspect_seconds=60, fail_seconds=120, tolerance=0.3),
    ):
        assert (test(t, v)[keep] == test(t[keep], v[keep])).all()


@given(hnp.arrays(np.float64, st.integers(0, 40), elements=st.floats(-1e3, 1e3)))
def test_gross_range_flags_follow_the_spans(v: np.ndarray) -> None:
    got = gross_range_test(v, fail_span=(-100, 100), suspect_span=(-10, 10))
    assert ((got == QcFlag.FAIL) == (np.abs(v) > 100)).all()
    assert ((got == QcFlag.SUSPECT) == ((np.abs(v) > 10) & (np.abs(v) <= 100))).all()


@given(st.lists(st.sampled_from([0.0, 1.0, 2.0, 3.0, math.nan]), max_size=30))
def test_duplicate_and_order_matches_reference(times: list[float]) -> None:
    seen: set[float] = set()
    latest = -math.inf
    expected = []
    for x in times:
        if math.isnan(x):
            expected.append(QcFlag.NOT_EVALUATED)
            continue
        expected.append(QcFlag.FAIL if x in seen else QcFlag.SUSPECT if x < latest else QcFlag.GOOD)
        seen.add(x)
        latest = max(latest, x)
    assert duplicate_and_order_test(times).tolist() == [int(f) for f in expected]
