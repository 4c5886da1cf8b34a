"""The per-sensor QC state stands for the whole stored series: QC of every batch against the compact
history built from it equals QC against all stored readings (flags and settled spike revisions), and
folding a batch into it gives the state of the longer series."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from geowarn.monitoring.qc import QcConfig, QcHistories, apply_revisions_many, qc_config_for, run_qc_many
from geowarn.monitoring.qc_state import (
    NO_T,
    QcStates,
    Rows,
    compact_history,
    config_key,
    flat_tolerance,
    fold_states,
    usable_fields,
    usable_history,
)

NOW_MS = 1_800_000_000_000
T0 = NOW_MS - 86_400_000
STEP = 60_000
SMALL: dict[str, Any] = {
    "interval_seconds": 60,
    "time_gap": {"max_gap_seconds": 150},
    "gross_range": {"fail_span": [-100, 100], "suspect_span": [-50, 50]},
    "spike": {"suspect_threshold": 1, "fail_threshold": 3},
    "rate_of_change": {"threshold_per_s": 0.05},
    "flat_line": {"suspect_seconds": 240, "fail_seconds": 480, "tolerance": 0.01, "exempt_values": [0.0]},
}
CONFIGS: list[QcConfig] = [
    qc_config_for("GP", overrides=SMALL),
    qc_config_for("GP", overrides={**SMALL, "flat_line": {**SMALL["flat_line"], "tolerance": 0}}),
    qc_config_for("GP", overrides={**SMALL, "flat_line": {**SMALL["flat_line"], "tolerance": 0.5}}),  # drifts
    qc_config_for("GP", overrides={**SMALL, "flat_line": None}),
    qc_config_for("GP", overrides={**SMALL, "timestamp": None, "time_gap": None}),
    qc_config_for("RAIN", overrides={"interval_seconds": 60, "flat_line": {"suspect_seconds": 180}}),
]


@dataclass
class Stored:
    """One sensor's stored readings by time: value, packed flags, aggregate flag."""

    rows: dict[int, list[float]] = field(default_factory=dict)

    def history(self) -> Rows:
        ts = sorted(self.rows)
        return Rows(
            np.zeros(len(ts), np.intp),
            np.array(ts, np.int64),
            np.array([self.rows[t][0] for t in ts], np.float64),
            np.array([self.rows[t][1] for t in ts], np.int32),
            np.array([self.rows[t][2] for t in ts], np.uint8),
        )


def _qc(cfg: QcConfig, t: np.ndarray, v: np.ndarray, ctx: Rows) -> Any:
    return run_qc_many(
        t / 1000.0, v, np.zeros(t.size, np.intp), [cfg], [0], now=NOW_MS / 1000.0,
        histories=QcHistories(ctx.t_ms / 1000.0, ctx.value, ctx.seg, ctx.packed),
    )  # fmt: skip


def _revised(ctx: Rows, result: Any) -> list[tuple[int, int, int]]:
    """(time, packed, aggregate) of the context rows the batch settles, where they change."""
    if not result.revisions:
        return []
    packed, agg = apply_revisions_many(ctx.packed, ctx.flag, result.revisions)
    rows = np.unique(np.concatenate([r for r, _ in result.revisions.values()]))
    rows = rows[(packed[rows] != ctx.packed[rows]) | (agg[rows] != ctx.flag[rows])]
    return list(zip(ctx.t_ms[rows].tolist(), packed[rows].tolist(), agg[rows].tolist(), strict=True))


def _usable(result: Any) -> np.ndarray:
    ok = np.ones(result.aggregate.size, dtype=bool)
    for name in ("timestamp", "duplicate_and_order"):
        f = result.flags.get(name)
        if f is not None:
            ok &= (f == 0) | (f == 1)
    return ok


