"""Confirmation, escalation, response tasks, transfers, the timeline and CAP export, on both backends."""

from __future__ import annotations

import pytest
import shapely
from lxml import etree
from sqlalchemy import select, update

from geowarn.auth.models import User
from geowarn.db import Database
from geowarn.dissemination import ack, capexport, response
from geowarn.dissemination.cap import CapSchema
from geowarn.dissemination.models import IssueRecipient, OutboxMessage, ResponseTask, WarningIssue
from geowarn.errors import InvalidInput, InvalidTransition, NotFound
from geowarn.warning import alerts
from geowarn.warning import products as wf
from geowarn.warning.levels import Level
from tests.dissemination.world import MIN, T0, TOWN, VILLAGE, build

HOUR = 60 * MIN
OPERATOR = User(username="operator", role="operator", unit_code="350922")
WEATHER = User(username="weather", role="weather", unit_code="350922")
NS = {"c": "urn:oasis:names:tc:emergency:cap:1.2"}


def _alert(db: Database, site: int, level: Level, t: int) -> None:
    with db.write("engine") as s:
        alerts.apply_level(
            s,
            kind=alerts.SITE_RULE,
            rule_id="rate",
            unit_code=VILLAGE,
            level=level,
            now_ms=t,
            site_id=site,
            rule_name="位移速率",
        )


def _by_name(db: Database) -> dict[str, IssueRecipient]:
    with db.read() as s:
        return {r.person_key if "#esc" in r.person_key else r.name: r for r in s.scalars(select(IssueRecipient))}


def test_confirmation_by_link_code_and_reply(db: Database) -> None:
    w = build(db)
    _alert(db, w.site, Level.ORANGE, T0)
    got = _by_name(db)
    with db.write("x") as s:
        assert ack.by_token(s, got["王责任"].token, T0 + MIN).ack_via == "link"
        assert ack.by_code(s, "+86 13900000003", got["赵村干"].code, T0 + 2 * MIN).ack_via == "code"
        with pytest.raises(InvalidInput):
            ack.by_code(s, "13900000004", got["赵村干"].code, T0)  # the code is only good with its phone
        with pytest.raises(NotFound):
            ack.by_token(s, "x" * 22, T0)
        assert ack.by_reply(s, "13900000004", "收到", T0 + 3 * MIN) is not None
        assert ack.by_reply(s, "13900000004", "明天再说", T0 + 3 * MIN) is None
        again = ack.by_token(s, got["王责任"].token, T0 + 9 * MIN)
        assert again.acked_ms == T0 + MIN  # the first confirmation stands
    got = _by_name(db)
    assert {n: r.ack_via for n, r in got.items() if r.acked_ms} == {
        "王责任": "link",
        "赵村干": "code",
        "钱镇长": "reply",
    }


def test_unconfirmed_orange_is_escalated_village_township_county_and_recorded(db: Database) -> None:
    w = build(db)
    _alert(db, w.site, Level.ORANGE, T0)
    got = _by_name(db)
    with db.write("x") as s:
        ack.by_token(s, got["王责任"].token, T0 + MIN)
        assert ack.escalate_due(s, T0 + 14 * MIN, 15) == []  # not yet overdue
        made = ack.escalate_due(s, T0 + 15 * MIN, 15)
        assert ack.escalate_due(s, T0 + 16 * MIN, 15) == []  # each person once; escalations wait their own 15 min
    got = _by_name(db)
    esc = {(got_name(got, r.escalation_of), r.name) for r in made}
    # the monitor and the village official go to the township; the township's official to the county
    assert esc == {("李监测", "钱镇长"), ("赵村干", "钱镇长"), ("钱镇长", "孙值班")}
    assert got["王责任"].escalated_ms is None  # he confirmed
    assert got["孙值班"].escalated_ms == T0 + 15 * MIN  # nobody above the county: recorded, nobody told
    with db.read() as s:
        texts = [m.body for m in s.scalars(select(OutboxMessage).where(OutboxMessage.idem_key.like("%#esc%")))]
    assert len(texts) == 3 and all("督办" in t and "15分钟" in t for t in texts)
    with db.write("x") as s:  # 15 minutes later the unconfirmed escalations to the township go up again
        later = ack.escalate_due(s, T0 + 30 * MIN, 15)
    assert {r.name for r in later} == {"孙值班"} and len(later) == 2


