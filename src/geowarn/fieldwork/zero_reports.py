"""Daily zero reports (每日零报告): submission, the status of a county or province, who to remind.

Seed 003: in the flood season every township reports every day, "nothing new" included; during an
emergency response (orange or red) twice a day. A township's day is *elevated* when, on that day,
* an open site alert of level ≥ ``Settings.response_min_level`` lies in the township, or
* an issued regional product of that level, valid on the day, covers a unit containing the township, or
* a response period (``response_period``) of that level is declared for a unit containing it.

The status query is one statement: it reads the townships in scope once (with their response flag),
anti-joins them to the report of each township's last required slot (reports fill slots in order)
and returns a summary row and only the townships that owe reports, as plain tuples.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    and_,
    case,
    func,
    literal_column,
    null,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from geowarn.admin.codes import contains
from geowarn.admin.models import AdminUnit
from geowarn.api.scoping import check_unit
from geowarn.auth.models import User
from geowarn.auth.scope import in_scope, unit_filter
from geowarn.errors import Conflict, InvalidInput
from geowarn.fieldwork.domain import CHINA, ZeroReportCalendar, in_flood_season, next_slot
from geowarn.fieldwork.models import HazardEvent, ResponsePeriod, ZeroReport
from geowarn.fieldwork.reminder_models import ZeroReportReminder
from geowarn.fieldwork.schemas import ZeroReportIn
from geowarn.inventory.models import Person
from geowarn.warning.models import Alert
from geowarn.warning.product_models import ProductVersion, RegionalProduct


def _day_ms(day: dt.date) -> tuple[int, int]:
    start = dt.datetime.combine(day, dt.time(), CHINA)
    return int(start.timestamp() * 1000), int((start + dt.timedelta(days=1)).timestamp() * 1000)


def _alert_townships(scope_code: str, min_level: int) -> Select[tuple[str]]:
    """Townships with an open site alert of ``min_level`` or above (an alert's unit is its site's)."""
    return (
        select(func.substr(Alert.unit_code, 1, 9))
        .where(Alert.status == "open", Alert.level >= min_level, unit_filter(Alert.unit_code, scope_code))
        .distinct()
    )


def _covering(session: Session, scope_code: str, day: dt.date, min_level: int) -> list[str]:
    """Units under an issued regional product or a declared response of ``min_level`` on ``day``.

    Only those above or below ``scope_code`` matter; a village's entry counts for its township.
    """
    lo_ms, hi_ms = _day_ms(day)
    codes = list(
        session.scalars(
            select(RegionalProduct.unit_code)
            .join(
                ProductVersion,
                and_(
                    ProductVersion.product_id == RegionalProduct.id,
                    ProductVersion.number == RegionalProduct.current_version,
                ),
            )
            .where(
                RegionalProduct.status == "issued",
                ProductVersion.level >= min_level,
                ProductVersion.valid_from_ms < hi_ms,
                ProductVersion.valid_to_ms > lo_ms,
            )
        )
    )
    codes += session.scalars(
        select(ResponsePeriod.unit_code).where(
            ResponsePeriod.level >= min_level, ResponsePeriod.start_date <= day, ResponsePeriod.end_date >= day
        )
    )
    codes = [c[:9] if len(c) > 9 else c for c in codes]
    return sorted({c for c in codes if contains(c, scope_code) or contains(scope_code, c)})


def elevated_sql(column: Any, scope_code: str, covering: list[str], min_level: int) -> ColumnElement[bool]:
    """SQL condition: the township code in ``column`` is in an orange/red response."""
    return or_(column.in_(_alert_townships(scope_code, min_level)), *(unit_filter(column, c) for c in covering))


def is_elevated(session: Session, township: str, day: dt.date, min_level: int) -> bool:
    """Whether one township is in an orange/red response on ``day``."""
    if any(contains(c, township) for c in _covering(session, township, day, min_level)):
        return True
    return session.scalar(_alert_townships(township, min_level).limit(1)) is not None


def submit(
    session: Session, user: User, body: ZeroReportIn, calendar: ZeroReportCalendar, min_level: int, now: dt.datetime
) -> tuple[ZeroReport, bool]:
    """Store a township's report (or recognise a resend by its UUID); returns it and whether it is new."""
    known = session.scalar(select(ZeroReport).where(ZeroReport.client_uuid == body.client_uuid))
    if known is not None:
        if not in_scope(user.unit_code, known.unit_code):
            raise Conflict("client_uuid already used", message_zh="该记录编号已被使用，请重新生成")
        return known, False
    if len(body.unit_code) != 9:
        raise InvalidInput("a zero report is a township's (9-digit code)", message_zh="零报告须由乡镇（街道）报送")
    check_unit(session, user, body.unit_code)
    today = now.astimezone(CHINA).date()
    if body.report_date > today or body.report_date < today - dt.timedelta(days=7):
        raise InvalidInput(
            "report_date must be today or within the last 7 days", message_zh="报告日期应为今天或最近7天内"
        )
    if not body.nothing_new and not (body.summary or body.event_ids):
        raise InvalidInput(
            "a report with events needs a summary or event ids", message_zh="有灾险情时须填写情况摘要或关联速报"
        )
    if body.nothing_new and body.event_ids:
        raise InvalidInput("a 'nothing new' report lists no events", message_zh="零报告不应关联灾险情")
    if body.event_ids:
        found = set(
            session.scalars(
                select(HazardEvent.id).where(
                    HazardEvent.id.in_(body.event_ids), unit_filter(HazardEvent.unit_code, body.unit_code)
                )
            )
        )
        if missing := sorted(set(body.event_ids) - found):
            raise InvalidInput(f"event_ids not found: {missing}", message_zh=f"灾险情不存在：{missing}")
    elevated = is_elevated(session, body.unit_code, body.report_date, min_level)
    deadlines = calendar.deadlines(body.report_date, elevated)
    filled = set(
        session.scalars(
            select(ZeroReport.slot).where(
                ZeroReport.unit_code == body.unit_code, ZeroReport.report_date == body.report_date
            )
        )
    )
    slot = next_slot(deadlines, filled, now)
    if slot is None:
        raise Conflict(
            f"{body.unit_code} has sent every report due on {body.report_date}",
            message_zh=f"{body.report_date} 的零报告已全部报送",
        )
    report = ZeroReport(
        client_uuid=body.client_uuid,
        unit_code=body.unit_code,
        report_date=body.report_date,
        slot=slot[0],
        late=slot[1],
        nothing_new=body.nothing_new,
        summary=body.summary,
        event_ids=[str(i) for i in body.event_ids],
        submitted_at=now.astimezone(dt.UTC),
        submitted_by=user.username,
    )
    try:
        with session.begin_nested():
            session.add(report)
    except IntegrityError:
        raise Conflict(
            "another report for the same slot arrived at the same time", message_zh="同一时段的零报告已由他人报送"
        ) from None
    return report, True


