"""Bulk inserts that bypass the ORM's unit of work: ``COPY`` on PostgreSQL, ``executemany`` on SQLite.

For the paths that write thousands of rows at once (warning recipients and outbox rows, audit
entries of bulk work, the alerts a storm opens): SQLAlchemy's per-row parameter processing, and on
PostgreSQL psycopg parsing a multi-row statement with one placeholder per value, cost more than the
database's own work. Callers that bypass the ORM write their audit entries themselves.

Loads of a whole table's worth of rows (the register importer) use :mod:`geowarn.db.bulkload`:
index rebuilds after the load and ``COPY`` text built a column at a time (``copy_text``).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import JSON, Table, insert
from sqlalchemy.orm import Session


def insert_tuples(session: Session, table: Table, columns: list[str], data: list[tuple[Any, ...]]) -> None:
    """Insert ``data`` (tuples in the order of ``columns``; JSON already as text)."""
    if not data:
        return
    cols = [table.c[c].name for c in columns]  # our own column names (KeyError for anything else)
    conn = session.connection()
    if conn.dialect.name == "postgresql":  # COPY: an order of magnitude faster than executemany
        raw: Any = conn.connection.driver_connection
        with raw.cursor() as cur, cur.copy(f"COPY {table.name} ({', '.join(cols)}) FROM STDIN") as copy:
            for row in data:
                copy.write_row(row)
        return
    sql = f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"  # noqa: S608
    conn.exec_driver_sql(sql, data)


def _json_columns(table: Table, keys: list[str]) -> set[str]:
    return {k for k in keys if isinstance(table.c[k].type, JSON)}


def insert_rows(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys). Values of JSON columns are sent as JSON text; None
    is stored as SQL NULL."""
    if not rows:
        return
    keys = list(rows[0])
    js = _json_columns(table, keys)
    data = [
        tuple(json.dumps(r[k], ensure_ascii=False) if k in js and r[k] is not None else r[k] for k in keys)
        for r in rows
    ]
    insert_tuples(session, table, keys, data)


def insert_returning_ids(session: Session, table: Table, rows: list[dict[str, Any]]) -> list[int]:
    """Insert ``rows`` (the same keys in each) and return their new ids, in order.

    SQLite: one multi-row ``INSERT … RETURNING``. PostgreSQL: the ids are drawn from the table's
    sequence first and the rows sent by ``COPY``; psycopg would otherwise parse a statement with a
    placeholder per value (18,000 for 900 alerts) on every call, which cost more than the insert.
    A None in a JSON column is stored as the ORM stores it (JSON null unless the type says SQL NULL).
    """
    if not rows:
        return []
    conn = session.connection()
    if conn.dialect.name != "postgresql":
        stmt = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        return [int(i) for i in conn.execute(stmt, rows).scalars()]
    seq = conn.exec_driver_sql("SELECT pg_get_serial_sequence(%s, 'id')", (table.name,)).scalar_one()
    ids = [int(i) for (i,) in conn.exec_driver_sql("SELECT nextval(%s) FROM generate_series(1, %s)", (seq, len(rows)))]
    keys = list(rows[0])
    js = _json_columns(table, keys)
    null_json = {k for k in js if not getattr(table.c[k].type, "none_as_null", False)}

    def value(k: str, v: Any) -> Any:
        if k not in js or (v is None and k not in null_json):
            return v
        return json.dumps(v, ensure_ascii=False)

    data = [(i, *(value(k, r[k]) for k in keys)) for i, r in zip(ids, rows, strict=True)]
    insert_tuples(session, table, ["id", *keys], data)
    return ids
