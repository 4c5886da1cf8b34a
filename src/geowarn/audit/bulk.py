"""New ORM objects inserted in one statement, attached to the session and audited as a flush would.

The unit of work and the flush audit hook cost about 1 ms a row (attribute history, one audit
entry built per object). Paths that create hundreds of rows at once (a storm's alerts, the warning
issues they send) use this instead: the rows go in through :func:`geowarn.db.bulk.insert_returning_ids`
(``COPY`` on PostgreSQL), the objects join the session as persistent with their new ids (later
changes in the transaction flush as usual), and every row gets the "create" entry the hook writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Column, Table, inspect
from sqlalchemy.orm import Mapper, Session, make_transient_to_detached

from geowarn.audit.hook import record_created
from geowarn.db.bulk import insert_returning_ids


def _row(obj: Any, columns: list[tuple[str, Column[Any]]]) -> dict[str, Any]:
    """Every column but ``id``, as a flush would send it: a column left unset (or None, unless its type
    stores None as JSON null) takes its Python-side default. Every value is put on the object too, so
    nothing is left to load once the object is attached."""
    row: dict[str, Any] = {}
    state = obj.__dict__
    for attr, col in columns:
        value = state.get(attr)
        default = col.default
        unset = attr not in state or not col.type.should_evaluate_none
        if value is None and unset and default is not None:
            value = default.arg if default.is_scalar else default.arg(None)  # type: ignore[attr-defined]
        elif value is None and attr not in state and col.type.should_evaluate_none:
            # a flush leaves the column out (SQL NULL); the bulk path would send JSON null
            raise ValueError(f"{obj.__class__.__name__}.{attr}: set it (None or a value) before a bulk insert")
        setattr(obj, attr, value)
        row[col.key] = value
    return row


def _columns(cls: type) -> list[tuple[str, Column[Any]]]:
    """(attribute, column) of every mapped column but ``id``; refuses what the bulk path cannot copy."""
    out: list[tuple[str, Column[Any]]] = []
    mapper: Mapper[Any] = inspect(cls)
    for prop in mapper.column_attrs:
        col = cast(Column[Any], prop.columns[0])
        if col.key == "id":
            continue
        default = col.default
        if col.server_default is not None or (default is not None and not (default.is_scalar or default.is_callable)):
            raise ValueError(f"{cls.__name__}.{prop.key}: a server or SQL default cannot go through a bulk insert")
        out.append((prop.key, col))
    return out


def insert_new(session: Session, objects: Sequence[Any], entity: str) -> None:
    """Insert ``objects`` (new, of one mapped class with an integer ``id``, not in the session)."""
    if not objects:
        return
    table = cast(Table, type(objects[0]).__table__)
    columns = _columns(type(objects[0]))
    rows = [_row(o, columns) for o in objects]
    ids = insert_returning_ids(session, table, rows)
    for obj, new_id in zip(objects, ids, strict=True):
        obj.id = int(new_id)
        make_transient_to_detached(obj)
        session.add(obj)
    record_created(
        session,
        entity,
        [(str(o.id), getattr(o, "unit_code", None), {"id": o.id, **row}) for o, row in zip(objects, rows, strict=True)],
    )
