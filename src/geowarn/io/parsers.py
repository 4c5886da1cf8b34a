"""Pure, column-wise parsers of ledger values: numbers, counts, 万元, phones, ID numbers, labels, text.

Every function takes a whole column (a 1-D object array of what the reader found: ``str``,
``int``, ``float`` or ``None``) and returns arrays, never raises on a bad cell: the caller turns
the returned masks into :class:`~geowarn.errors.RowProblem` rows. Fast paths let numpy convert a
clean column in one step; only columns with a bad cell fall back to a per-cell loop.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np
import numpy.typing as npt

ObjArray = npt.NDArray[np.object_]
BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: 11-digit mainland mobile numbers (号段 13x–19x).
MOBILE = re.compile(r"1[3-9]\d{9}")
#: Landline: area code 0xx/0xxx, optional dash, 7–8 digit number, optional extension.
LANDLINE = re.compile(r"0\d{2,3}-?\d{7,8}(?:-\d{1,6})?")
#: C0 controls other than tab, line feed, carriage return; DEL.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CONTROL_OR_BREAK = re.compile(r"[\x00-\x1f\x7f]")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")
#: GB 11643-1999 weights and check characters (ISO 7064 MOD 11-2).
_ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
_ID_CHECK = "10X98765432"
_ID_FORM = re.compile(r"\d{17}[\dX]")
#: Characters that start a spreadsheet formula (OWASP CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_SET = frozenset(FORMULA_START)


def obj(values: list[Any]) -> ObjArray:
    """A list as a 1-D object array (no nested-sequence guessing)."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _text_of(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, str):
        return v.strip() or None
    if isinstance(v, float):
        if math.isnan(v):
            return None
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)
    return str(v)


def as_text(col: ObjArray) -> ObjArray:
    """Cells as trimmed strings (None when blank). Integral floats print without ``.0``."""
    return obj([(v.strip() or None) if v.__class__ is str else _text_of(v) for v in col])


def present(text: ObjArray) -> BoolArray:
    """True where a text column (from :func:`as_text`) has a value."""
    return np.asarray(text != None, dtype=np.bool_)  # noqa: E711  (element-wise on an object array)


def unquote_formula(text: ObjArray) -> ObjArray:
    """Undo our own export neutralisation: ``'=x`` → ``=x`` (a quote before a formula character)."""
    return obj([v[1:] if v is not None and v[:1] == "'" and v[1:2] in _FORMULA_SET else v for v in text])


def text_problems(text: ObjArray, max_len: int | None, *, multiline: bool = False) -> tuple[BoolArray, BoolArray]:
    """Masks of cells with forbidden control characters and of cells longer than ``max_len``.

    The clean case is one pass over the joined column (``str.isprintable``, which no control character
    passes, then the regex only if something did not); only a column with a hit is scanned cell by cell.
    """
    n = len(text)
    vals = list(filter(None, text.tolist()))  # the cells with text (blank cells are None here)
    pat = _CONTROL if multiline else _CONTROL_OR_BREAK
    bad_ctrl = np.zeros(n, dtype=bool)
    too_long = np.zeros(n, dtype=bool)
    joined = "".join(vals)
    if not joined.isprintable() and pat.search(joined) is not None:
        bad_ctrl = np.fromiter((v is not None and pat.search(v) is not None for v in text), dtype=bool, count=n)
    if vals and max_len is not None and max(map(len, vals)) > max_len:
        too_long = np.fromiter((v is not None and len(v) > max_len for v in text), dtype=bool, count=n)
    return bad_ctrl, too_long


def parse_float(col: ObjArray) -> tuple[FloatArray, BoolArray]:
    """Numbers as float64 (NaN when blank) and a mask of cells that are not finite numbers."""
    n = len(col)
    try:
        vals = np.asarray(col, dtype=np.float64)  # fast path: numbers, numeric strings, None→nan
        nan = np.isnan(vals)
        if np.isfinite(vals[~nan]).all() and all(
            v is None or (isinstance(v, float) and math.isnan(v)) for v in col[nan]
        ):
            return vals, np.zeros(n, dtype=bool)
    except (TypeError, ValueError):
        pass
    vals = np.full(n, np.nan)
    bad = np.zeros(n, dtype=bool)
    for i, v in enumerate(col):
        if v is None or (isinstance(v, str) and not v.strip()) or (isinstance(v, float) and math.isnan(v)):
            continue
        try:
            f = float(_THOUSANDS.sub("", v.strip()) if isinstance(v, str) else v)
        except (TypeError, ValueError):
            bad[i] = True
            continue
        if math.isfinite(f):
            vals[i] = f
        else:
            bad[i] = True
    return vals, bad


def parse_count(col: ObjArray) -> tuple[IntArray, BoolArray, BoolArray, BoolArray]:
    """Whole non-negative counts: (values with 0 where blank, blank, not a whole number, negative)."""
    vals, bad = parse_float(col)
    missing = np.isnan(vals) & ~bad
    filled = np.where(np.isnan(vals), 0.0, vals)
    not_whole = bad | (filled != np.floor(filled)) | (np.abs(filled) > 2**31 - 1)
    negative = ~not_whole & (filled < 0)
    return np.where(not_whole, 0, filled).astype(np.int64), missing, not_whole, negative


def _decimal(v: Any) -> Decimal | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, float):
        return Decimal(repr(v)) if math.isfinite(v) else None  # shortest repr = the value the user typed
    if isinstance(v, int):
        return Decimal(v)
    try:
        d = Decimal(_THOUSANDS.sub("", str(v).strip()))
    except InvalidOperation:
        return None
    return d if d.is_finite() else None


