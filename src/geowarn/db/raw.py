"""Rows as plain tuples straight from the driver's cursor, for reads of hundreds of thousands of rows.

SQLAlchemy's ``Row`` objects and per-column result processing cost about 30 times what the driver's
own tuples do; the dissemination paths that read a province's households and residents use these.
Statements use ``?`` placeholders on both backends.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

#: Bound parameters per ``IN`` list on SQLite (which allows 32,766).
CHUNK = 5000


def fetch_tuples(session: Session, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` in ``session``'s transaction (flush pending ORM changes first if they matter)."""
    conn = session.connection()
    raw: Any = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        with raw.cursor() as cur:
            cur.execute(sql.replace("?", "%s"), params)
            return list(cur.fetchall())
    return list(raw.execute(sql, params).fetchall())


def fetch_tuples_in(
    session: Session, sql: str, column: str, ids: Sequence[int], params: Sequence[Any] = ()
) -> list[tuple[Any, ...]]:
    """``sql`` (with ``{cond}`` where ``column`` is tested) for ``ids``: one array parameter on
    PostgreSQL, chunks of :data:`CHUNK` placeholders on SQLite. ``params`` follow the ``{cond}``."""
    if not ids:
        return []
    if session.get_bind().dialect.name == "postgresql":
        return fetch_tuples(session, sql.format(cond=f"{column} = ANY(?)"), [list(ids), *params])
    out: list[tuple[Any, ...]] = []
    for i in range(0, len(ids), CHUNK):
        chunk = ids[i : i + CHUNK]
        out += fetch_tuples(session, sql.format(cond=f"{column} IN ({','.join('?' * len(chunk))})"), [*chunk, *params])
    return out
