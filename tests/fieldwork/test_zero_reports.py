"""Daily zero reports: one a day by the deadline, two during an orange/red response, the county's status."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from geowarn.auth.models import User
from geowarn.db import Database
from geowarn.errors import Conflict, InvalidInput, PermissionDenied
from geowarn.fieldwork import zero_reports
from geowarn.fieldwork.domain import CHINA, ZeroReportCalendar, in_flood_season, next_slot
from geowarn.fieldwork.models import ResponsePeriod
from geowarn.fieldwork.schemas import ZeroReportIn
from geowarn.inventory.models import Person
from geowarn.warning.models import Alert
from geowarn.warning.product_models import ProductVersion, RegionalProduct
from tests.api.apiworld import COUNTY, TOWN_A, TOWN_B, World, login

DAY = dt.date(2026, 7, 1)
CAL = ZeroReportCalendar(season_start="05-01", season_end="09-30")


def at(hour: int, minute: int = 0, day: dt.date = DAY) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), CHINA)


def user(db: Database, name: str) -> User:
    with db.read() as s:
        u = s.scalars(select(User).where(User.username == name)).one()
        s.expunge(u)
        return u


def report(town: str = TOWN_A, day: dt.date = DAY, **kw: object) -> ZeroReportIn:
    return ZeroReportIn.model_validate(
        {"client_uuid": str(uuid.uuid4()), "unit_code": town, "report_date": day, "nothing_new": True} | kw
    )


def submit(db: Database, who: str, body: ZeroReportIn, now: dt.datetime) -> tuple[int, bool, bool]:
    with db.write(actor=who) as s:
        r, created = zero_reports.submit(s, user(db, who), body, CAL, 3, now)
        s.flush()
        return r.slot, r.late, created


def test_calendar_rules() -> None:
    assert in_flood_season(dt.date(2026, 7, 1), "05-01", "09-30")
    assert not in_flood_season(dt.date(2026, 12, 1), "05-01", "09-30")
    assert in_flood_season(dt.date(2026, 1, 5), "11-01", "02-28")  # a season across the new year
    d = CAL.deadlines(DAY, True)
    assert next_slot(d, set(), at(7)) == (1, False)
    assert next_slot(d, set(), at(9)) == (1, True)  # missed the morning: fills it, late
    assert next_slot(d, {1}, at(9)) == (2, False)
    assert next_slot(d, {1, 2}, at(9)) is None
    assert next_slot((), set(), at(9)) == (1, False) and next_slot((), {1}, at(9)) is None


def test_one_report_a_day_and_the_county_status(db: Database, world: World) -> None:
    assert submit(db, "alpha_monitor", report(), at(10)) == (1, False, True)
    with pytest.raises(Conflict):
        submit(db, "alpha_monitor", report(), at(11))
    with db.read() as s:
        before = zero_reports.status(s, COUNTY, DAY, CAL, 3, at(12))
        after = zero_reports.status(s, COUNTY, DAY, CAL, 3, at(18))
        outside = zero_reports.status(s, COUNTY, dt.date(2026, 12, 1), CAL, 3, at(18, day=dt.date(2026, 12, 1)))
    assert (before.townships, before.required, before.reported, before.complete) == (2, 2, 1, 1)
    assert [(m.code, m.overdue) for m in before.missing] == [(TOWN_B, 0)]
    assert before.missing[0].next_deadline == at(17)
    assert [(m.code, m.overdue, m.next_deadline) for m in after.missing] == [(TOWN_B, 1, None)]
    assert not outside.in_season and outside.required == 0 and outside.missing == []
    # B reports after the deadline: accepted, marked late.
    assert submit(db, "beta_monitor", report(TOWN_B), at(18)) == (1, True, True)


def test_an_orange_alert_in_the_township_means_two_reports(db: Database, world: World) -> None:
    with db.write(actor="seed") as s:
        s.add(Alert(kind="site_rule", site_id=world.a.site, rule_id="r", unit_code=TOWN_A, status="open", level=3,
                    max_level=3, opened_ms=0, updated_ms=0, reason={}, open_key="x"))  # fmt: skip
    assert submit(db, "alpha_monitor", report(), at(7)) == (1, False, True)
    with db.read() as s:
        st = zero_reports.status(s, COUNTY, DAY, CAL, 3, at(9))
    a = next(m for m in st.missing if m.code == TOWN_A)
    assert (a.required, a.reported, a.overdue, a.elevated, a.next_deadline) == (2, 1, 0, True, at(17))
    assert st.elevated == 1 and st.required == 3
    assert submit(db, "alpha_monitor", report(), at(16)) == (2, False, True)
    with pytest.raises(Conflict):
        submit(db, "alpha_monitor", report(), at(16, 30))


def test_a_red_product_or_a_declared_response_covers_the_county(db: Database, world: World) -> None:
    lo = int(at(0).timestamp() * 1000)
    with db.write(actor="seed") as s:
        p = RegionalProduct(code="P-RED", unit_code=COUNTY, title="红色预警", status="issued", level=4,
                            current_version=1, created_ms=lo)  # fmt: skip
        s.add(p)
        s.flush()
        s.add(ProductVersion(product_id=p.id, number=1, kind="initial", state="issued", level=4, valid_from_ms=lo,
                             valid_to_ms=lo + 86_400_000, created_ms=lo, inputs={}, summary={}))  # fmt: skip
    with db.read() as s:
        st = zero_reports.status(s, COUNTY, DAY, CAL, 3, at(9))
        next_day = zero_reports.status(s, COUNTY, DAY + dt.timedelta(days=2), CAL, 3, at(9))
    assert st.elevated == 2 and st.required == 4
    assert next_day.elevated == 0
    with db.write(actor="seed") as s:
        s.add(ResponsePeriod(unit_code=COUNTY, level=3, start_date=DAY, end_date=DAY + dt.timedelta(days=3),
                             declared_by="county_admin"))  # fmt: skip
    with db.read() as s:
        assert zero_reports.status(s, TOWN_B, DAY + dt.timedelta(days=2), CAL, 3, at(9)).elevated == 1


def test_reports_are_checked(db: Database, world: World) -> None:
    with pytest.raises(PermissionDenied):
        submit(db, "alpha_monitor", report(TOWN_B), at(10))
    with pytest.raises(InvalidInput):
        submit(db, "alpha_monitor", report(COUNTY), at(10))  # a county is not a township
    with pytest.raises(InvalidInput):
        submit(db, "alpha_monitor", report(day=DAY + dt.timedelta(days=1)), at(10))  # the future
    with pytest.raises(InvalidInput):
        submit(db, "alpha_monitor", report(nothing_new=False), at(10))  # events, but which?
    body = report()
    assert submit(db, "alpha_monitor", body, at(10))[2] is True
    assert submit(db, "alpha_monitor", body, at(10, 5))[2] is False  # the same report sent again


def test_reminders_name_the_townships_and_their_duty_officials(db: Database, world: World) -> None:
    with db.write(actor="seed") as s:
        s.add(Person(name="BETA值班员", phone="13900001111", roles=["duty_official"], unit_code=TOWN_B, active=True))
        s.add(Person(name="BETA群众", phone="13900002222", roles=["monitor"], unit_code=TOWN_B, active=True))
    submit(db, "alpha_monitor", report(), at(10))
    sent: list[zero_reports.Reminder] = []
    with db.read() as s:
        assert zero_reports.reminders(s, COUNTY, DAY, CAL, 3, at(12)) == []  # 17:00 is more than an hour away
        n = zero_reports.remind_missing(s, COUNTY, sent.append, CAL, 3, now=at(16, 30))
    assert n == 1
    (r,) = sent
    assert r.township_code == TOWN_B and [c.name for c in r.contacts] == ["BETA值班员"]
    assert "零报告" in r.text and "17:00" in r.text


def test_zero_report_routes(client: TestClient, world: World) -> None:
    monitor = login(client, "alpha_monitor")
    body = {
        "client_uuid": str(uuid.uuid4()),
        "unit_code": TOWN_A,
        "report_date": dt.datetime.now(CHINA).date().isoformat(),
    }
    r = client.post("/api/fieldwork/zero-reports", json=body, headers=monitor)
    assert r.status_code == 201, r.text
    assert client.post("/api/fieldwork/zero-reports", json=body, headers=monitor).status_code == 200
    r = client.post("/api/fieldwork/zero-reports", json=body | {"client_uuid": str(uuid.uuid4()), "unit_code": TOWN_B},
                    headers=monitor)  # fmt: skip
    assert r.status_code == 403
    county = login(client, "county_admin")
    st = client.get("/api/fieldwork/zero-reports/status", headers=county).json()
    assert st["townships"] == 2 and st["reported"] == 1 and [m["code"] for m in st["missing"]] == [TOWN_B]
    own = client.get("/api/fieldwork/zero-reports/status", headers=monitor).json()
    assert own["townships"] == 1 and own["missing"] == []
    assert client.get("/api/fieldwork/zero-reports/status", params={"unit": TOWN_B}, headers=monitor).status_code == 404
    declare = {"unit_code": COUNTY, "level": 3, "start_date": "2026-07-01", "end_date": "2026-07-03"}
    r = client.post("/api/fieldwork/responses", json=declare, headers=county)
    assert r.status_code == 201, r.text
    township = login(client, "alpha_administrator")
    assert client.post("/api/fieldwork/responses", json=declare, headers=township).status_code == 403