@dataclass(frozen=True, slots=True)
class TownshipState:
    code: str
    name: str
    required: int  # reports due on the day
    reported: int
    overdue: int  # due reports whose deadline has passed and that are not in
    elevated: bool
    next_deadline: dt.datetime | None
    reminded_at: dt.datetime | None = None  # the last reminder queued for the day (geowarn.fieldwork.reminders)


@dataclass
class DayStatus:
    unit_code: str
    date: dt.date
    in_season: bool
    townships: int = 0
    elevated: int = 0
    required: int = 0
    reported: int = 0
    complete: int = 0
    missing: list[TownshipState] = field(default_factory=list)


def status(
    session: Session,
    scope_code: str,
    day: dt.date,
    calendar: ZeroReportCalendar,
    min_level: int,
    now: dt.datetime,
    *,
    limit: int | None = None,
) -> DayStatus:
    """Every township under ``scope_code`` on ``day``: counts, and the townships still owing reports.

    One statement (after the few covering units are read): the townships in scope, each with its
    response flag, are read once into a CTE; from it come a summary row (townships, elevated) and the
    townships owing reports, found by a hash anti-join on the unique ``(report_date, unit_code, slot)``
    of the report of each township's last required slot (reports fill slots in order, seed 003). Only
    compact tuples of the owing townships come back, so the database sends little even for a province.
    """
    in_season = in_flood_season(day, calendar.season_start, calendar.season_end)
    out = DayStatus(scope_code, day, in_season)
    normal, response = calendar.deadlines(day, False), calendar.deadlines(day, True)
    if session.get_bind().dialect.name == "postgresql":
        # Short queries: JIT compilation would cost far more than it saves.
        session.execute(text("SET LOCAL jit = off"))
    covering = _covering(session, scope_code, day, min_level)
    up = case((elevated_sql(AdminUnit.code, scope_code, covering, min_level), 1), else_=0)
    towns = (
        select(AdminUnit.code, AdminUnit.name, up.label("up"))
        .where(AdminUnit.level == "township", unit_filter(AdminUnit.code, scope_code))
        .cte("towns")
    )
    # Row kind 0: the summary (count, elevated); kind 1: a township owing reports (reports sent, flag).
    summary = select(
        literal_column("0", Integer).label("kind"),
        null().label("code"),
        null().label("name"),
        func.count().label("n"),
        func.coalesce(func.sum(towns.c.up), 0).label("flag"),
    ).select_from(towns)
    stmt: Any = summary
    if normal:
        # The report of the last required slot: len(normal), or len(response) in a response.
        required = len(normal) + towns.c.up * (len(response) - len(normal))
        due = aliased(ZeroReport)
        sent = (
            select(func.count())
            .where(ZeroReport.report_date == day, ZeroReport.unit_code == towns.c.code)
            .scalar_subquery()
        )
        owing = (
            select(literal_column("1", Integer), towns.c.code, towns.c.name, sent, towns.c.up)
            .select_from(towns)
            .outerjoin(due, and_(due.report_date == day, due.unit_code == towns.c.code, due.slot == required))
            .where(due.id.is_(None))
        )
        stmt = union_all(summary, owing).order_by(literal_column("kind"), literal_column("code"))
    rows = session.execute(stmt).all()
    _, _, _, total, elevated = rows[0]
    out.townships, out.elevated = int(total), int(elevated)
    out.required = out.townships * len(normal) + out.elevated * (len(response) - len(normal))
    if not normal:
        return out
    out.complete = out.townships - (len(rows) - 1)
    reminded = _reminded(session, scope_code, day) if len(rows) > 1 else {}
    shortfall = 0
    # A township's state depends only on (flag, reports sent): worked out once per pair, not per township.
    owes: dict[tuple[int, int], tuple[int, int, dt.datetime | None]] = {}
    for _, code, name, got, flag in rows[1:]:
        key = (flag, got)
        if (known := owes.get(key)) is None:
            deadlines = response if flag else normal
            owed = deadlines[got:]
            pending = [d for d in owed if d >= now]
            known = owes[key] = (len(deadlines), sum(1 for d in owed if d < now), pending[0] if pending else None)
        n, overdue, next_deadline = known
        shortfall += n - min(got, n)
        if limit is None or len(out.missing) < limit:
            ms = reminded.get(code)
            when = dt.datetime.fromtimestamp(ms / 1000, dt.UTC) if ms is not None else None
            out.missing.append(TownshipState(code, name, n, got, overdue, bool(flag), next_deadline, when))
    out.reported = out.required - shortfall
    return out


