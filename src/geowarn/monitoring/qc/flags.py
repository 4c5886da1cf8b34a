"""QARTOD quality flags: the flag enum, aggregation by severity, and packing per-test flags into one integer.

The flag values are the primary flags of U.S. IOOS QARTOD ("Manual for the Use of Real-Time Oceanographic
Data Quality Control Flags", v1.2, 2020): 1 pass, 2 not evaluated, 3 suspect, 4 fail, 9 missing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import IntEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from geowarn.errors import InvalidInput

FlagArray = npt.NDArray[np.uint8]


class QcFlag(IntEnum):
    """A QARTOD primary flag (质控标志)."""

    GOOD = 1
    NOT_EVALUATED = 2
    SUSPECT = 3
    FAIL = 4
    MISSING = 9


#: Every test, in the order its 4-bit field sits in a packed flag (bits 0-3 are the first test).
TEST_ORDER: tuple[str, ...] = (
    "timestamp",
    "duplicate_and_order",
    "time_gap",
    "gross_range",
    "spike",
    "rate_of_change",
    "flat_line",
)

# True at each byte value that is a QARTOD flag: one table lookup validates a whole array.
_IS_FLAG = np.zeros(256, dtype=bool)
_IS_FLAG[[int(f) for f in QcFlag]] = True
# Severity rank of each flag value; 0 marks a value that is not a flag.
_RANK = np.zeros(256, dtype=np.uint8)
_RANK[QcFlag.NOT_EVALUATED] = 1
_RANK[QcFlag.GOOD] = 2
_RANK[QcFlag.SUSPECT] = 3
_RANK[QcFlag.FAIL] = 4
_RANK[QcFlag.MISSING] = 5
_FLAG_OF_RANK = np.array([0, QcFlag.NOT_EVALUATED, QcFlag.GOOD, QcFlag.SUSPECT, QcFlag.FAIL, QcFlag.MISSING], np.uint8)
_FLAG_OF_RANK_OR_NE = _FLAG_OF_RANK.copy()
_FLAG_OF_RANK_OR_NE[0] = QcFlag.NOT_EVALUATED
_SHIFT = {name: 4 * i for i, name in enumerate(TEST_ORDER)}


def full(n: int, flag: QcFlag) -> FlagArray:
    """An array of ``n`` copies of ``flag``."""
    return np.full(n, int(flag), dtype=np.uint8)


def aggregate(*flag_arrays: npt.ArrayLike) -> FlagArray:
    """The worst flag of each element over several tests (QARTOD aggregate flag).

    Severity: MISSING > FAIL > SUSPECT > GOOD > NOT_EVALUATED. The value tests flag MISSING exactly
    where the value is NaN, so the aggregate is MISSING where the value is missing and otherwise the
    worst verdict. This deviates from ioos_qc's ``qartod_compare``, which ranks MISSING lowest: there a
    NaN reading whose timestamp passes the time tests would aggregate to GOOD.
    """
    if not flag_arrays:
        raise InvalidInput("aggregate needs at least one flag array", message_zh="汇总质控标志至少需要一组标志")
    arrays = [np.asarray(a) for a in flag_arrays]
    shape = arrays[0].shape
    if any(a.shape != shape for a in arrays):
        raise InvalidInput(
            f"flag arrays differ in shape: {[a.shape for a in arrays]}", message_zh="各项质控标志的长度不一致"
        )
    worst = np.zeros(shape, dtype=np.uint8)
    for a in arrays:
        np.maximum(worst, _RANK[_checked(a)], out=worst)
    return _FLAG_OF_RANK[worst]


def _checked(a: npt.NDArray[Any], test: str | None = None) -> FlagArray:
    """``a`` as uint8 flags, or :class:`InvalidInput` if an element is not a QARTOD flag.

    One table lookup validates the whole array (no pass per flag value, as ``np.isin`` would make).
    """
    b = a
    if a.dtype != np.uint8 and a.size:
        if a.dtype.kind not in "iuf" or not (a.min() >= 0 and a.max() <= 255):
            b = np.zeros(a.shape, np.uint8)  # fails the check below
        else:
            b = a.astype(np.uint8)
            if a.dtype.kind == "f" and not (b == a).all():
                b = np.zeros(a.shape, np.uint8)
    if a.size and not _IS_FLAG[b].all():
        what = "flag values" if test is None else f"test {test!r} has values that"
        raise InvalidInput(f"{what} must be QARTOD flags 1, 2, 3, 4 or 9", message_zh="质控标志取值无效")
    return b.astype(np.uint8, copy=False)


def worst_flag(flag_arrays: Iterable[FlagArray], n: int) -> FlagArray:
    """:func:`aggregate` of trusted uint8 arrays in which 0 means "the test did not run" (internal fast path).

    An element for which no test ran is NOT_EVALUATED.
    """
    worst = np.zeros(n, dtype=np.uint8)
    for a in flag_arrays:
        np.maximum(worst, _RANK[a], out=worst)
    return _FLAG_OF_RANK_OR_NE[worst]


def pack_flags(result: object) -> npt.NDArray[np.int32]:
    """Each test's flag in 4 bits of one int32, in :data:`TEST_ORDER`; a test that did not run is 0.

    ``result`` is a :class:`~geowarn.monitoring.qc.run.QcResult` or a mapping of test name to flags.
    Seven tests need 28 bits, so the packed value is always a non-negative int32.
    """
    flags: Mapping[str, npt.ArrayLike] = result if isinstance(result, Mapping) else result.flags  # type: ignore[attr-defined]
    unknown = set(flags) - set(TEST_ORDER)
    if unknown:
        raise InvalidInput(f"unknown QC tests: {sorted(unknown)}", message_zh="未知的质控检验项")
    arrays = {name: np.asarray(flags[name]) for name in flags}
    lengths = {a.shape for a in arrays.values()}
    if len(lengths) > 1:
        raise InvalidInput("flag arrays differ in shape", message_zh="各项质控标志的长度不一致")
    n = next(iter(lengths))[0] if lengths else 0
    return pack_trusted({name: _checked(a, name) for name, a in arrays.items()}, n)


def pack_trusted(flags: Mapping[str, npt.NDArray[Any]], n: int) -> npt.NDArray[np.int32]:
    """:func:`pack_flags` without validation, for flags this package computed; 0 in a field means not run."""
    packed = np.zeros(n, dtype=np.int32)
    for name, a in flags.items():
        packed |= a.astype(np.int32) << _SHIFT[name]
    return packed


def unpack_flags(packed: npt.ArrayLike) -> dict[str, FlagArray]:
    """The per-test flags stored by :func:`pack_flags`: only the tests that ran (non-zero field) are returned.

    A test counts as run when its field is non-zero for at least one element, so an empty array
    unpacks to an empty dict.
    """
    p = np.asarray(packed, dtype=np.int32)
    out: dict[str, FlagArray] = {}
    for shift, name in enumerate(TEST_ORDER):
        field = ((p >> (4 * shift)) & 0xF).astype(np.uint8)
        if field.any():
            out[name] = field
    return out
