"""Per-sensor QC state: what the QC of a sensor's next readings needs from its stored series, in one row.

QC checks new readings against the sensor's stored readings (:mod:`geowarn.monitoring.quality`). Most tests
look back only a step: the order and time-gap tests at the last usable time, spike and rate of change at
the last two readings with a value. The flat-line test looks back to the start of the current flat run,
weeks for a stable crack meter (its window is 30 days), and reading that history for every batch cost most
of the ingestion time. The ``sensor_qc_state`` row keeps instead, per sensor (times in epoch ms):

* ``last_t``: the last *usable* stored reading (a valid time that passed the timestamp and duplicate/order
  tests: the readings :func:`~geowarn.monitoring.qc.run.run_qc` takes as context);
* ``t1, v1`` and ``t0, v0``: the last two usable readings with a value, and ``q1, f1`` the stored flags of
  the last one (its spike flag is settled when the next reading arrives);
* ``near_t, near_lo, near_hi``: start and value extremes of the flat run (steps below the tolerance) that
  holds the last reading, and ``exact_t`` the start of its run of exact repeats (the flat-line test's runs);
* ``max_t``: the latest stored time, any flag: later readings are certainly new;
* ``config_key``: a digest of the QC config the state was built under (another config rebuilds it).

:func:`compact_history` turns a state into at most seven stored-like rows, real stored times with the
values that matter, which give every test the context that the whole stored series gives; so
``run_qc_many`` over them and a batch returns the flags and the spike revision that it returns over the
whole series (property-tested in ``tests/monitoring/test_qc_state.py``). :func:`fold_states` computes the
state after a batch from those rows (or from a real history) and the readings stored.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from geowarn.monitoring.qc._segments import running_max_in_runs
from geowarn.monitoring.qc.config import QcConfig
from geowarn.monitoring.qc.flags import _SHIFT, QcFlag

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Idx = npt.NDArray[np.intp]

#: Stands for NULL in the integer columns.
NO_T = np.iinfo(np.int64).min
#: Column order of ``sensor_qc_state`` after ``sensor_id``.
COLUMNS = ("config_key", "max_t", "last_t", "t1", "v1", "q1", "f1", "t0", "v0", "near_t", "near_lo", "near_hi",
           "exact_t")  # fmt: skip
FLOAT_COLUMNS = frozenset({"v1", "v0", "near_lo", "near_hi"})
#: Slots of the compact history, in order (see :func:`compact_history`).
_SLOTS = 7
_TS_DUP = ("timestamp", "duplicate_and_order")


@lru_cache(maxsize=4096)
def config_key(config: QcConfig) -> int:
    """A stable 52-bit digest of ``config`` (exact in a float64, as the state is read)."""
    digest = hashlib.blake2b(config.model_dump_json().encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & ((1 << 52) - 1)


def usable_fields(config: QcConfig) -> int:
    """The packed flags of a usable reading in the two time tests (GOOD where the config runs them)."""
    out = 0
    if config.timestamp is not None:
        out |= int(QcFlag.GOOD) << _SHIFT["timestamp"]
    if config.duplicate_and_order:
        out |= int(QcFlag.GOOD) << _SHIFT["duplicate_and_order"]
    return out


def flat_tolerance(config: QcConfig) -> float:
    """The flat-line tolerance (NaN when the test is off: then every step starts a new run)."""
    return config.flat_line.tolerance if config.flat_line is not None else np.nan


@dataclass(slots=True)
class QcStates:
    """States of some sensors as columns; NO_T / NaN stand for NULL."""

    config_key: I64
    max_t: I64
    last_t: I64
    t1: I64
    v1: F64
    q1: npt.NDArray[np.int32]
    f1: npt.NDArray[np.uint8]
    t0: I64
    v0: F64
    near_t: I64
    near_lo: F64
    near_hi: F64
    exact_t: I64

    @classmethod
    def empty(cls, n: int) -> QcStates:
        def col(name: str) -> Any:
            if name in FLOAT_COLUMNS:
                return np.full(n, np.nan)
            if name == "q1":
                return np.zeros(n, np.int32)
            if name == "f1":
                return np.zeros(n, np.uint8)
            return np.full(n, NO_T, np.int64)

        return cls(**{name: col(name) for name in COLUMNS})

    @classmethod
    def from_rows(cls, rows: list[Any], ids: I64) -> QcStates:
        """States aligned with the sorted ``ids`` from ``(sensor_id, *COLUMNS)`` rows (missing ids: empty)."""
        out = cls.empty(ids.size)
        if not rows:
            return out
        a = np.array(rows, dtype=np.float64)  # NULL becomes NaN; every integer here is below 2**53
        pos = np.searchsorted(ids, a[:, 0].astype(np.int64))
        for j, name in enumerate(COLUMNS, start=1):
            target = getattr(out, name)
            col = a[:, j]
            if name in FLOAT_COLUMNS:
                target[pos] = col
            else:
                null = np.isnan(col)
                target[pos] = np.where(null, 0 if name in ("q1", "f1") else NO_T, np.nan_to_num(col)).astype(
                    target.dtype
                )
        return out

    def take(self, idx: Idx) -> QcStates:
        return QcStates(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    def put(self, idx: Idx, other: QcStates) -> None:
        for f in fields(self):
            getattr(self, f.name)[idx] = getattr(other, f.name)

    def __len__(self) -> int:
        return int(self.max_t.size)


@dataclass(slots=True)
class Rows:
    """Stored-like readings of many segments, sorted by segment: the context or a batch of QC."""

    seg: Idx
    t_ms: I64
    value: F64
    packed: npt.NDArray[np.int32]
    flag: npt.NDArray[np.uint8]

    def take(self, idx: Any) -> Rows:
        return Rows(self.seg[idx], self.t_ms[idx], self.value[idx], self.packed[idx], self.flag[idx])

    @classmethod
    def concat(cls, parts: list[Rows]) -> Rows:
        return cls(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)))


def compact_history(states: QcStates, segments: Idx, tolerance: F64, usable_packed: npt.NDArray[np.int32]) -> Rows:
    """At most seven rows per state that stand for the sensor's whole stored series in QC.

    Every row is usable (``usable_packed``: the time tests' GOOD fields of the sensor's config) and its time
    is a real stored time, so a new reading at one of them is a real duplicate. In time order:

    * the flat run holding the last reading ``(t1, v1)``: two rows at its start ``near_t`` carrying its
      lowest and highest values (any order of values inside a run narrower than the tolerance keeps every
      step below it); a run already wider than the tolerance (a slow drift, which no longer counts as flat)
      is stood for by two values 1.4 and 0.7 tolerances from the next row, as wide and as connected;
    * its run of exact repeats from ``exact_t``, then ``(t0, v0)`` and ``(t1, v1)``, the neighbours that
      spike and rate of change see (``(t1, v1)`` with its real stored flags ``q1, f1``, for the revision);
    * ``(last_t, NaN)`` when the last usable reading has no value: the order and gap tests' last time.
    """
    n = len(states)
    t1, t0, es, last = states.t1, states.t0, states.exact_t, states.last_t
    x1, v0 = states.v1, states.v0
    has1, has0, has_last = t1 != NO_T, t0 != NO_T, last != NO_T
    ns = np.minimum(states.near_t, es)  # a tolerance of 0 (or no flat test) restarts the near run every step
    a_case = has1 & (es < t1)  # the last reading repeats the one before (t0 >= es, v0 == v1)
    b_case = has1 & (es == t1)
    near_part = has1 & (ns < es)
    z = np.where(a_case, x1, v0)  # the value right after the near part
    lo, hi = states.near_lo, states.near_hi
    with np.errstate(invalid="ignore"):
        drift = (hi - lo) >= tolerance
    swap = z == hi
    a = np.where(drift, z - 1.4 * tolerance, np.where(swap, hi, lo))
    b = np.where(drift, z - 0.7 * tolerance, np.where(swap, lo, hi))
    slot_t = np.stack([t0, ns, ns, es, t0, t1, last], axis=1)
    slot_v = np.stack([v0, a, b, x1, v0, x1, np.full(n, np.nan)], axis=1)
    valid = np.stack(
        [
            b_case & has0 & (t0 < ns),
            near_part,
            near_part,
            a_case,
            (a_case & (t0 > es)) | (b_case & has0 & (t0 >= ns)),
            has1,
            has_last & (~has1 | (last > t1)),
        ],
        axis=1,
    )
    packed = np.repeat(usable_packed.astype(np.int32)[:, None], _SLOTS, axis=1)
    packed[:, 5] = np.where(has1, states.q1, packed[:, 5])
    flag = np.full((n, _SLOTS), QcFlag.GOOD, np.uint8)
    flag[:, 5] = np.where(has1, states.f1, flag[:, 5])
    seg = np.repeat(segments.astype(np.intp)[:, None], _SLOTS, axis=1)
    return Rows(seg[valid], slot_t[valid], slot_v[valid], packed[valid], flag[valid])


def usable_history(rows: Rows, n_segments: int) -> npt.NDArray[np.bool_]:
    """Which stored rows QC takes as context, as ``run_qc_many`` decides it from their stored time flags."""
    ok = np.ones(rows.seg.size, dtype=bool)
    for name in _TS_DUP:
        field = (rows.packed >> _SHIFT[name]) & 0xF
        stored = np.bincount(rows.seg, weights=field != 0, minlength=n_segments) > 0
        ok &= ~stored[rows.seg] | (field == QcFlag.GOOD)
    return ok


def fold_states(context: Rows, stored: Rows, n_segments: int, tolerance: F64, keys: I64, max_t: I64) -> QcStates:
    """The states after a batch: ``context`` the usable context rows QC used (compact or real history, in
    order), ``stored`` the batch readings stored and usable, ``max_t`` the latest stored time (batch included).

    The flat runs follow :func:`~geowarn.monitoring.qc.checks.flat_line_test` exactly: a near run restarts
    where a step is not below the tolerance, an exact run where a step is not zero.
    """
    out = QcStates.empty(n_segments)
    out.config_key[:] = keys
    out.max_t[:] = max_t
    part = np.r_[np.zeros(context.seg.size, np.int8), np.ones(stored.seg.size, np.int8)]
    rows = Rows.concat([context, stored])
    if rows.seg.size == 0:
        return out
    rows = rows.take(np.lexsort((np.arange(part.size), part, rows.t_ms, rows.seg)))
    last = np.flatnonzero(np.r_[rows.seg[1:] != rows.seg[:-1], True])
    out.last_t[rows.seg[last]] = rows.t_ms[last]
    v = rows.take(np.isfinite(rows.value))
    if v.seg.size == 0:
        return out
    first = np.r_[True, v.seg[1:] != v.seg[:-1]]
    k = np.flatnonzero(np.r_[first[1:], True])  # the last reading with a value of each segment
    s = v.seg[k]
    out.t1[s], out.v1[s], out.q1[s], out.f1[s] = v.t_ms[k], v.value[k], v.packed[k], v.flag[k]
    prev = k[~first[k]] - 1
    out.t0[v.seg[prev]], out.v0[v.seg[prev]] = v.t_ms[prev], v.value[prev]
    step = np.abs(np.diff(v.value))
    tol = tolerance[v.seg[1:]]
    with np.errstate(invalid="ignore"):
        near = first | np.r_[False, ~(step < tol)]
    exact = first | np.r_[False, step != 0]
    idx = np.arange(v.seg.size)
    near_start = np.maximum.accumulate(np.where(near, idx, 0))
    exact_start = np.maximum.accumulate(np.where(exact, idx, 0))
    out.near_t[s] = v.t_ms[near_start[k]]
    out.exact_t[s] = v.t_ms[exact_start[k]]
    out.near_hi[s] = running_max_in_runs(v.value, near)[k]
    out.near_lo[s] = -running_max_in_runs(-v.value, near)[k]
    return out
