"""An engine batch of alert changes writes exactly what the changes applied one by one write.

Several sites and levels, on both backends: escalation, de-escalation, a lift, a flap that reopens,
a silenced site, a technical alarm (not told), quiet hours at night, and group endpoints. The batched
path (:func:`geowarn.warning.transitions.apply_levels`, one transaction per batch) and the per-alert
path (:func:`geowarn.warning.alerts.apply_level`, one transaction per change) run in fresh databases
built the same way; alerts, events, issues, recipients, outbox rows and response tasks must match
(random link tokens and confirmation codes aside).
"""

from __future__ import annotations

from typing import Any

import shapely
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from geowarn.admin.models import AdminUnit
from geowarn.db import Base, Database
from geowarn.dissemination import resolve
from geowarn.dissemination.models import Endpoint, IssueRecipient, OutboxMessage, Preference, ResponseTask, WarningIssue
from geowarn.dissemination.outbox import Warning, publish
from geowarn.dissemination.outbox_batch import publish_many
from geowarn.inventory.models import HazardSite, Household, Person, Resident
from geowarn.warning import alerts
from geowarn.warning.levels import Level
from geowarn.warning.models import Alert, AlertEvent, Silence
from geowarn.warning.transitions import LevelChange, apply_levels
from tests.conftest import _truncate_pg
from tests.dissemination.world import COUNTY, MIN, T0, TOWN, VILLAGE, build

TOWN2, VILLAGE2 = "350922200", "350922200001"
NIGHT = T0 - 10 * 60 * MIN  # 22:00 China time: quiet hours hold blue and yellow, never orange or red


def _person(s: Session, name: str, phone: str, roles: list[str], unit: str) -> int:
    p = Person(name=name, phone=phone, roles=roles, unit_code=unit, active=True)
    s.add(p)
    s.flush()
    return p.id


def _site(s: Session, code: str, name: str, lon: float, unit: str, town: str, resp: int, mon: int | None,
          zone: Any = None) -> int:  # fmt: skip
    site = HazardSite(code=code, name=name, hazard_type="landslide", lon=lon, lat=26.005,
                      geom=shapely.Point(lon, 26.005), danger_zone_geom=zone, unit_code=unit, township_code=town,
                      responsible_person_id=resp, monitor_id=mon, extra={})  # fmt: skip
    s.add(site)
    s.flush()
    return site.id


def _world(db: Database) -> dict[str, int]:
    """The dissemination world plus three sites: B (its danger zone holds H3 and a linked household),
    C in a second township (its responsible person keeps quiet hours), D (silenced)."""
    w = build(db)
    with db.write("seed") as s:
        s.add_all([AdminUnit(code=TOWN2, name="乙镇", level="township", parent_code=COUNTY),
                   AdminUnit(code=VILLAGE2, name="下村", level="village", parent_code=TOWN2)])  # fmt: skip
        mon_b = _person(s, "郑监测", "13900000101", ["monitor"], VILLAGE)
        resp_c = _person(s, "冯责任", "13900000201", ["responsible"], VILLAGE2)
        _person(s, "褚镇长", "13900000202", ["duty_official"], TOWN2)
        zone_b = shapely.MultiPolygon([shapely.box(119.05, 26.0, 119.06, 26.01)])
        b = _site(s, "HP002", "上村崩塌", 119.055, VILLAGE, TOWN, w.persons["responsible"], mon_b, zone_b)
        c = _site(s, "HP003", "下村滑坡", 119.3, VILLAGE2, TOWN2, resp_c, None)
        d = _site(s, "HP004", "上村泥石流", 119.1, VILLAGE, TOWN, w.persons["village"], None)
        h5 = Household(code="H5", head_name="蒋大", phone="13900000050", size=2, lon=119.2, lat=26.2,
                       geom=shapely.Point(119.2, 26.2), unit_code=VILLAGE, site_id=b, shelter_id=w.shelter)  # fmt: skip
        s.add(h5)
        s.flush()
        s.add(Resident(household_id=h5.id, name="蒋二", phone="13900000051", unit_code=VILLAGE))
        s.add_all([
            Preference(person_key=f"person:{resp_c}", channels=["sms"], quiet_start="22:00", quiet_end="07:00",
                       unit_code=VILLAGE2),
            Preference(person_key=f"person:{w.persons['township']}", channels=["sms", "inbox"], quiet_start="21:00",
                       quiet_end="06:00", unit_code=TOWN),
            Endpoint(unit_code=COUNTY, channel="dingtalk", name="县应急群", url="http://x/robot", min_level=3),
            Endpoint(unit_code=TOWN, channel="wecom", name="镇值班群", url="http://x/wecom", min_level=1),
            Silence(site_id=d, unit_code=VILLAGE, start_ms=NIGHT - 60 * MIN, end_ms=NIGHT + 60 * MIN, reason="检修"),
        ])  # fmt: skip
    return {"A": w.site, "B": b, "C": c, "D": d}


