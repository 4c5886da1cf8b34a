"""Objects inserted by ``insert_new`` are stored and audited exactly as an ORM flush stores them."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from geowarn.audit.bulk import insert_new
from geowarn.audit.models import AuditEntry
from geowarn.db import Database
from geowarn.dissemination.models import WarningIssue

COLUMNS = [c.key for c in WarningIssue.__table__.columns if c.key != "id"]


def _issue(n: int, **extra: Any) -> WarningIssue:
    # previous_level, context and the counts are left unset: their Python defaults apply
    return WarningIssue(subject=f"alert:{n}", version=1, kind="initial", warning_type="site", level=3,
                        unit_code="350922100", issued_ms=1_750_000_000_000 + n, title=f"滑坡{n}预警",
                        cap_identifier=f"350922-{n}", **extra)  # fmt: skip


def test_bulk_and_flush_store_and_audit_the_same(db: Database) -> None:
    with db.write("engine") as s:
        by_orm = [_issue(1), _issue(2, context={"site_name": "甲", "n": [1, 2]}, previous_level=1)]
        s.add_all(by_orm)
        s.flush()
        by_bulk = [_issue(3), _issue(4, context={"site_name": "甲", "n": [1, 2]}, previous_level=1)]
        insert_new(s, by_bulk, "dissemination_issue")
        assert all(i.id > 0 for i in by_bulk) and len({i.id for i in by_orm + by_bulk}) == 4
        assert by_bulk[0].context == {} and by_bulk[0].messages_count == 0  # defaults shown on the object
        by_bulk[1].messages_count = 7  # the attached object flushes later changes as usual
    with db.read() as s:
        stored = {i.subject: i for i in s.scalars(select(WarningIssue))}
        entries = s.scalars(select(AuditEntry).where(AuditEntry.entity == "dissemination_issue")).all()

    def row(subject: str) -> dict[str, Any]:
        values = {k: getattr(stored[subject], k) for k in COLUMNS}
        return {**values, "subject": "", "issued_ms": 0, "cap_identifier": "", "title": ""}

    assert row("alert:1") == row("alert:3")
    assert row("alert:2") == {**row("alert:4"), "messages_count": 0}
    assert stored["alert:4"].messages_count == 7
    created = {e.entity_id: e for e in entries if e.action == "create"}
    assert len(created) == len([e for e in entries if e.action == "create"])
    assert set(created) == {str(i.id) for i in stored.values()}

    def change(subject: str) -> dict[str, Any]:
        e = created[str(stored[subject].id)]
        assert (e.actor, e.unit_code, e.changes["id"]) == ("engine", "350922100", stored[subject].id)
        varying = ("id", "subject", "issued_ms", "cap_identifier", "title")
        return {k: v for k, v in e.changes.items() if k not in varying}

    assert change("alert:1") == change("alert:3") and change("alert:2") == change("alert:4")
    (update,) = [e for e in entries if e.action == "update"]
    assert update.entity_id == str(stored["alert:4"].id) and update.changes["messages_count"] == [0, 7]


def test_bulk_objects_stay_readable_and_unset_json_is_refused(db: Database) -> None:
    from geowarn.warning.models import Alert

    with db.write("engine") as s:
        issue = _issue(5)
        insert_new(s, [issue], "dissemination_issue")
        # a JSON column with no default left unset: a flush stores SQL NULL, the bulk path cannot
        alert = Alert(kind="site_rule", rule_id="r", rule_name="雨量", unit_code="350922100", status="open",
                      level=2, max_level=2, opened_ms=1, updated_ms=1, flaps=0, reason={})  # fmt: skip
        with pytest.raises(ValueError, match="forecast"):
            insert_new(s, [alert], "alert")
    # every column was loaded onto the object: nothing to fetch after the session ended
    assert (issue.alert_id, issue.product_version_id, issue.context) == (None, None, {})
