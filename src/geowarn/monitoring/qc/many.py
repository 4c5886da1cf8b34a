"""Run QC for many sensor channels in one pass: :func:`run_qc_many`, with results identical to :func:`run_qc`.

An ingestion batch holds readings of thousands of channels, often one reading each. Calling
:func:`~geowarn.monitoring.qc.run.run_qc` per channel costs dozens of tiny numpy calls per channel; here
every channel is a *segment* of concatenated arrays, each test runs once over all segments (the
neighbour tests never look across a segment boundary, see :mod:`geowarn.monitoring.qc.checks`), and the
limits come from a small table of distinct configs indexed per segment. The order of evaluation, the use
of history and the revisions are exactly those of ``run_qc`` (whose docstring explains them); for every
segment the flags, aggregate and revisions equal what ``run_qc`` returns for that channel alone (property
tested in ``tests/monitoring/test_qc_many.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt

from geowarn.errors import InvalidInput
from geowarn.monitoring.qc._segments import IndexArray
from geowarn.monitoring.qc.checks import flat_line_test, rate_of_change_test, spike_test
from geowarn.monitoring.qc.config import QcConfig
from geowarn.monitoring.qc.flags import (
    _RANK,
    _SHIFT,
    TEST_ORDER,
    FlagArray,
    QcFlag,
    pack_trusted,
    worst_flag,
)
from geowarn.monitoring.qc.run import FlagRevision, QcResult
from geowarn.monitoring.qc.timing import (
    TimeLike,
    as_epoch_scalar,
    as_epoch_seconds,
    duplicate_and_order_test,
    time_gap_test,
)

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
Revisions = dict[str, tuple[IndexArray, FlagArray]]


@dataclass(frozen=True, slots=True)
class QcHistories:
    """The last stored readings of every segment, concatenated (see :class:`~geowarn.monitoring.qc.run.QcHistory`).

    ``segments`` gives each row's segment number; rows are sorted by segment (non-decreasing) and, within a
    segment, in arrival order. ``packed_flags``, if given, holds the stored :func:`pack_flags` of every row.
    """

    times: TimeLike
    values: npt.ArrayLike
    segments: npt.ArrayLike
    packed_flags: npt.ArrayLike | None = None


@dataclass(frozen=True, slots=True)
class QcManyResult:
    """Columnar results of :func:`run_qc_many`, one row per batch reading (in input order).

    ``flags`` has a uint8 array per test that ran for at least one segment; it is 0 on the rows of segments
    whose config does not run that test (as in :func:`pack_flags`). ``packed`` is :func:`pack_flags` of
    each row. ``revisions`` maps a test to (history rows, settled flags): rows index the concatenated
    history, at most one per segment (see :func:`apply_revisions_many`).
    """

    flags: dict[str, FlagArray]
    aggregate: FlagArray
    packed: npt.NDArray[np.int32]
    revisions: Revisions
    batch_offsets: IndexArray
    history_offsets: IndexArray
    tests_of_segment: tuple[tuple[str, ...], ...]

    def segment(self, s: int) -> QcResult:
        """What :func:`run_qc` returns for segment ``s`` alone (revision indices local to its history)."""
        a, b = int(self.batch_offsets[s]), int(self.batch_offsets[s + 1])
        h0, h1 = int(self.history_offsets[s]), int(self.history_offsets[s + 1])
        revisions = []
        for test, (rows, flags) in self.revisions.items():
            inside = (rows >= h0) & (rows < h1)
            for r, f in zip(rows[inside].tolist(), flags[inside].tolist(), strict=True):
                revisions.append(FlagRevision(r - h0, test, QcFlag(f)))
        return QcResult(
            # a test is absent from ``flags`` when no row runs it; then this segment has no rows either
            flags={name: self.flags.get(name, self.aggregate)[a:b].copy() for name in self.tests_of_segment[s]},
            aggregate=self.aggregate[a:b].copy(),
            revisions=tuple(revisions),
        )


@dataclass(frozen=True, slots=True)
class _Limits:
    """Per-config limits as arrays over the distinct configs (NaN / False where a test is off)."""

    on: dict[str, BoolArray]
    max_future: FloatArray
    max_gap: FloatArray
    fail_lo: FloatArray
    fail_hi: FloatArray
    suspect_lo: FloatArray
    suspect_hi: FloatArray
    spike_suspect: FloatArray
    spike_fail: FloatArray
    rate: FloatArray
    flat_suspect: FloatArray
    flat_fail: FloatArray
    flat_tolerance: FloatArray
    exempt: FloatArray  # (configs, most exempt values), NaN padded
    tests: tuple[tuple[str, ...], ...]

    @classmethod
    def of(cls, configs: Sequence[QcConfig]) -> _Limits:
        k = len(configs)
        nan = np.full((13, k), np.nan)
        on = {name: np.zeros(k, dtype=bool) for name in TEST_ORDER}
        width = max((len(c.flat_line.exempt_values) for c in configs if c.flat_line), default=0)
        exempt = np.full((k, width), np.nan)
        tests = []
        for i, c in enumerate(configs):
            if c.timestamp is not None:
                on["timestamp"][i], nan[0, i] = True, c.timestamp.max_future_seconds
            on["duplicate_and_order"][i] = c.duplicate_and_order
            if c.time_gap is not None:
                on["time_gap"][i], nan[1, i] = True, c.time_gap.max_gap_seconds
            if c.gross_range is not None:
                (lo, hi), suspect = c.gross_range.spans(c.interval_seconds)
                slo, shi = suspect if suspect is not None else (lo, hi)
                if min(slo, shi) < min(lo, hi) or max(slo, shi) > max(lo, hi):
                    raise InvalidInput(
                        f"suspect span {suspect} must lie within fail span {(lo, hi)}",
                        message_zh="可疑范围必须位于失败范围之内",
                    )
                on["gross_range"][i] = True
                nan[2:6, i] = min(lo, hi), max(lo, hi), min(slo, shi), max(slo, shi)
            if c.spike is not None:
                on["spike"][i], nan[6:8, i] = True, (c.spike.suspect_threshold, c.spike.fail_threshold)
            if c.rate_of_change is not None:
                on["rate_of_change"][i], nan[8, i] = True, c.rate_of_change.threshold_per_s
            if c.flat_line is not None:
                f = c.flat_line
                on["flat_line"][i], nan[9:12, i] = True, (f.suspect_seconds, f.fail_seconds, f.tolerance)
                exempt[i, : len(f.exempt_values)] = f.exempt_values
            tests.append(tuple(name for name in TEST_ORDER if on[name][i]))
        return cls(on, *nan[:12], exempt=exempt, tests=tuple(tests))  # type: ignore[misc]


def _offsets(counts: npt.NDArray[np.intp]) -> IndexArray:
    out = np.zeros(counts.size + 1, dtype=np.intp)
    np.cumsum(counts, out=out[1:])
    return out


def _segment_numbers(segments: npt.ArrayLike, n: int, m: int, what: str) -> IndexArray:
    s = np.asarray(segments)
    if s.shape != (n,) or (n and s.dtype.kind not in "iu"):
        raise InvalidInput(f"{what} segments must be {n} integers", message_zh="分段编号无效")
    s = s.astype(np.intp, copy=False)
    if n and (s[0] < 0 or s[-1] >= m or np.any(s[1:] < s[:-1])):
        raise InvalidInput(
            f"{what} segments must be sorted numbers in [0, {m})", message_zh="分段编号必须有序且小于分段数"
        )
    return s


def run_qc_many(
    times: TimeLike,
    values: npt.ArrayLike,
    segments: npt.ArrayLike,
    configs: Sequence[QcConfig],
    config_index: npt.ArrayLike,
    *,
    now: float | np.datetime64 | datetime,
    installed_at: npt.ArrayLike | None = None,
    histories: QcHistories | None = None,
) -> QcManyResult:
    """Run :func:`run_qc` for many segments (sensor channels) at once.

    ``times`` / ``values`` are the batch readings of all segments, concatenated; ``segments`` gives each
    reading's segment number, sorted (rows of a segment contiguous and in arrival order). There are
    ``len(config_index)`` segments; segment ``s`` uses ``configs[config_index[s]]`` (pass each distinct
    config once: the limits are tabulated per config). ``installed_at`` holds one installation time per
    segment (epoch seconds; NaN when unknown); ``histories`` the stored readings of each segment. A
    segment may have no batch rows or no history rows.
    """
    bt = as_epoch_seconds(times)
    bv = np.asarray(values, dtype=np.float64).reshape(-1)
    if bt.size != bv.size:
        raise InvalidInput("times and values differ in length", message_zh="时间与数值的个数不一致")
    cfg_of_seg = np.asarray(config_index, dtype=np.intp).reshape(-1)
    m = cfg_of_seg.size
    if m and (cfg_of_seg.min() < 0 or cfg_of_seg.max() >= len(configs)):
        raise InvalidInput("config_index must index configs", message_zh="质控配置编号超出范围")
    bseg = _segment_numbers(segments, bt.size, m, "batch")
    installed = np.full(m, np.nan) if installed_at is None else as_epoch_seconds(installed_at)
    if installed.shape != (m,):
        raise InvalidInput("installed_at needs one time per segment", message_zh="安装时间的个数与分段数不一致")
    limits = _Limits.of(configs)
    batch_offsets = _offsets(np.bincount(bseg, minlength=m))

    # Lay out each segment's history, then its batch, in one series.
    stored_packed = None
    if histories is None:
        history_offsets = np.zeros(m + 1, dtype=np.intp)
        t, v, seg = bt, bv, bseg
        hpos = np.zeros(0, dtype=np.intp)
        bpos: IndexArray | slice = slice(None)
    else:
        ht = as_epoch_seconds(histories.times)
        hv = np.asarray(histories.values, dtype=np.float64).reshape(-1)
        if ht.size != hv.size:
            raise InvalidInput("history times and values differ in length", message_zh="历史数据时间与数值个数不一致")
        hseg = _segment_numbers(histories.segments, ht.size, m, "history")
        history_offsets = _offsets(np.bincount(hseg, minlength=m))
        hpos = np.arange(ht.size) + batch_offsets[hseg]
        bpos = np.arange(bt.size) + history_offsets[bseg + 1]
        n = ht.size + bt.size
        t, v, seg = np.empty(n), np.empty(n), np.empty(n, dtype=np.intp)
        t[hpos], t[bpos], v[hpos], v[bpos], seg[hpos], seg[bpos] = ht, bt, hv, bv, hseg, bseg
        if histories.packed_flags is not None:
            stored_packed = np.asarray(histories.packed_flags, dtype=np.int32).reshape(-1)
            if stored_packed.size != ht.size:
                raise InvalidInput("history packed flags differ in length", message_zh="历史数据质控标志个数不一致")

    cfg = cfg_of_seg[seg]
    is_history = np.zeros(t.size, dtype=bool)
    is_history[hpos] = True
    flags, usable = _evaluate(t, v, seg, cfg, limits, now, installed[seg], is_history, stored_packed)

    # run_qc settles the spike flag of the last usable, valid stored reading of each channel.
    revisions: Revisions = {}
    if "spike" in flags and hpos.size:
        rows = np.flatnonzero(is_history & limits.on["spike"][cfg] & usable & np.isfinite(v))
        last = np.ones(rows.size, dtype=bool)
        last[:-1] = seg[rows[1:]] != seg[rows[:-1]]
        rows = rows[last]
        revisions["spike"] = (rows - batch_offsets[seg[rows]], flags["spike"][rows])

    out = {name: f[bpos] for name, f in flags.items()}
    agg = worst_flag(out.values(), bt.size)
    agg[np.isnan(bv)] = QcFlag.MISSING
    return QcManyResult(
        flags=out,
        aggregate=agg,
        packed=pack_trusted(out, bt.size),
        revisions=revisions,
        batch_offsets=batch_offsets,
        history_offsets=history_offsets,
        tests_of_segment=tuple(limits.tests[i] for i in cfg_of_seg.tolist()),
    )


def _evaluate(
    t: FloatArray,
    v: FloatArray,
    seg: IndexArray,
    cfg: IndexArray,
    limits: _Limits,
    now: float | np.datetime64 | datetime,
    installed: FloatArray,
    is_history: BoolArray,
    stored_packed: npt.NDArray[np.int32] | None,
) -> tuple[dict[str, FlagArray], BoolArray]:
    """Every enabled test over the laid-out series; 0 where a row's config does not run the test.

    Follows :func:`run_qc` step by step. Also returns which rows serve as context for the value tests.
    """
    n = t.size
    flags: dict[str, FlagArray] = {}
    usable = np.isfinite(t)
    missing = np.isnan(v)

    def rows_on(name: str) -> BoolArray | None:
        on = limits.on[name][cfg]
        return on if on.any() else None

    def context_test(on: BoolArray, test: Callable[[IndexArray], FlagArray], mark_missing: bool) -> FlagArray:
        """``test`` on the usable rows of the segments that run it (run_qc's ``_on_subset``)."""
        out = np.zeros(n, dtype=np.uint8)
        out[on] = QcFlag.NOT_EVALUATED
        subset = np.flatnonzero(on & usable)
        out[subset] = test(subset)
        if mark_missing:
            out[on & missing] = QcFlag.MISSING
        return out

    if (on := rows_on("timestamp")) is not None:
        latest = as_epoch_scalar(now) + limits.max_future[cfg]
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(t) | (t > latest) | (t < installed)
        f = np.where(bad, np.uint8(QcFlag.FAIL), np.uint8(QcFlag.GOOD))
        f[~on] = 0
        flags["timestamp"] = f
        usable &= ~(on & bad)
    if stored_packed is not None:
        # Stored verdicts on time decide which stored readings are context (run_qc's _history_usable):
        # a test counts as stored for a channel when its field is non-zero on any of its stored rows.
        hist_seg = seg[is_history]
        ok = np.isfinite(t[is_history])
        for name in ("timestamp", "duplicate_and_order"):
            field = (stored_packed >> _SHIFT[name]) & 0xF
            stored = np.bincount(hist_seg, weights=field != 0) > 0
            ok &= ~stored[hist_seg] | (field == QcFlag.GOOD)
        usable[is_history] = ok
    if (on := rows_on("duplicate_and_order")) is not None:
        r = np.flatnonzero(on)
        f = np.zeros(n, dtype=np.uint8)
        f[r] = duplicate_and_order_test(t[r], ignore=~usable[r], segments=seg[r])
        flags["duplicate_and_order"] = f
        follow = on if stored_packed is None else on & ~is_history
        usable[follow] &= f[follow] == QcFlag.GOOD
    if (on := rows_on("time_gap")) is not None:
        gap = limits.max_gap[cfg]
        flags["time_gap"] = context_test(
            on, lambda s: time_gap_test(t[s], max_gap_seconds=gap[s], segments=seg[s]), mark_missing=False
        )
    if (on := rows_on("gross_range")) is not None:
        c = cfg[on]
        f = np.zeros(n, dtype=np.uint8)
        x = v[on]
        g = np.full(x.size, np.uint8(QcFlag.GOOD))
        with np.errstate(invalid="ignore"):
            g[(x < limits.suspect_lo[c]) | (x > limits.suspect_hi[c])] = QcFlag.SUSPECT
            g[(x < limits.fail_lo[c]) | (x > limits.fail_hi[c])] = QcFlag.FAIL
        g[np.isnan(x)] = QcFlag.MISSING
        f[on] = g
        flags["gross_range"] = f
    if (on := rows_on("spike")) is not None:
        sus, fail = limits.spike_suspect[cfg], limits.spike_fail[cfg]
        flags["spike"] = context_test(
            on,
            lambda s: spike_test(v[s], suspect_threshold=sus[s], fail_threshold=fail[s], segments=seg[s]),
            mark_missing=True,
        )
    if (on := rows_on("rate_of_change")) is not None:
        rate = limits.rate[cfg]
        flags["rate_of_change"] = context_test(
            on,
            lambda s: rate_of_change_test(t[s], v[s], threshold_per_s=rate[s], segments=seg[s]),
            mark_missing=True,
        )
    if (on := rows_on("flat_line")) is not None:
        fs, ff, tol = limits.flat_suspect[cfg], limits.flat_fail[cfg], limits.flat_tolerance[cfg]
        exempt = limits.exempt[cfg] if limits.exempt.shape[1] else None
        flags["flat_line"] = context_test(
            on,
            lambda s: flat_line_test(
                t[s],
                v[s],
                suspect_seconds=fs[s],
                fail_seconds=ff[s],
                tolerance=tol[s],
                exempt_values=() if exempt is None else exempt[s],
                segments=seg[s],
            ),
            mark_missing=True,
        )
    return flags, usable


def apply_revisions_many(
    packed: npt.ArrayLike, aggregate_flags: npt.ArrayLike, revisions: Mapping[str, tuple[IndexArray, FlagArray]]
) -> tuple[npt.NDArray[np.int32], FlagArray]:
    """Stored packed and aggregate flags of the concatenated history with ``revisions`` applied.

    Row by row the same as :func:`~geowarn.monitoring.qc.run.apply_revisions`: the revised field is
    replaced and the aggregate is recomputed from the row's per-test flags (MISSING stays MISSING).
    """
    p = np.array(packed, dtype=np.int32, copy=True).reshape(-1)
    agg = np.array(aggregate_flags, dtype=np.uint8, copy=True).reshape(-1)
    touched = []
    for test, (rows, flags) in revisions.items():
        if test not in _SHIFT:
            raise InvalidInput(f"unknown QC test {test!r}", message_zh="未知的质控检验项")
        shift = _SHIFT[test]
        p[rows] = (p[rows] & ~np.int32(0xF << shift)) | (np.asarray(flags).astype(np.int32) << shift)
        touched.append(np.asarray(rows, dtype=np.intp))
    if not touched:
        return p, agg
    rows = np.unique(np.concatenate(touched))
    fields = {name: ((p[rows] >> shift) & 0xF).astype(np.uint8) for name, shift in _SHIFT.items()}
    for f in fields.values():
        if ((_RANK[f] == 0) & (f != 0)).any():
            raise InvalidInput("stored flag values must be QARTOD flags 1, 2, 3, 4 or 9", message_zh="质控标志取值无效")
    new = worst_flag(fields.values(), rows.size)
    agg[rows] = np.where(agg[rows] == QcFlag.MISSING, agg[rows], new)
    return p, agg
