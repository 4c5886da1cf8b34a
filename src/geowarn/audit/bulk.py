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

from sqlalchemy import Table
from sqlalchemy.orm import Session, make_transient_to_detached

from geowarn.audit.hook import record_created
from geowarn.db.bulk import insert_returning_ids


def _row(obj: Any, table: Table) -> dict[str, Any]:
    """Every column but ``id``, as a flush would send it: a column left unset (or None, unless its type
    stores None as JSON null) takes its Python-side default."""
    row: dict[str, Any] = {}
    state = obj.__dict__
    for col in table.columns:
        if col.key == "id":
            continue
        value = state.get(col.key)
        default = col.default
        unset = col.key not in state or not col.type.should_evaluate_none
        if value is None and unset and default is not None and (default.is_scalar or default.is_callable):
            value = default.arg if default.is_scalar else default.arg(None)  # type: ignore[attr-defined]
            setattr(obj, col.key, value)
        row[col.key] = value
    return row


def insert_new(session: Session, objects: Sequence[Any], entity: str) -> None:
    """Insert ``objects`` (new, of one mapped class with an integer ``id``, not in the session)."""
    if not objects:
        return
    table = cast(Table, type(objects[0]).__table__)
    rows = [_row(o, table) for o in objects]
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
