"""Zero-report reminders through the dissemination outbox: who, when, once, and on to a real gateway."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from geowarn.audit.models import AuditEntry
from geowarn.auth.models import User
from geowarn.cli import app
from geowarn.config import get_settings
from geowarn.db import Database
from geowarn.dissemination import templates
from geowarn.dissemination.channels import REGISTRY
from geowarn.dissemination.dispatcher import Dispatcher
from geowarn.dissemination.localgw import LocalGateway
from geowarn.dissemination.models import OutboxMessage, Preference
from geowarn.errors import InvalidInput
from geowarn.fieldwork import reminders, zero_reports
from geowarn.fieldwork.domain import CHINA, ZeroReportCalendar
from geowarn.fieldwork.models import ResponsePeriod
from geowarn.fieldwork.reminder_models import ZeroReportReminder
from geowarn.fieldwork.schemas import ZeroReportIn
from geowarn.inventory.models import Person
from tests.api.apiworld import COUNTY, TOWN_A, TOWN_B, World, login

ROOT = Path(__file__).resolve().parents[2]
DAY = dt.date(2026, 7, 1)
CAL = ZeroReportCalendar(season_start="05-01", season_end="09-30")
A_DUTY, A_CONTACT, B_DUTY = "13900000101", "13900000102", "13900000201"


def at(hour: int, minute: int = 0, day: dt.date = DAY) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), CHINA)


@pytest.fixture
def staff(db: Database, world: World) -> dict[str, int]:
    """Who files each township's report, and people who do not (a monitor, a village's duty official)."""
    people = {
        "甲值班": Person(name="甲值班", phone=A_DUTY, roles=["duty_official"], unit_code=TOWN_A, active=True),
        "甲联络": Person(name="甲联络", phone=A_CONTACT, roles=["contact"], unit_code=TOWN_A, active=True),
        "乙值班": Person(name="乙值班", phone=B_DUTY, roles=["duty_official"], unit_code=TOWN_B, active=True),
        "乙监测": Person(name="乙监测", phone="13900000202", roles=["monitor"], unit_code=TOWN_B, active=True),
        "乙村值班": Person(
            name="乙村值班", phone="13900000203", roles=["duty_official"], unit_code=TOWN_B + "001", active=True
        ),
        "乙离职": Person(name="乙离职", phone="13900000204", roles=["duty_official"], unit_code=TOWN_B, active=False),
    }
    with db.write(actor="seed") as s:
        s.add_all(people.values())
        s.flush()
        # 甲联络 wants the in-app inbox only
        s.add(Preference(person_key=f"person:{people['甲联络'].id}", channels=["inbox"], unit_code=TOWN_A))
        return {k: p.id for k, p in people.items()}


def report(db: Database, town: str, now: dt.datetime) -> None:
    with db.write(actor="seed") as s:
        who = s.scalars(select(User).where(User.username == "county_admin")).one()
        body = ZeroReportIn.model_validate(
            {"client_uuid": str(uuid.uuid4()), "unit_code": town, "report_date": now.date(), "nothing_new": True}
        )
        zero_reports.submit(s, who, body, CAL, 3, now)


def send(db: Database, now: dt.datetime, scope: str = COUNTY) -> reminders.RunResult:
    with db.write(actor="test") as s:
        return reminders.send_due(s, scope, CAL, 3, now)


def outbox(db: Database) -> list[tuple[str, str, str, str]]:
    """(channel, address, idem_key, body) of every outbox row, in key order."""
    with db.read() as s:
        rows = s.execute(select(OutboxMessage.channel, OutboxMessage.address, OutboxMessage.idem_key,
                                OutboxMessage.body)).all()  # fmt: skip
    return sorted((c, a, k, b) for c, a, k, b in rows)


def test_reminders_at_the_deadline_go_to_the_missing_townships_people_once(db: Database, staff: dict[str, int]) -> None:
    report(db, TOWN_A, at(10))
    assert send(db, at(16, 59)).messages == 0 and outbox(db) == []  # not due yet
    first = send(db, at(17))
    assert (first.owing, first.townships, first.messages) == (1, [TOWN_B], 2)
    rows = outbox(db)
    b = staff["乙值班"]
    assert [(c, a, k) for c, a, k, _ in rows] == [
        ("inbox", f"person:{b}", f"zero-report:20260701:1:person:{b}:inbox"),
        ("sms", B_DUTY, f"zero-report:20260701:1:person:{b}:sms"),
    ]  # not the monitor, not the village's duty official, not the inactive one, nobody of ALPHA (reported)
    sms = rows[1][3]
    assert "BETA乙镇" in sms and "7月1日" in sms and "零报告" in sms and len(sms) <= templates.SMS_SINGLE
    inbox = rows[0][3]
    assert "乙值班" in inbox and "17:00" in inbox and "无灾险情也须报告" in inbox
    # running again, at once or later, queues nothing new
    again = send(db, at(17))
    later = send(db, at(21, 30))
    assert (again.messages, again.already, later.messages, later.already) == (0, 2, 0, 2)
    assert outbox(db) == rows
    with db.read() as s:
        recs = s.scalars(select(ZeroReportReminder)).all()
        st = zero_reports.status(s, COUNTY, DAY, CAL, 3, at(21, 30))
        audit = s.scalars(select(AuditEntry).where(AuditEntry.entity == "zero_report_reminder")).all()
        with_row = s.scalars(select(OutboxMessage)).all()
    assert {(r.unit_code, r.slot, r.person_id, r.channel, r.overdue) for r in recs} == {
        (TOWN_B, 1, b, "inbox", 1),
        (TOWN_B, 1, b, "sms", 1),
    }
    assert [(m.code, m.reminded_at) for m in st.missing] == [(TOWN_B, at(17))]
    assert len(audit) == 1 and audit[0].unit_code == COUNTY and audit[0].changes["townships"] == [TOWN_B]
    assert all(m.issue_id is None and m.level == 0 and m.status == "pending" for m in with_row)


def test_channels_follow_preferences_and_scope_is_kept(db: Database, staff: dict[str, int]) -> None:
    only_a = send(db, at(17, 30), scope=TOWN_A)
    assert only_a.townships == [TOWN_A]
    a, c = staff["甲值班"], staff["甲联络"]
    assert [(ch, addr) for ch, addr, _, _ in outbox(db)] == [
        ("inbox", f"person:{a}"),
        ("inbox", f"person:{c}"),  # the contact asked for the inbox only
        ("sms", A_DUTY),
    ]
    whole = send(db, at(17, 31))
    assert (whole.townships, whole.messages, whole.already) == ([TOWN_B], 2, 3)


def test_outside_the_season_nothing_is_sent(db: Database, staff: dict[str, int]) -> None:
    winter = dt.date(2026, 12, 1)
    assert send(db, at(17, day=winter)).owing == 0
    assert send(db, at(23, 59, day=winter)).messages == 0
    schedule = reminders.ReminderSchedule(db, CAL, 3, clock=lambda: at(17, day=winter))
    assert schedule() is None and schedule.runs == 0
    assert outbox(db) == []


def test_an_orange_response_means_two_reminder_slots_a_day(db: Database, staff: dict[str, int]) -> None:
    with db.write(actor="seed") as s:
        s.add(ResponsePeriod(unit_code=COUNTY, level=3, start_date=DAY, end_date=DAY, declared_by="county_admin"))
    morning = send(db, at(8))
    assert (morning.townships, morning.messages) == ([TOWN_A, TOWN_B], 5)
    assert all(":20260701:1:" in k for _, _, k, _ in outbox(db))
    assert any("第1次" in body for ch, _, _, body in outbox(db) if ch == "inbox")
    report(db, TOWN_A, at(9))  # ALPHA files the morning report (late); BETA stays silent
    assert send(db, at(12)).messages == 0  # nothing new is due between the deadlines
    evening = send(db, at(17))
    assert (evening.townships, evening.messages) == ([TOWN_A, TOWN_B], 5)
    slot2 = [(ch, k, body) for ch, _, k, body in outbox(db) if ":20260701:2:" in k]
    assert len(slot2) == 5
    b = staff["乙值班"]
    with db.read() as s:
        overdue = s.scalar(select(ZeroReportReminder.overdue).where(
            ZeroReportReminder.idem_key == f"zero-report:20260701:2:person:{b}:sms"))  # fmt: skip
    assert overdue == 2  # both of BETA's reports are past their deadline
    assert any("第2次" in body for ch, _, body in slot2 if ch == "inbox")
    assert send(db, at(18)).messages == 0


def test_a_township_silent_all_day_gets_one_reminder_for_the_latest_slot(db: Database, staff: dict[str, int]) -> None:
    with db.write(actor="seed") as s:
        s.add(ResponsePeriod(unit_code=TOWN_B, level=4, start_date=DAY, end_date=DAY, declared_by="county_admin"))
    send(db, at(18), scope=TOWN_B)  # the scheduler was down all day
    assert [k for _, _, k, _ in outbox(db)] == [
        f"zero-report:20260701:2:person:{staff['乙值班']}:inbox",
        f"zero-report:20260701:2:person:{staff['乙值班']}:sms",
    ]


def test_the_text_fits_one_sms_and_templates_are_checked() -> None:
    ctx = {"sender": "古田县自然资源局", "name": "张三", "date": "7月1日", "slot_label": "第2次",
           "deadline": "17:00", "late": "逾期"}  # fmt: skip
    long_town = {**ctx, "township": "某某某某某某某某某某街道办事处"}
    tset = templates.TemplateSet()
    full = templates.render_reminder(tset, "inbox", TOWN_A, long_town)
    sms = templates.render_reminder(tset, "sms", TOWN_A, long_town)
    assert len(full) > templates.SMS_SINGLE and "张三" in full
    assert len(sms) <= templates.SMS_SINGLE and templates.sms_segments(sms) == 1
    assert "逾期未报" in sms and "某某某某某某某某某某街道办事处" in sms
    short = templates.render_reminder(tset, "sms", TOWN_A, {**ctx, "township": "城关镇", "late": ""})
    assert "张三" in short and "请于17:00前报送" in short  # short enough: the full text
    override = templates.TemplateSet({(TOWN_A, "zero_report.official"): "{{ township }}请报零报告"})
    assert templates.render_reminder(override, "inbox", TOWN_A + "001", long_town).endswith("请报零报告")
    templates.check("{{ township }}{{ deadline }}{{ late }}", "zero_report.official")
    with pytest.raises(InvalidInput):
        templates.check("{{ deadline }}")  # not a name of the warning templates
    with pytest.raises(InvalidInput):
        templates.check("{{ title }}", "zero_report.official")


@pytest.fixture
def gw() -> Iterator[LocalGateway]:
    g = LocalGateway().start()
    yield g
    g.stop()


def test_reminders_reach_a_real_gateway_through_the_dispatcher(
    db: Database, staff: dict[str, int], gw: LocalGateway
) -> None:
    report(db, TOWN_A, at(10))
    clock = [at(17, 2)]
    schedule = reminders.ReminderSchedule(db, CAL, 3, clock=lambda: clock[0])
    channels = {"sms": REGISTRY["sms"](gw.url), "inbox": REGISTRY["inbox"]()}  # type: ignore[call-arg]
    d = Dispatcher(db, channels, backoff_s=0.01, tasks=[schedule])
    try:
        d.drain(timeout_s=20)
        assert [(m.to, m.key) for m in gw.sent_to("sms")] == [
            (B_DUTY, f"zero-report:20260701:1:person:{staff['乙值班']}:sms")
        ]
        assert "BETA乙镇" in gw.sent_to("sms")[0].text
        with db.read() as s:
            statuses = dict(s.execute(select(OutboxMessage.channel, OutboxMessage.status)).all())
        assert statuses == {"sms": "delivered", "inbox": "delivered"}
        assert schedule.runs == 1
        assert schedule() is None  # within the minute: not even a look at the clock's boundaries
        clock[0] = at(17, 5)
        assert schedule() is None  # same boundary, recheck not due: no query
        clock[0] = at(17, 13)
        rerun = schedule()  # the ten-minute recheck: runs, finds everything queued already
        assert rerun is not None and rerun.messages == 0 and rerun.already == 2
        d.drain(timeout_s=20)
    finally:
        d.close()
    # a second dispatcher (another process, or after a crash) sends nothing again
    d2 = Dispatcher(db, {"sms": REGISTRY["sms"](gw.url), "inbox": REGISTRY["inbox"]()},  # type: ignore[call-arg]
                    tasks=[reminders.ReminderSchedule(db, CAL, 3, clock=lambda: at(17, 30))])  # fmt: skip
    try:
        d2.drain(timeout_s=20)
    finally:
        d2.close()
    assert len(gw.sent_to("sms")) == 1 and all(n == 1 for n in gw.state.key_requests.values())


def test_status_route_shows_when_a_township_was_reminded(
    db: Database, staff: dict[str, int], client: TestClient
) -> None:
    send(db, at(17))
    h = login(client, "county_admin")
    r = client.get("/api/fieldwork/zero-reports/status", params={"unit": COUNTY, "date": DAY.isoformat()}, headers=h)
    assert r.status_code == 200, r.text
    when = {m["code"]: m["reminded_at"] for m in r.json()["missing"]}
    assert set(when) == {TOWN_A, TOWN_B}
    assert all(dt.datetime.fromisoformat(v) == at(17) for v in when.values())


@pytest.fixture
def all_year(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Settings under which a report is always due: the whole year is the season, the deadline midnight."""
    for k, v in {"FLOOD_SEASON_START": "01-01", "FLOOD_SEASON_END": "12-31", "ZERO_REPORT_DEADLINES": "00:00"}.items():
        monkeypatch.setenv(f"GEOWARN_{k}", v)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_send_reminders_command_runs_once_and_is_idempotent(
    db: Database, staff: dict[str, int], all_year: None
) -> None:
    r = CliRunner().invoke(app, ["zero-reports", "--unit", COUNTY, "--send-reminders"])
    assert r.exit_code == 0, r.output
    first: dict[str, Any] = json.loads(r.stdout)
    assert first["townships"] == [TOWN_A, TOWN_B] and first["messages"] == 5
    assert first["by_channel"] == {"inbox": 3, "sms": 2}
    r = CliRunner().invoke(app, ["zero-reports", "--unit", COUNTY, "--send-reminders"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["messages"] == 0
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(OutboxMessage)) == 5


def test_geowarn_dispatch_queues_and_sends_the_reminders_due(
    db: Database, staff: dict[str, int], gw: LocalGateway
) -> None:
    """The real command: ``geowarn dispatch --once`` runs the reminder check, then sends what it queued."""
    env = {
        **os.environ,
        "GEOWARN_DATABASE_URL": db.url,
        "GEOWARN_SMS_GATEWAY_URL": gw.url,
        "GEOWARN_MODE": "test",
        "GEOWARN_PASSWORD_PROFILE": "fast",
        "GEOWARN_FLOOD_SEASON_START": "01-01",
        "GEOWARN_FLOOD_SEASON_END": "12-31",
        "GEOWARN_ZERO_REPORT_DEADLINES": "00:00",  # always past: a report is due whenever this runs
        "PYTHONPATH": str(ROOT / "src"),
    }
    cmd = [sys.executable, "-m", "geowarn", "dispatch", "--once", "--timeout", "60"]
    for _ in range(2):  # the second run finds everything queued already
        out = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
    assert sorted(m.to for m in gw.sent_to("sms")) == [A_DUTY, B_DUTY]
    assert all(n == 1 for n in gw.state.key_requests.values())
    with db.read() as s:
        statuses = s.scalars(select(OutboxMessage.status)).all()
    assert sorted(statuses) == ["delivered"] * 5
    disabled = {**env, "GEOWARN_ZERO_REPORT_REMINDERS": "false"}
    with db.write(actor="test") as s:
        s.execute(ZeroReportReminder.__table__.delete())
    out = subprocess.run(cmd, env=disabled, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert len(gw.sent_to("sms")) == 2  # switched off: nothing queued
    out = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert len(gw.sent_to("sms")) == 2  # the record was purged, but the outbox still knows the keys


def test_the_dispatcher_loop_runs_the_reminder_check(db: Database, staff: dict[str, int], gw: LocalGateway) -> None:
    report(db, TOWN_B, at(10))
    schedule = reminders.ReminderSchedule(db, CAL, 3, clock=lambda: at(17, 1))
    channels = {"sms": REGISTRY["sms"](gw.url), "inbox": REGISTRY["inbox"]()}  # type: ignore[call-arg]
    d = Dispatcher(db, channels, tasks=[schedule])
    stop = threading.Event()
    loop = threading.Thread(target=d.run, args=(stop,), kwargs={"interval_s": 0.01})
    loop.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not gw.sent_to("sms"):
            time.sleep(0.02)
    finally:
        stop.set()
        loop.join(30)
        d.close()
    assert [m.to for m in gw.sent_to("sms")] == [A_DUTY]
    assert schedule.runs == 1  # called on every idle turn, it ran the check once