def _reminded(session: Session, scope_code: str, day: dt.date) -> dict[str, int]:
    """Township → when (epoch ms) it was last reminded of ``day``'s reports."""
    r = ZeroReportReminder
    rows = session.execute(
        select(r.unit_code, func.max(r.reminded_ms))
        .where(r.report_date == day, unit_filter(r.unit_code, scope_code))
        .group_by(r.unit_code)
    ).all()
    return {code: int(ms) for code, ms in rows}


# --- reminders -------------------------------------------------------------------------------------

#: Who is reminded of a township's missing report: the township's own duty officials and contacts
#: (值班人员、联络人: they file it); its leaders (分管领导) only when it has neither.
REMINDED_ROLES = ("duty_official", "contact")
FALLBACK_ROLES = ("leader",)


@dataclass(frozen=True, slots=True)
class Contact:
    person_id: int
    name: str
    phone: str
    roles: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Reminder:
    """One township that owes a report now, and the people to remind (for the dissemination channels)."""

    township_code: str
    township_name: str
    date: dt.date
    overdue: int
    next_deadline: dt.datetime | None
    contacts: tuple[Contact, ...]
    text: str


def contacts(session: Session, townships: Iterable[str]) -> dict[str, list[Contact]]:
    """The people responsible for each township's zero report (:data:`REMINDED_ROLES`, registered at the
    township itself with a phone; :data:`FALLBACK_ROLES` when there are none), in id order."""
    codes = sorted(set(townships))
    out: dict[str, list[Contact]] = {c: [] for c in codes}
    fallback: dict[str, list[Contact]] = {c: [] for c in codes}
    for k in range(0, len(codes), 500):
        people = session.execute(
            select(Person.id, Person.name, Person.phone, Person.roles, Person.unit_code)
            .where(Person.active.is_(True), Person.phone.is_not(None), Person.unit_code.in_(codes[k : k + 500]))
            .order_by(Person.id)
        ).all()
        for pid, name, phone, roles, unit in people:
            if not phone:
                continue
            if chosen := tuple(r for r in (roles or []) if r in REMINDED_ROLES):
                out[unit].append(Contact(pid, name, phone, chosen))
            elif chosen := tuple(r for r in (roles or []) if r in FALLBACK_ROLES):
                fallback[unit].append(Contact(pid, name, phone, chosen))
    return {c: people or fallback[c] for c, people in out.items()}


