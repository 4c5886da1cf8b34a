"""Insert a batch's new alerts and alert events in one statement each, audited explicitly.

The ORM's unit of work and its audit hook cost ~1 ms a row (attribute history, one audit entry
built per object); a storm opening 900 alerts at once spent most of its drain there. Rows go in as
multi-row INSERT … RETURNING id (in parameter order), the new ``Alert`` objects join the session
as persistent (later changes in the transaction flush as usual), and every row gets the same
"create" audit entry the flush hook would have written (``geowarn.audit.hook.record_created``).
An unchanged level rewrites the alert's latest reason now and then (``refresh_every_ms``): those
rows are updated in one executemany and audited as one entry per unit naming every alert refreshed
(the level did not change; the reasons themselves are kept on the alerts and their events).
"""

from __future__ import annotations

import json
from typing import Any, cast

from sqlalchemy import JSON, Table, bindparam, insert, update
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from geowarn.audit.hook import record, record_created
from geowarn.dissemination.outbox import bulk_insert_tuples
from geowarn.warning.models import Alert, AlertEvent

_ALERTS = cast(Table, Alert.__table__)
_EVENTS = cast(Table, AlertEvent.__table__)
_ALERT_COLUMNS = tuple(c.key for c in _ALERTS.columns if c.key != "id")


def insert_returning_ids(session: Session, table: Table, rows: list[dict[str, Any]]) -> list[int]:
    """Insert ``rows`` (the same keys in each) and return their new ids, in order.

    SQLite: one multi-row ``INSERT … RETURNING``. PostgreSQL: the ids are drawn from the table's
    sequence first and the rows sent by ``COPY``; psycopg would otherwise parse a statement with a
    placeholder per value (18,000 for 900 alerts) on every call, which cost more than the insert.
    """
    conn = session.connection()
    if conn.dialect.name != "postgresql":
        stmt = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        return [int(i) for i in conn.execute(stmt, rows).scalars()]
    seq = conn.exec_driver_sql("SELECT pg_get_serial_sequence(%s, 'id')", (table.name,)).scalar_one()
    ids = [int(i) for (i,) in conn.exec_driver_sql("SELECT nextval(%s) FROM generate_series(1, %s)", (seq, len(rows)))]
    keys = list(rows[0])
    # JSON columns as JSON text; None as JSON null unless the type stores SQL NULL (as the ORM does)
    types = {k: table.c[k].type for k in keys}
    as_json = {k: not getattr(t, "none_as_null", False) for k, t in types.items() if isinstance(t, JSON)}
    data = [
        (i, *(_json(r[k], as_json[k]) if k in as_json else r[k] for k in keys)) for i, r in zip(ids, rows, strict=True)
    ]
    bulk_insert_tuples(session, table, ["id", *keys], data)
    return ids


def _json(value: Any, none_as_json: bool) -> str | None:
    return None if value is None and not none_as_json else json.dumps(value, ensure_ascii=False)


def insert_alerts(session: Session, alerts: list[Alert]) -> None:
    """Insert ``alerts`` (new, not in the session) and attach them with their ids."""
    if not alerts:
        return
    rows = [{k: getattr(a, k) for k in _ALERT_COLUMNS} for a in alerts]
    ids = insert_returning_ids(session, _ALERTS, rows)
    for a, i in zip(alerts, ids, strict=True):
        a.id = int(i)
        make_transient_to_detached(a)
        session.add(a)
    record_created(session, "alert", [(str(a.id), a.unit_code, row) for a, row in zip(alerts, rows, strict=True)])


def insert_events(session: Session, events: list[tuple[Alert, dict[str, Any]]]) -> None:
    """Insert one ``alert_event`` row per (alert, values); the alerts' loaded ``events`` are expired."""
    if not events:
        return
    rows = [values for _, values in events]
    ids = insert_returning_ids(session, _EVENTS, rows)
    for alert, _ in events:
        if "events" in alert.__dict__:  # a loaded collection would miss the new rows
            session.expire(alert, ["events"])
    record_created(session, "alert_event", [(str(int(i)), None, row) for i, row in zip(ids, rows, strict=True)])


def refresh_alerts(session: Session, refreshed: list[tuple[Alert, dict[str, Any]]]) -> None:
    """Rewrite the latest reason of alerts whose level is unchanged, in one statement."""
    if not refreshed:
        return
    stmt = update(_ALERTS).where(_ALERTS.c.id == bindparam("alert_id"))
    session.connection().execute(stmt, [{"alert_id": a.id, **values} for a, values in refreshed])
    by_unit: dict[str, list[int]] = {}
    for a, values in refreshed:
        for key, value in values.items():  # the object shows the new values without being flushed again
            set_committed_value(a, key, value)
        by_unit.setdefault(a.unit_code, []).append(a.id)
    for unit, ids in sorted(by_unit.items()):
        record(session, "update", "alert", None, unit,
               {"refreshed": sorted(ids), "fields": sorted(refreshed[0][1])})  # fmt: skip
