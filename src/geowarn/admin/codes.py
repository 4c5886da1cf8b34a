"""GB/T 2260 administrative codes and the statistical extension to townships and villages.

* province ``XX0000``, city ``XXXX00``, county ``XXXXXX`` (GB/T 2260, six digits);
* township ``XXXXXXTTT`` (nine digits) and village ``XXXXXXTTTVVV`` (twelve digits), as in the
  National Bureau of Statistics' 统计用区划代码.

A unit's *prefix* is the shortest string every descendant's code starts with; access scoping and
roll-ups compare codes by prefix, which a B-tree index answers as a range.
"""

from __future__ import annotations

import re
from enum import StrEnum

_CODE = re.compile(r"^\d{6}(\d{3}(\d{3})?)?$")


class UnitLevel(StrEnum):
    PROVINCE = "province"
    CITY = "city"
    COUNTY = "county"
    TOWNSHIP = "township"
    VILLAGE = "village"


LEVEL_ZH = {
    UnitLevel.PROVINCE: "省",
    UnitLevel.CITY: "市",
    UnitLevel.COUNTY: "县",
    UnitLevel.TOWNSHIP: "乡镇",
    UnitLevel.VILLAGE: "村",
}


def is_valid_code(code: str) -> bool:
    """True for a well-formed 6, 9 or 12 digit code whose province part is 11–82."""
    if not isinstance(code, str) or not _CODE.match(code):
        return False
    return 11 <= int(code[:2]) <= 82


def level_of(code: str) -> UnitLevel:
    if not is_valid_code(code):
        raise ValueError(f"not an administrative code: {code!r}")
    if len(code) == 12:
        return UnitLevel.VILLAGE
    if len(code) == 9:
        return UnitLevel.TOWNSHIP
    if code[2:] == "0000":
        return UnitLevel.PROVINCE
    if code[4:] == "00":
        return UnitLevel.CITY
    return UnitLevel.COUNTY


def prefix_of(code: str) -> str:
    """The prefix shared by the unit and all its descendants: ``350000``→``35``, ``350900``→``3509``."""
    level = level_of(code)
    if level is UnitLevel.PROVINCE:
        return code[:2]
    if level is UnitLevel.CITY:
        return code[:4]
    return code


def parent_of(code: str) -> str | None:
    level = level_of(code)
    if level is UnitLevel.VILLAGE:
        return code[:9]
    if level is UnitLevel.TOWNSHIP:
        return code[:6]
    if level is UnitLevel.COUNTY:
        return code[:4] + "00"
    if level is UnitLevel.CITY:
        return code[:2] + "0000"
    return None


def contains(ancestor: str, code: str) -> bool:
    """True when ``code`` is ``ancestor`` or lies under it (codes are ASCII digits: "٠" is no "0",
    and the SQL prefix range would not agree)."""
    return code.isascii() and code.isdigit() and code.startswith(prefix_of(ancestor))


def prefix_range(code: str) -> tuple[str, str]:
    """Bounds ``lo <= c < hi`` of every code under ``code`` (``:`` sorts right after ``9``)."""
    p = prefix_of(code)
    return p, p + ":"


def township_of(code: str) -> str | None:
    return code[:9] if len(code) >= 9 else None


def county_of(code: str) -> str:
    return code[:6]