def got_name(got: dict[str, IssueRecipient], rid: int | None) -> str:
    return next(n for n, r in got.items() if r.id == rid)


def test_yellow_is_never_escalated(db: Database) -> None:
    w = build(db)
    _alert(db, w.site, Level.YELLOW, T0)
    with db.write("x") as s:
        assert ack.escalate_due(s, T0 + 10 * HOUR, 15) == []


def _red_product(db: Database) -> int:
    areas = {4: shapely.box(118.99, 25.99, 119.07, 26.03)}
    content = wf.VersionContent(T0, T0 + 24 * HOUR, areas=areas, areas_km2={4: 70.0}, message="特大暴雨")
    with db.write("operator") as s:
        p = wf.create(s, OPERATOR, "350922", "示范县地质灾害气象风险红色预警", content, T0)
        v = p.versions[0]
        wf.submit(v, T0 + 1)
        wf.sign(s, v, OPERATOR, "natural_resources", "approve", None, T0 + 2)
        wf.sign(s, v, WEATHER, "weather", "approve", None, T0 + 3)
        wf.issue(s, v, OPERATOR, T0 + 4)
        return p.id


def _next_version(db: Database, pid: int, kind: str, areas: dict[int, object], t: int) -> None:
    with db.write("operator") as s:
        from geowarn.warning.product_models import RegionalProduct

        p = s.get(RegionalProduct, pid)
        assert p is not None
        content = wf.VersionContent(t, t + 24 * HOUR, areas=areas, message="更新")
        v = wf.draft_version(s, p, OPERATOR, kind, content, t)
        wf.submit(v, t + 1)
        wf.sign(s, v, OPERATOR, "natural_resources", "approve", None, t + 2)
        if kind != "lift" and v.level >= Level.YELLOW:
            wf.sign(s, v, WEATHER, "weather", "approve", None, t + 3)
        wf.issue(s, v, OPERATOR, t + 4)


def test_red_product_transfer_orders_records_occupancy_timeline_and_return(db: Database) -> None:
    w = build(db)
    pid = _red_product(db)
    subject = f"product:{pid}"
    with db.read() as s:
        (order,) = s.scalars(select(ResponseTask).where(ResponseTask.kind == "transfer")).all()
        (patrol,) = s.scalars(select(ResponseTask).where(ResponseTask.kind == "patrol")).all()
    assert order.unit_code == TOWN and patrol.plan["sites"][0]["code"] == "HP001"
    planned = {h["code"]: h for h in order.plan["households"]}
    assert set(planned) == {"H1", "H2", "H3"} and order.people == 3 + 2 + 1
    assert order.plan["shelters"] == [{"id": w.shelter, "name": "上村小学避险点"}]
    with db.write("x") as s:
        t = s.get(ResponseTask, order.id)
        assert t is not None
        for i, code in enumerate(("H1", "H2")):
            response.record_transfer(
                s,
                t,
                household_id=planned[code]["household_id"],
                shelter_id=None,
                people=planned[code]["people"],
                moved_ms=T0 + (i + 1) * MIN,
                by="镇干部",
            )
        assert t.status == "open"
        with pytest.raises(InvalidInput):
            response.record_transfer(
                s, t, household_id=w.households["H4"], shelter_id=None, people=1, moved_ms=T0, by="x"
            )
        response.record_transfer(
            s,
            t,
            household_id=planned["H3"]["household_id"],
            shelter_id=None,
            people=1,
            moved_ms=T0 + 40 * MIN,
            by="镇干部",
        )
        assert (t.status, t.completed_ms) == ("done", T0 + 40 * MIN)
        assert response.occupancy(s) == {w.shelter: 6}
        with pytest.raises(InvalidTransition):
            response.record_return(s, t, T0 + HOUR)  # no return before the lift
        for r in s.scalars(select(IssueRecipient).where(IssueRecipient.audience == "responsible")):
            r.acked_ms = T0 + 20 * MIN
        s.execute(update(OutboxMessage).values(status="sent", sent_ms=T0 + 5))
    with db.read() as s:
        tl = response.timeline(s, subject)
    (town,) = [x for x in tl["townships"] if x["township"] == TOWN]
    assert town == {
        "township": TOWN,
        "issued_ms": T0 + 4,
        "first_delivered_ms": T0 + 5,
        "responsible": 2,
        "responsible_confirmed": 2,
        "all_responsible_confirmed_ms": T0 + 20 * MIN,
        "transfer_orders": 1,
        "transfer_complete_ms": T0 + 40 * MIN,
    }
    _next_version(db, pid, "lift", {}, T0 + 10 * HOUR)
    with db.write("x") as s:
        t = s.get(ResponseTask, order.id)
        assert t is not None and (t.status, t.may_return_ms) == ("may_return", T0 + 10 * HOUR + 4)
        assert response.record_return(s, t, T0 + 11 * HOUR) == 6
        assert response.occupancy(s) == {} and t.status == "closed"
        p = s.get(ResponseTask, patrol.id)
        assert p is not None and p.status == "closed"