def _batches(sites: dict[str, int]) -> list[list[LevelChange]]:
    def change(site: str, rule: str, level: Level, t: int) -> LevelChange:
        unit = VILLAGE2 if site == "C" else VILLAGE
        reason = {"terms": [{"series": "rain_24h", "value": 10 * int(level)}]}
        return LevelChange(alerts.SITE_RULE, rule, unit, level, t, sites[site], None, f"规则{rule}", reason)

    offline = LevelChange(alerts.NO_DATA, "no_data:X", VILLAGE, Level.BLUE, NIGHT, sites["A"], None, "传感器无数据")
    t1, t2, t3 = NIGHT, NIGHT + 10 * MIN, NIGHT + 20 * MIN
    red, orange, yellow, blue, none = Level.RED, Level.ORANGE, Level.YELLOW, Level.BLUE, Level.NONE
    return [
        [change("A", "rate", red, t1), change("A", "rain", yellow, t1), change("B", "rate", orange, t1),
         change("C", "rain", blue, t1), change("D", "rain", yellow, t1), offline],
        [change("A", "rate", yellow, t2), change("A", "rain", yellow, t2), change("B", "rate", none, t2),
         change("C", "rain", red, t2), change("C", "rain", none, t2)],  # C twice: applied in order
        [change("B", "rate", orange, t3), change("A", "rate", none, t3), change("A", "rain", blue, t3)],
    ]  # fmt: skip


def _empty(db: Database) -> None:
    if db.is_postgres:
        _truncate_pg(db)
        return
    with db.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
        if conn.execute(text("SELECT name FROM sqlite_master WHERE name = 'sqlite_sequence'")).first():
            conn.execute(text("DELETE FROM sqlite_sequence"))


def _snapshot(db: Database) -> dict[str, Any]:
    """Every row the changes wrote, with ids replaced by what they stand for."""
    with db.read() as s:
        code = dict(s.execute(select(HazardSite.id, HazardSite.code)).all())
        alert_of = {a.id: (a.kind, code.get(a.site_id or 0), a.rule_id) for a in s.scalars(select(Alert))}
        out: dict[str, Any] = {
            "alerts": sorted(
                (alert_of[a.id], a.status, a.level, a.max_level, a.opened_ms, a.updated_ms, a.closed_ms, a.flaps,
                 a.open_key is not None, repr(a.reason), repr(a.forecast))
                for a in s.scalars(select(Alert))
            ),
            "events": [(alert_of[e.alert_id], e.t_ms, e.kind, e.level_from, e.level_to, repr(e.reason))
                       for e in s.scalars(select(AlertEvent).order_by(AlertEvent.id))],
        }  # fmt: skip
        issue_of: dict[int, tuple[Any, int]] = {}
        issues = []
        for i in s.scalars(select(WarningIssue).order_by(WarningIssue.id)):
            assert i.alert_id is None or i.subject == f"alert:{i.alert_id}"
            issue_of[i.id] = (alert_of[i.alert_id] if i.alert_id else i.subject, i.version)
            context = {k: v for k, v in i.context.items()}
            issues.append((issue_of[i.id], i.kind, i.level, i.previous_level, i.unit_code, i.issued_ms, i.title,
                           i.cap_identifier, i.recipients_count, i.messages_count, repr(context)))  # fmt: skip
        out["issues"] = issues
        recipients = {}
        for r in s.scalars(select(IssueRecipient)):
            recipients[r.id] = r
        out["recipients"] = sorted(
            (issue_of[r.issue_id], r.person_key, r.name, r.phone, r.unit_code, r.audience, repr(r.reasons),
             r.household_id, r.shelter_id, len(r.token), len(r.code))
            for r in recipients.values()
        )  # fmt: skip
        messages = []
        for m in s.scalars(select(OutboxMessage)):
            r = recipients[m.recipient_id or 0]
            assert m.idem_key == f"{m.issue_id}:{r.person_key}:{m.channel}" and r.issue_id == m.issue_id
            body = m.body.replace(r.token, "<token>").replace(r.code, "<code>") if r.code else m.body
            messages.append((issue_of[m.issue_id], r.person_key, m.channel, m.address, m.level, m.subject,
                             body.replace(r.token, "<token>"), m.segments, m.status, m.next_attempt_ms, m.created_ms,
                             m.unit_code))  # fmt: skip
        out["messages"] = sorted(messages)
        out["tasks"] = sorted(
            (issue_of[t.issue_id], t.kind, t.unit_code, t.status, repr(t.plan), t.households, t.people,
             t.may_return_ms, t.completed_ms)
            for t in s.scalars(select(ResponseTask))
        )  # fmt: skip
    return out


