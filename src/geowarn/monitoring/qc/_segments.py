"""Helpers that let the QC tests run over many series at once: segments, per-element limits, run maxima.

A *segment* is a stretch of consecutive elements with the same group id (one sensor channel's series).
Tests that compare neighbours treat each segment as a series of its own: no comparison crosses a
boundary. Limits may be one number or one value per element, so series with different configs share
one call.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from geowarn.errors import InvalidInput

FloatArray = npt.NDArray[np.float64]
IndexArray = npt.NDArray[np.intp]
BoolArray = npt.NDArray[np.bool_]
Limit = float | FloatArray


def segment_runs(segments: npt.ArrayLike | None, n: int) -> IndexArray | None:
    """Number the segments 0, 1, 2… in order of appearance (a run of equal ids is one segment).

    ``None`` (one series) stays ``None``. The numbering, not the ids, is compared after a subset is taken,
    so two segments with the same id that are not adjacent never merge.
    """
    if segments is None:
        return None
    s = np.asarray(segments)
    if s.shape != (n,):
        raise InvalidInput(
            f"segments has shape {s.shape}, expected ({n},)", message_zh="分段编号的个数与数据个数不一致"
        )
    if n == 0:
        return np.zeros(0, dtype=np.intp)
    starts = np.empty(n, dtype=bool)
    starts[0] = True
    np.not_equal(s[1:], s[:-1], out=starts[1:])
    return np.cumsum(starts, dtype=np.intp) - 1


def starts_of(runs: IndexArray | None, n: int) -> BoolArray:
    """True at the first element of each segment (of a subset, given the subset's segment numbers)."""
    starts = np.zeros(n, dtype=bool)
    if n:
        starts[0] = True
        if runs is not None:
            np.not_equal(runs[1:], runs[:-1], out=starts[1:])
    return starts


def limit(value: npt.ArrayLike, n: int, name: str) -> Limit:
    """A scalar limit as a float, or a per-element limit as a float array of length ``n``."""
    a = np.asarray(value, dtype=np.float64)
    if a.ndim == 0:
        return float(a)
    if a.shape != (n,):
        raise InvalidInput(f"{name} has shape {a.shape}, expected ({n},)", message_zh=f"{name} 的个数与数据个数不一致")
    return a


def take(value: Limit, idx: IndexArray | slice) -> Limit:
    """The limits of the elements ``idx`` (a scalar limit is the same for all)."""
    return value if isinstance(value, float) else value[idx]


def running_max_in_runs(y: FloatArray, starts: BoolArray) -> FloatArray:
    """Cumulative maximum of ``y`` restarted at each run (``starts`` marks the first element of each run).

    Exact: the runs are laid out as the rows of padded 2-D arrays and accumulated along the rows, with
    runs bucketed by length (each bucket's rows at most twice as long as its shortest run), so memory
    stays O(n) and no value is shifted or rounded.
    """
    n = y.size
    if n == 0:
        return y.copy()
    first = np.flatnonzero(starts)
    if first.size == 1:
        return np.maximum.accumulate(y)
    out = y.copy()  # runs of one element are their own maximum
    lengths = np.diff(first, append=n)
    long = lengths > 1
    first, lengths = first[long], lengths[long]
    if first.size == 0:
        return out
    bucket = np.frexp((lengths - 1).astype(np.float64))[1]  # bit length of (length - 1)
    for b in np.unique(bucket).tolist():
        sel = bucket == b
        f, run_len = first[sel], lengths[sel]
        cols = np.arange(int(run_len.max()))
        inside = cols < run_len[:, None]
        pos = (f[:, None] + cols)[inside]
        pad = np.full(inside.shape, -np.inf)
        pad[inside] = y[pos]
        out[pos] = np.maximum.accumulate(pad, axis=1)[inside]
    return out
