"""Confining every query to the caller's administrative unit and its children.

A record belongs to the unit in its ``unit_code``; a user bound to unit U may see a record when
the record's code starts with U's prefix (``admin.codes.prefix_of``). The test is written as a
range so a B-tree index on ``unit_code`` answers it on both backends.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_

from geowarn.admin.codes import contains, prefix_range


def unit_filter(column: Any, unit_code: str) -> ColumnElement[bool]:
    """SQL condition: ``column`` lies within ``unit_code`` (inclusive)."""
    lo, hi = prefix_range(unit_code)
    return and_(column >= lo, column < hi)


def in_scope(scope_code: str, record_code: str | None) -> bool:
    return record_code is not None and contains(scope_code, record_code)
