"""Value parsers and CRS checks: pure functions, checked against hand values and with hypothesis."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from geowarn.io import crs
from geowarn.io import parsers as P


def col(*values: object) -> np.ndarray:
    return P.obj(list(values))


def test_parse_float_accepts_numbers_and_flags_text() -> None:
    vals, bad = P.parse_float(col("1.5", 2, None, "", "1,234.5", "abc", "nan", float("inf")))
    assert vals[0] == 1.5 and vals[1] == 2 and np.isnan(vals[2]) and np.isnan(vals[3]) and vals[4] == 1234.5
    assert bad.tolist() == [False, False, False, False, False, True, True, True]


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_parse_float_round_trips_any_float(x: float) -> None:
    vals, bad = P.parse_float(col(repr(x), x))
    assert not bad.any() and vals[0] == x and vals[1] == x


def test_parse_count() -> None:
    ints, missing, not_whole, negative = P.parse_count(col("3", 4.0, None, "2.5", "-1", "x"))
    assert ints.tolist()[:2] == [3, 4]
    assert missing.tolist() == [False, False, True, False, False, False]
    assert not_whole.tolist() == [False, False, False, True, False, True]
    assert negative.tolist() == [False, False, False, False, True, False]


@given(st.decimals(min_value=0, max_value=10**9, places=4, allow_nan=False, allow_infinity=False))
def test_wanyuan_is_exact_for_four_decimals(d: Decimal) -> None:
    yuan, bad, frac = P.parse_wanyuan(col(str(d)))
    assert not bad[0] and not frac[0]
    assert yuan[0] == int(d * 10000)
    assert P.yuan_to_wanyuan(yuan[0]) == d


@given(st.floats(min_value=0, max_value=1e6).map(lambda x: round(x, 2)))
def test_wanyuan_from_float_cells_uses_the_typed_value(x: float) -> None:
    yuan, bad, frac = P.parse_wanyuan(col(x, x))
    assert yuan[0] == int(Decimal(repr(x)) * 10000) == yuan[1]
    assert not bad.any() and not frac.any()


def test_wanyuan_rejects_negative_text_and_sub_yuan() -> None:
    yuan, bad, frac = P.parse_wanyuan(col("12.3", "-1", "x", "0.00001", None, 0.1))
    assert yuan[0] == 123000 and yuan[5] == 1000
    assert bad.tolist() == [False, True, True, False, False, False]
    assert frac.tolist() == [False, False, False, True, False, False]


@given(st.from_regex(r"1[3-9]\d{9}", fullmatch=True))
def test_mobiles_are_valid(phone: str) -> None:
    assert P.phone_ok(col(phone)).all()


@given(st.text(alphabet="0123456789-", min_size=1, max_size=14))
def test_phone_check_agrees_with_the_patterns(text: str) -> None:
    expected = P.MOBILE.fullmatch(text.replace("-", "")) is not None or P.LANDLINE.fullmatch(text) is not None
    assert bool(P.phone_ok(col(text))[0]) == expected


def test_phones() -> None:
    ok = P.phone_ok(col("13800138000", "0591-1234567", "05911234567", "138 0013 8000", "12345", "23800138000", None))
    assert ok.tolist() == [True, True, True, True, False, False, True]
    assert P.normalise_phone(col("138 0013 8000", "0591 - 1234567")).tolist() == ["13800138000", "0591-1234567"]


def test_id_number_checksum_gb11643() -> None:
    ok = P.id_number_ok(col("11010519491231002X", "110105194912310021", "350922198001011234"[:17] + "X", None, "abc"))
    assert ok.tolist()[:2] == [True, False]
    assert ok[3] and not ok[4]


def test_map_labels_and_formula_quotes() -> None:
    codes, unknown = P.map_labels(col("滑坡", "泥巴", None, "滑坡"), {"滑坡": "landslide"})
    assert codes.tolist() == ["landslide", None, None, "landslide"]
    assert unknown.tolist() == [False, True, False, False]
    assert P.neutralise_formula("=1+1") == "'=1+1" and P.neutralise_formula("a") == "a"
    assert P.unquote_formula(col("'=1+1", "'abc", None)).tolist() == ["=1+1", "'abc", None]


def test_text_problems() -> None:
    ctrl, long_ = P.text_problems(col("ok", "bad\x07", "line\nbreak", "x" * 11, None), 10)
    assert ctrl.tolist() == [False, True, True, False, False]
    assert long_.tolist() == [False, False, False, True, False]
    ctrl, _ = P.text_problems(col("line\nbreak"), None, multiline=True)
    assert not ctrl.any()


def test_gk_zones_and_checks() -> None:
    src = crs.parse_crs("EPSG:4528")
    assert src.gk_zone == 40 and src.gk_prefixed and not src.geographic
    plain = crs.parse_crs("4549")
    assert plain.gk_zone == 40 and not plain.gk_prefixed
    assert crs.parse_crs("EPSG:4539").gk_zone == 30
    x = np.array([40_500_000.0, 39_500_000.0, 500_000.0])
    wrong, prefix = crs.zone_mismatch(x, src)
    assert wrong.tolist() == [False, True, True] and prefix.tolist() == [40, 39, 0]
    wrong, _ = crs.zone_mismatch(x, plain)
    assert wrong.tolist() == [True, True, False]
    lon, lat = crs.to_lonlat(np.array([40_500_000.0]), np.array([2_930_000.0]), src)
    assert abs(lon[0] - 120.0) < 1e-9 and 26 < lat[0] < 27
    east, _north, swapped = crs.easting_northing(np.array([2_930_000.0]), np.array([40_500_000.0]))
    assert swapped and east[0] == 40_500_000.0
    assert crs.guess_gk(np.array([40_400_000.0, 40_600_000.0])).name == "EPSG:4528"  # type: ignore[union-attr]
    assert crs.looks_swapped(np.array([26.5, 118.0]), np.array([118.7, 26.0])).tolist() == [True, False]
