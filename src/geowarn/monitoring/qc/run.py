"""Run the configured QC tests on a batch of one sensor channel's readings, with stored history as context.

Readings arrive in small batches (often one). The spike, rate-of-change and flat-line tests need the
readings before, so :func:`run_qc` takes the sensor's last stored readings as ``history``, evaluates the
history and the batch together, and returns flags for the batch only. The spike test of the last valid
stored reading could not be evaluated when it arrived (it had no next reading); it is settled now and
returned as a :class:`FlagRevision` for the caller to apply to storage (:func:`apply_revisions`).
With ``history`` (in arrival order, with its stored ``packed_flags``) reaching
:attr:`QcConfig.history_seconds` back plus two readings, batch-by-batch evaluation gives the same flags as
evaluating the whole series at once, whatever the batch sizes (tested). One limit: a duplicate of a reading
older than the history is seen as out of order (SUSPECT), not as a duplicate; storage should also keep
(sensor, channel, time) unique.

Order of evaluation, after ioos_qc's "QcConfig": time tests first; readings with an impossible time,
a duplicated time or an out-of-order time are then left out of the value tests' context (their spike,
rate-of-change and flat-line flags are NOT_EVALUATED, their value MISSING if NaN), so a re-sent or late
packet does not disturb its neighbours' verdicts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import numpy.typing as npt

from geowarn.errors import InvalidInput
from geowarn.monitoring.qc.checks import flat_line_test, gross_range_test, rate_of_change_test, spike_test
from geowarn.monitoring.qc.config import QcConfig
from geowarn.monitoring.qc.flags import FlagArray, QcFlag, aggregate, full, pack_flags, unpack_flags
from geowarn.monitoring.qc.timing import (
    TimeLike,
    as_epoch_seconds,
    duplicate_and_order_test,
    time_gap_test,
    timestamp_test,
)


@dataclass(frozen=True, slots=True)
class QcHistory:
    """The last stored readings of the channel, in arrival order, before the batch.

    ``packed_flags`` (optional, from :func:`pack_flags`) lets stored verdicts on time decide which stored
    readings serve as context, exactly as when they were first evaluated.
    """

    times: TimeLike
    values: npt.ArrayLike
    packed_flags: npt.ArrayLike | None = None


@dataclass(frozen=True, slots=True)
class FlagRevision:
    """A stored reading whose flag for ``test`` is now settled; ``history_index`` indexes the history."""

    history_index: int
    test: str
    flag: QcFlag


@dataclass(frozen=True, slots=True)
class QcResult:
    """Per-test flags and the aggregate flag of each reading of the batch."""

    flags: dict[str, FlagArray]
    aggregate: FlagArray
    revisions: tuple[FlagRevision, ...] = field(default=())


def _history_usable(history: QcHistory, n: int) -> npt.NDArray[np.bool_] | None:
    if history.packed_flags is None:
        return None
    stored = unpack_flags(np.asarray(history.packed_flags))
    usable = np.ones(n, dtype=bool)
    for name in ("timestamp", "duplicate_and_order"):
        if name in stored:
            usable &= stored[name] == QcFlag.GOOD
    return usable


def run_qc(
    times: TimeLike,
    values: npt.ArrayLike,
    config: QcConfig,
    *,
    now: float | np.datetime64 | datetime,
    installed_at: float | np.datetime64 | datetime | None = None,
    history: QcHistory | None = None,
) -> QcResult:
    """Run every test ``config`` enables on the batch; see the module docstring for the order.

    ``now`` anchors the future-timestamp check; ``installed_at`` (if known) fails readings stamped before
    installation. ``history`` gives context and is stripped from the result. The aggregate is MISSING
    where the value is NaN.
    """
    bt = as_epoch_seconds(times)
    bv = np.asarray(values, dtype=np.float64).reshape(-1)
    if bt.size != bv.size:
        raise InvalidInput("times and values differ in length", message_zh="时间与数值的个数不一致")
    h = 0
    stored_usable = None
    t, v = bt, bv
    if history is not None:
        ht = as_epoch_seconds(history.times)
        hv = np.asarray(history.values, dtype=np.float64).reshape(-1)
        if ht.size != hv.size:
            raise InvalidInput("history times and values differ in length", message_zh="历史数据时间与数值个数不一致")
        h = ht.size
        stored_usable = _history_usable(history, h)
        t, v = np.concatenate((ht, bt)), np.concatenate((hv, bv))

    flags: dict[str, FlagArray] = {}
    usable = np.isfinite(t)
    if config.timestamp is not None:
        flags["timestamp"] = timestamp_test(
            t, now=now, max_future_seconds=config.timestamp.max_future_seconds, not_before=installed_at
        )
        usable &= flags["timestamp"] == QcFlag.GOOD
    if stored_usable is not None:
        usable[:h] = stored_usable & np.isfinite(t[:h])
    if config.duplicate_and_order:
        flags["duplicate_and_order"] = duplicate_and_order_test(t, ignore=~usable)
        order_ok = flags["duplicate_and_order"] == QcFlag.GOOD
        usable[h:] &= order_ok[h:]
        if stored_usable is None:
            usable[:h] &= order_ok[:h]
    if config.time_gap is not None:
        gap = config.time_gap
        flags["time_gap"] = _on_subset(usable, lambda s: time_gap_test(t[s], max_gap_seconds=gap.max_gap_seconds))
    if config.gross_range is not None:
        fail_span, suspect_span = config.gross_range.spans(config.interval_seconds)
        flags["gross_range"] = gross_range_test(v, fail_span=fail_span, suspect_span=suspect_span)
    if config.spike is not None:
        spike = config.spike
        flags["spike"] = _on_subset(
            usable,
            lambda s: spike_test(v[s], suspect_threshold=spike.suspect_threshold, fail_threshold=spike.fail_threshold),
            v,
        )
    if config.rate_of_change is not None:
        limit = config.rate_of_change.threshold_per_s
        flags["rate_of_change"] = _on_subset(
            usable, lambda s: rate_of_change_test(t[s], v[s], threshold_per_s=limit), v
        )
    if config.flat_line is not None:
        flat = config.flat_line
        flags["flat_line"] = _on_subset(
            usable,
            lambda s: flat_line_test(
                t[s],
                v[s],
                suspect_seconds=flat.suspect_seconds,
                fail_seconds=flat.fail_seconds,
                tolerance=flat.tolerance,
                exempt_values=flat.exempt_values,
            ),
            v,
        )

    revisions: tuple[FlagRevision, ...] = ()
    if "spike" in flags and h:
        settled = np.flatnonzero(usable[:h] & np.isfinite(v[:h]))
        if settled.size:
            i = int(settled[-1])
            revisions = (FlagRevision(i, "spike", QcFlag(int(flags["spike"][i]))),)

    batch = {name: f[h:].copy() for name, f in flags.items()}
    agg = aggregate(*batch.values()) if batch else full(bt.size, QcFlag.NOT_EVALUATED)
    agg[np.isnan(bv)] = QcFlag.MISSING
    return QcResult(flags=batch, aggregate=agg, revisions=revisions)


def _on_subset(
    usable: npt.NDArray[np.bool_],
    test: Callable[[npt.NDArray[np.intp]], FlagArray],
    values: npt.NDArray[np.float64] | None = None,
) -> FlagArray:
    """Run ``test`` on the usable readings only; the others are NOT_EVALUATED (MISSING if NaN)."""
    out = full(usable.size, QcFlag.NOT_EVALUATED)
    subset = np.flatnonzero(usable)
    out[subset] = test(subset)
    if values is not None:
        out[np.isnan(values)] = QcFlag.MISSING
    return out


def apply_revisions(
    packed: npt.ArrayLike, aggregate_flags: npt.ArrayLike, revisions: tuple[FlagRevision, ...]
) -> tuple[npt.NDArray[np.int32], FlagArray]:
    """Stored packed flags and aggregate flags of the history, with ``revisions`` applied.

    The aggregate of a revised reading is recomputed from its per-test flags (MISSING stays MISSING).
    """
    p = np.array(packed, dtype=np.int32, copy=True)
    agg = np.array(aggregate_flags, dtype=np.uint8, copy=True)
    if not revisions:
        return p, agg
    rows = np.array(sorted({r.history_index for r in revisions}), dtype=np.intp)
    sub = unpack_flags(p[rows])
    for r in revisions:
        k = int(np.searchsorted(rows, r.history_index))
        sub.setdefault(r.test, full(rows.size, QcFlag.NOT_EVALUATED))[k] = r.flag
    p[rows] = pack_flags(sub)
    new = aggregate(*sub.values())
    agg[rows] = np.where(agg[rows] == QcFlag.MISSING, agg[rows], new)
    return p, agg