def reminders(
    session: Session,
    scope_code: str,
    day: dt.date,
    calendar: ZeroReportCalendar,
    min_level: int,
    now: dt.datetime,
    *,
    within: dt.timedelta = dt.timedelta(hours=1),
) -> list[Reminder]:
    """Townships to remind now: a report is overdue, or the next deadline is less than ``within`` away."""
    state = status(session, scope_code, day, calendar, min_level, now)
    due = [m for m in state.missing if m.overdue or (m.next_deadline is not None and m.next_deadline - now <= within)]
    people = contacts(session, (m.code for m in due))
    out = []
    for m in due:
        when = m.next_deadline.astimezone(CHINA).strftime("%H:%M") if m.next_deadline else None
        text = (
            f"【地质灾害零报告提醒】{m.name}{day:%m月%d日}零报告"
            + (f"已逾期{m.overdue}次未报" if m.overdue else "尚未报送")
            + (f"，请于{when}前报送" if when else "，请尽快补报")
            + "。无灾险情也须报告。"
        )
        out.append(Reminder(m.code, m.name, day, m.overdue, m.next_deadline, tuple(people[m.code]), text))
    return out


def remind_missing(
    session: Session,
    scope_code: str,
    send: Callable[[Reminder], object],
    calendar: ZeroReportCalendar,
    min_level: int,
    now: dt.datetime | None = None,
) -> int:
    """Hand each township owing a zero report today to ``send`` (the dissemination channels); the count.

    A seam for custom senders; the scheduled path that writes the dissemination outbox at each
    deadline, idempotently, is :func:`geowarn.fieldwork.reminders.send_due`.
    """
    now = now or dt.datetime.now(dt.UTC)
    found = reminders(session, scope_code, now.astimezone(CHINA).date(), calendar, min_level, now)
    for r in found:
        send(r)
    return len(found)
