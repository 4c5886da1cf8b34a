"""Plain rows for the list routes the map (一张图) reads on every load: alerts, shelters, products.

Those routes used to load ORM objects (identity map, attribute instrumentation) and, for shelters,
build pydantic models, which cost more than the queries. They now select columns, make dicts and
let orjson write the body (``json_response``). The response models stay in the OpenAPI document.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session


def page_rows(session: Session, stmt: Select[Any], limit: int, offset: int) -> tuple[list[Sequence[Any]], int]:
    """One page of ``stmt`` (ordered by the caller) and the total count of its matches.

    The total comes with the page, ``count(*) OVER ()``: a window function is computed over every
    match before ``LIMIT``/``OFFSET`` apply (ISO/IEC 9075; SQLite ≥ 3.25, PostgreSQL), so one
    query does the work of two. Only a page past the end, which has no row to carry it, asks again.
    """
    conn = session.connection()  # Core execution: plain rows need none of the ORM's result machinery
    rows = conn.execute(stmt.add_columns(func.count().over()).limit(limit).offset(offset)).all()
    if rows:
        return [r[:-1] for r in rows], int(rows[0][-1])
    if offset == 0:
        return [], 0
    total = conn.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    return [], int(total)


def utc_iso(value: dt.datetime | None) -> str | None:
    """A stored time as pydantic writes a UTC ``datetime``: ISO 8601 with ``Z``, microseconds when
    not zero (SQLite hands back naive UTC values, PostgreSQL aware ones in the session's zone)."""
    if value is None:
        return None
    utc = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    return utc.isoformat().replace("+00:00", "Z")