def test_every_version_is_valid_cap_and_updates_reference_the_original(db: Database) -> None:
    build(db)
    pid = _red_product(db)
    _next_version(db, pid, "update", {3: shapely.box(118.99, 25.99, 119.07, 26.03)}, T0 + 3 * HOUR)
    _next_version(db, pid, "lift", {}, T0 + 10 * HOUR)
    schema = CapSchema()
    with db.read() as s:
        issues = s.scalars(select(WarningIssue).order_by(WarningIssue.version)).all()
        docs = [capexport.cap_document(s, i) for i in issues]
        feed = capexport.atom_feed(capexport.active_issues(s, WarningIssue.unit_code.like("350922%")), "http://x", "f")
    assert [schema.errors(d) for d in docs] == [[], [], []]
    roots = [etree.fromstring(d) for d in docs]
    assert [r.findtext("c:msgType", namespaces=NS) for r in roots] == ["Alert", "Update", "Cancel"]
    first = roots[0].findtext("c:identifier", namespaces=NS)
    assert first is not None and first.startswith("350922ZRZY20260701080000")
    assert first in (roots[1].findtext("c:references", namespaces=NS) or "")
    assert (roots[0].findtext("c:sent", namespaces=NS) or "").endswith("+08:00")
    info = roots[0].find("c:info", NS)
    assert info is not None
    assert (info.findtext("c:category", namespaces=NS), info.findtext("c:severity", namespaces=NS)) == (
        "Geo",
        "Extreme",
    )
    assert (
        info.findtext("c:area/c:polygon", namespaces=NS)
        and info.findtext("c:area/c:geocode/c:value", namespaces=NS) == TOWN
    )
    assert b"<entry>" not in feed  # lifted: nothing active


def test_a_site_alert_is_valid_cap_with_the_danger_zone(db: Database) -> None:
    w = build(db)
    _alert(db, w.site, Level.RED, T0)
    with db.read() as s:
        issue = s.scalars(select(WarningIssue)).one()
        doc = capexport.cap_document(s, issue)
        feed = capexport.atom_feed(capexport.active_issues(s, WarningIssue.unit_code.like("350922%")), "http://x", "f")
    assert CapSchema().errors(doc) == []
    root = etree.fromstring(doc)
    assert root.findtext("c:info/c:certainty", namespaces=NS) == "Observed"
    assert "119.00000" in (root.findtext("c:info/c:area/c:polygon", namespaces=NS) or "").replace(",", " ")
    assert feed.count(b"<entry>") == 1 and issue.cap_identifier.encode() in feed