def stream(cfg: QcConfig, batches: list[list[tuple[int, float]]]) -> None:
    """Ingest ``batches`` against the state; after each, compare with QC over the whole stored series."""
    tol = np.array([flat_tolerance(cfg)])
    key = np.array([config_key(cfg)], np.int64)
    state = QcStates.empty(1)
    stored = Stored()
    for raw in batches:
        pairs = sorted(dict(reversed(raw)).items())  # ingest keeps the first of each time, sorted by time
        t = np.array([p[0] for p in pairs], np.int64)
        v = np.array([p[1] for p in pairs], np.float64)
        ctx = compact_history(state, np.array([0]), tol, np.array([usable_fields(cfg)], np.int32))
        whole = stored.history()
        got, want = _qc(cfg, t, v, ctx), _qc(cfg, t, v, whole)
        new = np.array([x not in stored.rows for x in t.tolist()], dtype=bool)
        # Flags of readings not stored (duplicates of stored times) are never seen; the rest must agree.
        assert got.aggregate[new].tolist() == want.aggregate[new].tolist(), (ctx, whole, t, v)
        assert got.packed[new].tolist() == want.packed[new].tolist(), (ctx, whole, t, v)
        assert _revised(ctx, got) == _revised(whole, want)
        for tt, packed, agg in _revised(whole, want):
            stored.rows[tt][1:] = [packed, agg]
        if got.revisions:
            ctx.packed, ctx.flag = apply_revisions_many(ctx.packed, ctx.flag, got.revisions)
        for i in np.flatnonzero(new).tolist():
            stored.rows[int(t[i])] = [float(v[i]), int(got.packed[i]), int(got.aggregate[i])]
        keep = new & _usable(got)
        batch = Rows(np.zeros(int(keep.sum()), np.intp), t[keep], v[keep], got.packed[keep],
                     got.aggregate[keep].astype(np.uint8))  # fmt: skip
        max_t = np.array([max(stored.rows)], np.int64)
        state = fold_states(ctx.take(usable_history(ctx, 1)), batch, 1, tol, key, max_t)
        # The state folded from the compact history equals the state of the whole series.
        whole = stored.history()
        full = fold_states(whole.take(usable_history(whole, 1)), batch.take(slice(0, 0)), 1, tol, key, max_t)
        for name in ("last_t", "t1", "v1", "q1", "f1", "t0", "v0", "near_t", "exact_t", "max_t"):
            assert np.array_equal(getattr(state, name), getattr(full, name), equal_nan=True), name
        drifted = (full.near_hi - full.near_lo >= tol) & (state.near_hi - state.near_lo >= tol)
        if not drifted[0]:  # a drifted run is stood for by other values as wide (it no longer counts as flat)
            assert np.array_equal([state.near_lo, state.near_hi], [full.near_lo, full.near_hi], equal_nan=True)


# A series: steps in time (mostly one interval, sometimes a gap, a repeat or a late reading) and moves in
# value: a repeat, small steps up and down (below some tolerances, above others, so flat runs drift),
# a jump, a spike, a zero (exempt from the flat line), a missing value.
MOVES = {"same": 0.0, "micro": 0.0004, "tiny": 0.004, "down": -0.004, "drift": 0.3, "step": 0.7}
moves = st.lists(
    st.tuples(
        st.sampled_from([1, 1, 1, 1, 3, 0, -2, -5]),
        st.sampled_from(["same"] * 3 + ["micro", "tiny", "tiny", "down", "drift", "step", "spike", "zero", "nan"]),
    ),
    min_size=1,
    max_size=80,
)


def series(spec: list[tuple[int, str]]) -> list[tuple[int, float]]:
    out, t, v = [], T0, 1.0
    for dt, move in spec:
        t += dt * STEP
        if move in MOVES:
            v = round(v + MOVES[move], 6)
        elif move == "zero":
            v = 0.0
        value = math.nan if move == "nan" else (v + 9.0 if move == "spike" else v)
        out.append((t, value))
    return out


