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

from typing import Any, cast

from sqlalchemy import Table, bindparam, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from geowarn.audit.bulk import insert_new
from geowarn.audit.hook import record, record_created
from geowarn.db.bulk import insert_returning_ids
from geowarn.warning.models import Alert, AlertEvent

_ALERTS = cast(Table, Alert.__table__)
_EVENTS = cast(Table, AlertEvent.__table__)


def insert_alerts(session: Session, alerts: list[Alert]) -> None:
    """Insert ``alerts`` (new, not in the session) and attach them with their ids."""
    insert_new(session, alerts, "alert")


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
