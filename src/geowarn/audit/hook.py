"""Records every ORM insert, update and delete in the audit log, in the same transaction.

The actor comes from ``session.info["actor"]`` (set by ``Database.write``). Secrets are never
written to the log and personal fields are stored masked, so the log can be shown to auditors.
Bulk paths that bypass the ORM (file import) write their own summary entry.
"""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any, cast

import shapely
from sqlalchemy import Table, event, insert, inspect
from sqlalchemy.orm import Session

from geowarn.audit.models import AuditEntry
from geowarn.auth.masking import SECRET_FIELDS, SENSITIVE_FIELDS
from geowarn.db import utcnow
from geowarn.db.bulk import insert_rows

_SKIP_TABLES = frozenset({"audit_log", "api_token"})
_SKIP_FIELDS = frozenset({"created_at", "updated_at", "version", "minx", "miny", "maxx", "maxy", "last_used_at"})


def actor_of(session: Session) -> tuple[str, int | None]:
    actor = session.info.get("actor")
    if actor is None:
        return "system", None
    if isinstance(actor, str):
        return actor, None
    return str(getattr(actor, "username", actor)), getattr(actor, "id", None)


def _plain(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in SECRET_FIELDS:
        return "***"
    if name in SENSITIVE_FIELDS:
        return SENSITIVE_FIELDS[name](str(value))
    if isinstance(value, shapely.Geometry):
        wkt = shapely.to_wkt(value, rounding_precision=6)
        return wkt if len(wkt) <= 200 else wkt[:197] + "..."
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, str | int | float | bool | list | dict):
        return value
    return str(value)


def _pk(obj: Any) -> str | None:
    """The primary key as text. In ``after_flush`` a new object has no identity yet (the session still
    shows the pre-flush state) but its key columns are already set by the INSERT."""
    state = inspect(obj)
    ident = state.identity or state.mapper.primary_key_from_instance(obj)
    if not ident or any(i is None for i in ident):
        return None
    return ",".join(str(i) for i in ident)


def _unit_of(obj: Any, table: str) -> str | None:
    """The unit a change belongs to, so the scoped audit view shows it (a unit's own code for units)."""
    if table == "admin_unit":
        return getattr(obj, "code", None)
    unit = getattr(obj, "unit_code", None)
    if unit is None and table == "site_status_change":
        site = getattr(obj, "site", None)
        unit = getattr(site, "unit_code", None)
    return unit


def _entries(session: Session) -> list[dict[str, Any]]:
    actor, actor_id = actor_of(session)
    now = utcnow()
    rows: list[dict[str, Any]] = []
    groups = (("create", session.new), ("update", session.dirty), ("delete", session.deleted))
    for action, objs in groups:
        for obj in objs:
            table = getattr(obj, "__tablename__", None)
            if table is None or table in _SKIP_TABLES:
                continue
            state = inspect(obj)
            changes: dict[str, Any] = {}
            for attr in state.mapper.column_attrs:
                key = attr.key
                if key in _SKIP_FIELDS:
                    continue
                hist = state.attrs[key].history
                if action == "create":
                    val = getattr(obj, key)
                    if val is not None:
                        changes[key] = _plain(key, val)
                elif action == "update" and hist.has_changes():
                    old = hist.deleted[0] if hist.deleted else None
                    new = hist.added[0] if hist.added else None
                    changes[key] = [_plain(key, old), _plain(key, new)]
            if action == "update" and not changes:
                continue
            rows.append(
                {
                    "at": now,
                    "actor": actor,
                    "actor_id": actor_id,
                    "action": action,
                    "entity": table,
                    "entity_id": _pk(obj),
                    "unit_code": _unit_of(obj, table),
                    "changes": changes,
                }
            )
    return rows


@event.listens_for(Session, "after_flush")
def _audit_after_flush(session: Session, _ctx: Any) -> None:
    _insert(session, _entries(session))


#: Entries written at once above which the bulk path (COPY on PostgreSQL) is used.
BULK_ENTRIES = 20


def _insert(session: Session, rows: list[dict[str, Any]]) -> None:
    if len(rows) >= BULK_ENTRIES:  # a storm's alerts, a warning's issues: COPY, not a 900-row statement
        insert_rows(session, cast(Table, AuditEntry.__table__), rows)
    elif rows:
        session.connection().execute(insert(AuditEntry), rows)


def record(
    session: Session,
    action: str,
    entity: str,
    entity_id: str | None,
    unit_code: str | None,
    changes: dict[str, Any],
) -> None:
    """Write one explicit entry (for bulk work that bypasses the ORM)."""
    _write(session, [(action, entity, entity_id, unit_code, changes)])


def record_created(session: Session, entity: str, rows: list[tuple[str | None, str | None, dict[str, Any]]]) -> None:
    """One "create" entry per row (entity id, unit, column values) of a bulk insert that bypassed the ORM:
    the same entry the flush hook writes for an ORM insert (non-empty fields, secrets and personal data
    masked), in one statement."""
    _write(
        session,
        [("create", entity, entity_id, unit, {k: _plain(k, v) for k, v in values.items()
                                               if v is not None and k not in _SKIP_FIELDS})
         for entity_id, unit, values in rows],
    )  # fmt: skip


def _write(session: Session, entries: list[tuple[str, str, str | None, str | None, dict[str, Any]]]) -> None:
    if not entries:
        return
    actor, actor_id = actor_of(session)
    at = utcnow()
    _insert(
        session,
        [
            {"at": at, "actor": actor, "actor_id": actor_id, "action": action, "entity": entity,
             "entity_id": entity_id, "unit_code": unit_code, "changes": changes}
            for action, entity, entity_id, unit_code, changes in entries
        ],
    )  # fmt: skip