@settings(max_examples=1000, deadline=None)
@given(moves, st.lists(st.integers(1, 7), min_size=1, max_size=30), st.sampled_from(range(len(CONFIGS))))
def test_batches_against_the_state_equal_batches_against_the_whole_series(
    spec: list[tuple[int, str]], sizes: list[int], which: int
) -> None:
    readings = series(spec)
    batches, i = [], 0
    for n in sizes * (len(readings) // max(sum(sizes), 1) + 1):
        if i >= len(readings):
            break
        batches.append(readings[i : i + n])
        i += n
    stream(CONFIGS[which], batches)


def test_a_month_long_flat_run_is_caught_from_three_rows() -> None:
    """A crack meter stuck for 31 days at one reading a day: the state keeps the run's start, so the
    compact history has three rows (not 31), and the last reading fails the flat-line test (30-day window)."""
    cfg = qc_config_for("LF", overrides={"interval_seconds": 86_400, "time_gap": None})
    day = 86_400_000
    start = NOW_MS - 40 * day
    stream(cfg, [[(start + d * day, 5.0)] for d in range(32)])
    state = QcStates.empty(1)
    tol, key = np.array([flat_tolerance(cfg)]), np.array([config_key(cfg)], np.int64)
    rows = Rows(np.zeros(31, np.intp), start + np.arange(31) * day, np.full(31, 5.0), np.full(31, 0x11, np.int32),
                np.ones(31, np.uint8))  # fmt: skip
    state = fold_states(rows.take(slice(0, 0)), rows, 1, tol, key, np.array([rows.t_ms[-1]]))
    assert (state.near_t[0], state.exact_t[0], state.t1[0]) == (start, start, start + 30 * day)
    ctx = compact_history(state, np.array([0]), tol, np.array([usable_fields(cfg)], np.int32))
    assert ctx.t_ms.tolist() == [start, start + 29 * day, start + 30 * day]
    result = _qc(cfg, np.array([start + 31 * day]), np.array([5.0]), ctx)
    assert result.flags["flat_line"].tolist() == [4]


def test_no_state_means_empty_context() -> None:
    ctx = compact_history(QcStates.empty(3), np.arange(3), np.full(3, 0.01), np.zeros(3, np.int32))
    assert ctx.seg.size == 0
    assert QcStates.empty(2).t1.tolist() == [NO_T, NO_T]


DRIFT = qc_config_for("GP", overrides={**SMALL, "flat_line": {"suspect_seconds": 240, "fail_seconds": 480,
                                                               "tolerance": 0.5}})  # fmt: skip
# Binary-exact values: a run that drifts by sub-tolerance steps to exactly the tolerance and on (no longer
# flat), and a step of exactly the tolerance (a new run), each followed by small non-zero steps.
DRIFTING = [1.0, 1.25, 1.5, 1.5625, 1.625, 1.6875, 1.75, 1.8125, 1.875, 1.9375]
EDGE = [1.0, 1.5, 1.5625, 1.625, 1.6875, 1.75, 1.8125, 1.875, 1.9375, 2.0]


def test_drifting_and_edge_runs_stream_as_the_whole_series() -> None:
    for values in (DRIFTING, EDGE):
        readings = [(T0 + i * STEP, v) for i, v in enumerate(values)]
        for size in (1, 2, 3):
            stream(DRIFT, [readings[i : i + size] for i in range(0, len(readings), size)])
    # The edge series starts a new run at 1.5 (a step of exactly the tolerance): from there it is flat
    # (range below 0.5) for four minutes and more, so the readings after are suspect.
    t = np.array([T0 + i * STEP for i in range(len(EDGE))])
    empty = Rows(np.zeros(0, np.intp), np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int32), np.zeros(0, np.uint8))
    flags = _qc(DRIFT, t, np.array(EDGE), empty).flags["flat_line"].tolist()
    assert flags == [1, 1, 1, 1, 1, 3, 3, 3, 3, 1]  # at 2.0 the run is 0.5 wide: no longer flat
    drifting = _qc(DRIFT, t, np.array(DRIFTING), empty).flags["flat_line"].tolist()
    assert drifting == [1] * 10
