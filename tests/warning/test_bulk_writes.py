"""Alerts and events written in bulk are audited like ORM writes, and their objects stay usable."""

from __future__ import annotations

from sqlalchemy import func, select

from geowarn.audit.models import AuditEntry
from geowarn.db import Database
from geowarn.inventory.models import HazardSite
from geowarn.warning.levels import Level
from geowarn.warning.models import Alert, AlertEvent
from geowarn.warning.transitions import SITE_RULE, LevelChange, apply_levels
from tests.monitoring.network import T0, build_network

MIN = 60_000


def test_every_new_alert_and_event_has_its_audit_entry(db: Database) -> None:
    build_network(db, n_rain=1, n_gnss=0)
    with db.read() as s:
        site = s.scalars(select(HazardSite)).one()
        site_id, unit = site.id, site.unit_code
    with db.write("warning-engine") as s:
        out = apply_levels(s, [
            LevelChange(SITE_RULE, "rain_24h", unit, Level.YELLOW, T0, site_id, None, "24小时累计雨量", {"v": 71}),
            LevelChange(SITE_RULE, "rain_1h", unit, Level.BLUE, T0, site_id, None, "1小时雨量", {"v": 9}),
        ])  # fmt: skip
        assert [o.alert is not None and o.alert.id > 0 for o in out] == [True, True]
        first = out[0].alert
        assert first is not None and [e.kind for e in first.events] == ["opened"]  # the rows are there
    with db.write("warning-engine") as s:  # an escalation later: the ORM update and the bulk event
        apply_levels(s, [LevelChange(SITE_RULE, "rain_24h", unit, Level.ORANGE, T0 + 10 * MIN, site_id,
                                     None, "24小时累计雨量", {"v": 111})])  # fmt: skip
    with db.read() as s:
        alerts = {a.rule_id: a for a in s.scalars(select(Alert))}
        events = s.scalars(select(AlertEvent).order_by(AlertEvent.id)).all()
        entries = s.scalars(select(AuditEntry).where(AuditEntry.entity.in_(["alert", "alert_event"]))).all()
    assert [(e.kind, e.level_to) for e in events] == [("opened", 2), ("opened", 1), ("escalated", 3)]
    created = {(e.entity, e.entity_id): e for e in entries if e.action == "create"}
    assert set(created) == {("alert", str(a.id)) for a in alerts.values()} | {
        ("alert_event", str(e.id)) for e in events
    }
    entry = created[("alert", str(alerts["rain_24h"].id))]
    assert entry.actor == "warning-engine" and entry.unit_code == unit
    assert entry.changes["level"] == 2 and entry.changes["reason"] == {"v": 71} and "closed_ms" not in entry.changes
    assert created[("alert_event", str(events[2].id))].changes["level_to"] == 3
    (update,) = [e for e in entries if e.action == "update"]  # the escalation, by the flush hook
    assert update.entity_id == str(alerts["rain_24h"].id) and update.changes["level"] == [2, 3]


def test_an_unchanged_level_refreshes_the_reason_in_bulk_with_one_audit_entry(db: Database) -> None:
    build_network(db, n_rain=1, n_gnss=0)
    with db.read() as s:
        site = s.scalars(select(HazardSite)).one()
        site_id, unit = site.id, site.unit_code

    def change(t: int, v: int) -> LevelChange:
        return LevelChange(SITE_RULE, "rain_24h", unit, Level.YELLOW, t, site_id, None, "24小时累计雨量", {"v": v},
                           refresh_every_ms=30 * MIN)  # fmt: skip

    with db.write("warning-engine") as s:
        apply_levels(s, [change(T0, 71)])
    with db.write("warning-engine") as s:
        apply_levels(s, [change(T0 + 10 * MIN, 72)])  # too soon: nothing written
    with db.write("warning-engine") as s:
        (out,) = apply_levels(s, [change(T0 + 40 * MIN, 75)])
        assert out.alert is not None and out.alert.reason == {"v": 75} and not s.dirty  # shown, nothing pending
    with db.read() as s:
        (alert,) = s.scalars(select(Alert)).all()
        events = s.scalars(select(AlertEvent)).all()
        updates = s.scalars(select(AuditEntry).where(AuditEntry.entity == "alert", AuditEntry.action == "update")).all()
    assert (alert.reason, alert.updated_ms, alert.level) == ({"v": 75}, T0 + 40 * MIN, 2)
    assert [e.kind for e in events] == ["opened"]  # a refresh is not an event
    assert [(u.unit_code, u.changes["refreshed"]) for u in updates] == [(unit, [alert.id])]


def test_bulk_ids_come_in_order_and_values_read_back_as_the_orm_writes_them(db: Database) -> None:
    """``insert_returning_ids`` (COPY with ids drawn from the sequence on PostgreSQL): ids in row order,
    JSON and None as the ORM stores them, and the sequence moves on for later ORM inserts."""
    from geowarn.db.bulk import insert_returning_ids

    build_network(db, n_rain=1, n_gnss=0)
    with db.read() as s:
        site = s.scalars(select(HazardSite)).one()
        site_id, unit = site.id, site.unit_code
    base = {"kind": SITE_RULE, "site_id": site_id, "device_id": None, "rule_name": "雨量", "unit_code": unit,
            "status": "open", "max_level": 2, "updated_ms": T0, "closed_ms": None, "flaps": 0,
            "acknowledged_ms": None, "acknowledged_by": None, "ack_comment": None}  # fmt: skip
    rows = [{**base, "rule_id": f"r{i}", "level": 1 + i % 4, "opened_ms": T0 + i,
             "reason": {"terms": [{"series": "rain_24h", "value": 50.5 + i}], "说明": "暴雨"},
             "forecast": None if i % 2 else {"t_failure_ms": T0 + i, "r2": 0.97}} for i in range(7)]  # fmt: skip
    with db.write("warning-engine") as s:
        ids = insert_returning_ids(s, Alert.__table__, rows)  # type: ignore[arg-type]
        orm = Alert(**{**rows[1], "rule_id": "orm"})
        s.add(orm)
        s.flush()
        assert orm.id > max(ids)
    assert len(set(ids)) == 7 and ids == sorted(ids)
    with db.read() as s:
        got = {a.id: a for a in s.scalars(select(Alert))}
        null_forecasts = s.scalar(select(func.count()).select_from(Alert).where(Alert.forecast.is_(None)))
        orm_null = s.scalar(select(Alert.forecast.is_(None)).where(Alert.rule_id == "orm"))
    for i, row in zip(ids, rows, strict=True):
        a = got[i]
        assert (a.rule_id, a.level, a.opened_ms, a.reason, a.forecast) == (
            row["rule_id"], row["level"], row["opened_ms"], row["reason"], row["forecast"])  # fmt: skip
    # a None JSON value is stored the way the ORM stores it (SQL NULL or JSON null alike for both)
    assert null_forecasts in (0, 4) and bool(orm_null) == (null_forecasts == 4)