def test_a_batch_writes_what_the_changes_one_by_one_write(db: Database) -> None:
    sites = _world(db)
    for batch in _batches(sites):
        for c in batch:  # the per-alert path: each change its own transaction, as a field report
            with db.write("engine") as s:
                alerts.apply_level(s, kind=c.kind, rule_id=c.rule_id, unit_code=c.unit_code, level=c.level,
                                   now_ms=c.now_ms, site_id=c.site_id, rule_name=c.rule_name,
                                   reason=c.reason)  # fmt: skip
    one_by_one = _snapshot(db)
    _empty(db)
    assert _world(db) == sites
    for batch in _batches(sites):
        with db.write("engine") as s:
            outcomes = apply_levels(s, batch)
            assert len(outcomes) == len(batch)
    batched = _snapshot(db)
    for part in one_by_one:
        assert batched[part] == one_by_one[part], part
    # the scenario covers what it claims
    kinds = {(i[1], i[2]) for i in one_by_one["issues"]}
    assert {("initial", 4), ("update", 2), ("lift", 0), ("update", 3), ("initial", 1)} <= kinds
    events = {e[2] for e in one_by_one["events"]}
    assert {"opened", "escalated", "deescalated", "closed", "reopened"} <= events
    assert not any(a[0][1] == "HP004" for a in one_by_one["alerts"])  # silenced
    assert any(a[0][0] == alerts.NO_DATA for a in one_by_one["alerts"])
    assert not any(i[0][0][0] == alerts.NO_DATA for i in one_by_one["issues"])  # alarms are not told
    held = [m for m in one_by_one["messages"] if m[9] > m[10]]  # quiet hours: blue / yellow only
    assert held and all(m[4] <= Level.YELLOW for m in held)
    assert any(m[2] == "dingtalk" for m in one_by_one["messages"]) and one_by_one["tasks"]


def test_a_batch_counts_its_queries_once_not_per_alert(db: Database) -> None:
    """The batch's reads do not grow with the number of alert changes (the point of batching)."""
    from sqlalchemy import event

    sites = _world(db)
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    def run(changes: list[LevelChange]) -> int:
        statements.clear()
        with db.write("engine") as s:
            event.listen(s.connection(), "before_cursor_execute", count)
            apply_levels(s, changes)
        return len([q for q in statements if q.lstrip().upper().startswith("SELECT")])

    t = NIGHT
    few = run([LevelChange(alerts.SITE_RULE, "r0", VILLAGE, Level.ORANGE, t, sites["A"])])
    many = run([LevelChange(alerts.SITE_RULE, f"r{i}", VILLAGE2 if k == "C" else VILLAGE, Level.ORANGE, t, sites[k])
                for i in range(1, 6) for k in ("A", "B", "C")])  # fmt: skip
    assert many <= few + 2, (few, many)  # a second county-level read at most, never one per alert
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(WarningIssue)) == 16


def test_publish_many_writes_what_publish_writes(db: Database) -> None:
    """Two subjects written in one batch against the same warnings written one at a time (``publish``,
    which regional products use): versions, CAP numbers, carried recipients and groups all equal."""

    def run(batched: bool) -> dict[str, Any]:
        sites = _world(db)
        steps = [[("A", Level.RED, "initial"), ("C", Level.YELLOW, "initial")],
                 [("A", Level.YELLOW, "update"), ("C", Level.ORANGE, "update")],
                 [("A", Level.NONE, "lift"), ("C", Level.NONE, "lift")]]  # fmt: skip
        previous = {"A": Level.NONE, "C": Level.NONE}
        for n, step in enumerate(steps):
            with db.write("engine") as s:
                items = []
                for site, level, kind in step:
                    res = resolve.for_site(s, sites[site], level if level else Level.BLUE)
                    unit = VILLAGE2 if site == "C" else VILLAGE
                    w = Warning(f"test:{site}", kind, "site", level, previous[site], unit, f"{site}预警",
                                NIGHT + n * 10 * MIN, context={"site_name": site, "reason_zh": "测试"})  # fmt: skip
                    items.append((w, res))
                    previous[site] = level
                if batched:
                    publish_many(s, items, public_url="http://x")
                else:
                    for w, res in items:
                        publish(s, w, res, public_url="http://x")
        return _snapshot(db)

    one_by_one = run(batched=False)
    _empty(db)
    batched = run(batched=True)
    for part in ("issues", "recipients", "messages", "tasks"):
        assert batched[part] == one_by_one[part], part
    assert len(one_by_one["issues"]) == 6 and any(m[2] == "dingtalk" for m in one_by_one["messages"])
    # the county group (told at red, min_level orange) hears the lift too, on both paths
    groups = {(m[0], m[2]) for m in batched["messages"] if m[1].startswith("endpoint:")}
    assert {(("test:A", 1), "dingtalk"), (("test:A", 3), "dingtalk")} <= groups
    assert (("test:C", 1), "dingtalk") not in groups and (("test:C", 3), "dingtalk") in groups  # told at orange