def parse_wanyuan(col: ObjArray) -> tuple[ObjArray, BoolArray, BoolArray]:
    """Amounts in 万元 to exact whole yuan (Python ints; 0 when blank), through :class:`~decimal.Decimal`.

    Returns (yuan, bad, not_whole_yuan): ``bad`` for non-numbers and negatives, ``not_whole_yuan``
    when the amount has more than four decimals of 万元 (finer than one yuan). Each distinct value
    is parsed once (ledgers repeat amounts; numeric columns are deduplicated by numpy).
    """
    n = len(col)
    yuan = np.zeros(n, dtype=object)
    bad = np.zeros(n, dtype=bool)
    frac = np.zeros(n, dtype=bool)
    kinds = set(map(type, col))
    if kinds <= {float, int, type(None)} and bool not in kinds:
        vals = np.asarray(col, dtype=np.float64)
        has = ~np.isnan(vals)
        uniq, inverse = np.unique(vals[has], return_inverse=True)
        parsed = [_yuan(float(u)) for u in uniq]
        y = np.empty(len(uniq), dtype=object)
        y[:] = [p[0] for p in parsed]
        yuan[has] = y[inverse]
        bad[has] = np.array([p[1] for p in parsed], dtype=bool)[inverse]
        frac[has] = np.array([p[2] for p in parsed], dtype=bool)[inverse]
        return yuan, bad, frac
    for i, v in enumerate(col):
        if v is None or (isinstance(v, str) and not v.strip()) or (isinstance(v, float) and math.isnan(v)):
            continue
        yuan[i], bad[i], frac[i] = _yuan(v)
    return yuan, bad, frac


_TENK = Decimal(10_000)


def _yuan(v: Any) -> tuple[int, bool, bool]:
    """One amount: (yuan, bad, finer than a yuan)."""
    d = _decimal(v)
    if d is None or d < 0:
        return 0, True, False
    y = d * _TENK
    if y != y.to_integral_value():
        return 0, False, True
    return int(y), False, False


def yuan_to_wanyuan(yuan: int) -> Decimal:
    """Whole yuan back to 万元, without trailing zeros (``123000`` → ``Decimal('12.3')``)."""
    d = (Decimal(int(yuan)) / Decimal(10_000)).normalize()
    return d.quantize(Decimal(1)) if d == d.to_integral_value() else d


def clean_mobiles(text: ObjArray) -> BoolArray:
    """Vectorised :data:`MOBILE` for the common case: cells of exactly 11 digits, ``13``–``19`` first."""
    has = present(text)
    out = np.zeros(len(text), dtype=bool)
    if has.any():
        u = text[has].astype(str)
        out[has] = (np.strings.str_len(u) == 11) & np.strings.isdigit(u) & (u >= "13") & (u < "2")
    return out


def phone_ok(text: ObjArray, clean: BoolArray | None = None) -> BoolArray:
    """True for blank cells, 11-digit mobiles and landlines (spaces and dashes in mobiles tolerated).

    ``clean``: :func:`clean_mobiles` of ``text`` if the caller has it already.
    """
    out = ~present(text) | (clean_mobiles(text) if clean is None else clean)
    for i in np.flatnonzero(~out).tolist():
        compact = text[i].replace(" ", "")
        if MOBILE.fullmatch(compact.replace("-", "")) is not None or LANDLINE.fullmatch(compact) is not None:
            out[i] = True
    return out


def normalise_phone(text: ObjArray, clean: BoolArray | None = None) -> ObjArray:
    """Mobiles as 11 bare digits; landlines kept as written without spaces."""
    out = text.copy()
    for i in np.flatnonzero(present(text) & ~(clean_mobiles(text) if clean is None else clean)).tolist():
        compact = str(text[i]).replace(" ", "")
        digits = compact.replace("-", "")
        out[i] = digits if MOBILE.fullmatch(digits) else compact
    return out


def id_number_ok(text: ObjArray) -> BoolArray:
    """GB 11643-1999 citizen ID numbers: 18 characters whose last is the MOD 11-2 check. Blank is fine."""
    out = np.ones(len(text), dtype=bool)
    idx = [i for i, v in enumerate(text) if v is not None]
    if not idx:
        return out
    vals = [str(text[i]).upper() for i in idx]
    form = np.array([_ID_FORM.fullmatch(v) is not None for v in vals])
    ok = np.zeros(len(idx), dtype=bool)
    if form.any():
        good = [v for v, f in zip(vals, form, strict=True) if f]
        digits = np.frombuffer("".join(v[:17] for v in good).encode("ascii"), dtype=np.uint8).reshape(-1, 17) - 48
        check = (digits.astype(np.int64) @ _ID_WEIGHTS) % 11
        expected = np.array([_ID_CHECK[c] for c in check])
        ok[form] = expected == np.array([v[17] for v in good])
    out[np.asarray(idx)] = ok
    return out


def map_labels(text: ObjArray, labels: dict[str, str]) -> tuple[ObjArray, BoolArray]:
    """Map Chinese labels (or the codes themselves) to codes through the unique values only.

    ``labels`` maps label → code. Returns (codes, unknown): blank cells give None and are not unknown.
    """
    n = len(text)
    codes = np.empty(n, dtype=object)
    unknown = np.zeros(n, dtype=bool)
    values = text.tolist()
    mapped = {u: labels.get(str(u).strip()) for u in set(values) if u is not None}
    if not mapped:
        return codes, unknown
    codes[:] = [mapped.get(v) if v is not None else None for v in values]
    unknown[:] = [v is not None and mapped[v] is None for v in values]
    return codes, unknown


def neutralise_formula(value: str) -> str:
    """OWASP CSV-injection defence: a text cell starting with a formula character gets a leading quote."""
    return "'" + value if value and value[0] in FORMULA_START else value
