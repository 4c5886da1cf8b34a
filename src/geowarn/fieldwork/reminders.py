"""Zero-report reminders (零报告催报) sent through the dissemination outbox at each deadline.

Seed 003: in the flood season every township reports by the deadline each day, twice during an
orange or red response. When a deadline is reached (or ``Settings.zero_report_remind_before_minutes``
before it) each township that has not filled that report is reminded: the people who file it — its
duty officials and contacts (值班人员、联络人), its leaders when it has neither
(:func:`geowarn.fieldwork.zero_reports.contacts`) — on the channels of their preference (SMS and
the in-app inbox by default, :func:`geowarn.dissemination.recipients.channels_for` at level 0; quiet
hours respected), with the ``zero_report.official`` template (its short form in an SMS that would
otherwise need two parts).

**Once only.** Every message has the key ``zero-report:<YYYYMMDD>:<slot>:person:<id>:<channel>``,
unique both in the reminder record (:class:`ZeroReportReminder`) and in the outbox. The record is
inserted first with ``ON CONFLICT DO NOTHING … RETURNING``, and outbox rows are written only for the
keys that insert returned, in the same transaction: running the check twice, in two dispatchers at
once or again after a crash queues nothing twice, and the dispatcher's own crash safety sends each
queued row once. Only the latest slot due is reminded: a township silent all day during a response
gets one message at the afternoon deadline (saying it is overdue), not one per missed slot.

:class:`ReminderSchedule` is the periodic task of ``geowarn dispatch``: it looks at the clock at most
once a minute and touches the database only when a deadline has been reached since its last run, or
every ``recheck`` (ten minutes) after the first deadline of a season day, to catch reports that an
orange response declared later in the day makes due. Out of season, and before the day's first
deadline, it costs a comparison of times.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from geowarn.admin.models import AdminUnit
from geowarn.audit.hook import record
from geowarn.db import Database
from geowarn.db.bulk import insert_rows as bulk_insert
from geowarn.dissemination.models import OutboxMessage, Preference, TemplateOverride
from geowarn.dissemination.recipients import Pref, Recipient, channels_for, normalise_phone, quiet_until
from geowarn.dissemination.templates import REMINDER_TYPE, TemplateSet, render_reminder, sms_segments
from geowarn.fieldwork import zero_reports
from geowarn.fieldwork.domain import CHINA, ZeroReportCalendar, calendar_from, in_flood_season
from geowarn.fieldwork.reminder_models import ZeroReportReminder
from geowarn.warning.levels import Level

log = logging.getLogger(__name__)

KEY_PREFIX = "zero-report"
SUBJECT = "地质灾害零报告提醒"
_CHUNK = 500


def due_slot(deadlines: tuple[dt.datetime, ...], now: dt.datetime, lead: dt.timedelta = dt.timedelta(0)) -> int:
    """How many of the day's reports are due for a reminder at ``now`` (deadlines reached, less ``lead``)."""
    return sum(1 for d in deadlines if d - lead <= now)


def idem_key(day: dt.date, slot: int, person_id: int, channel: str) -> str:
    """The idempotency key of one reminder: one per (day, slot, person, channel)."""
    return f"{KEY_PREFIX}:{day:%Y%m%d}:{slot}:person:{person_id}:{channel}"


@dataclass(frozen=True, slots=True)
class Owing:
    """A township that owes report ``slot`` of ``slots`` due on ``date``."""

    code: str
    name: str
    date: dt.date
    slot: int
    slots: int
    deadline: dt.datetime
    late: bool  # the deadline has passed
    overdue: int  # reports past their deadline and not in


def owing(
    session: Session,
    scope_code: str,
    calendar: ZeroReportCalendar,
    min_level: int,
    now: dt.datetime,
    lead: dt.timedelta = dt.timedelta(0),
) -> list[Owing]:
    """Townships under ``scope_code`` to remind at ``now``: the latest report due is not in."""
    day = now.astimezone(CHINA).date()
    normal, response = calendar.deadlines(day, False), calendar.deadlines(day, True)
    if not due_slot(normal, now, lead) and not due_slot(response, now, lead):
        return []  # out of season, or before the first deadline: no query at all
    state = zero_reports.status(session, scope_code, day, calendar, min_level, now)
    out = []
    for m in state.missing:
        deadlines = response if m.elevated else normal
        k = due_slot(deadlines, now, lead)
        if m.reported >= k:
            continue
        overdue = sum(1 for d in deadlines[m.reported :] if d <= now)
        deadline = deadlines[k - 1]
        out.append(Owing(m.code, m.name, day, k, len(deadlines), deadline, now >= deadline, overdue))
    return out


@dataclass
class RunResult:
    """What one run queued: the townships and messages new this time, and the keys already queued."""

    date: dt.date | None = None
    owing: int = 0
    townships: list[str] = field(default_factory=list)
    messages: int = 0
    already: int = 0
    by_channel: dict[str, int] = field(default_factory=dict)


def _preferences(session: Session, keys: list[str]) -> dict[str, Pref]:
    out = {}
    for k in range(0, len(keys), _CHUNK):
        for p in session.scalars(select(Preference).where(Preference.person_key.in_(keys[k : k + _CHUNK]))):
            out[p.person_key] = Pref(tuple(p.channels or ()), p.quiet_start, p.quiet_end, p.email, p.language)
    return out


def _names(session: Session, codes: list[str]) -> dict[str, str]:
    rows = session.execute(select(AdminUnit.code, AdminUnit.name).where(AdminUnit.code.in_(codes))).all()
    return {code: name for code, name in rows}


def _templates(session: Session, units: list[str]) -> TemplateSet:
    """The package's reminder templates with the overrides of the townships and counties concerned."""
    rows = session.execute(
        select(TemplateOverride.unit_code, TemplateOverride.key, TemplateOverride.body).where(
            TemplateOverride.key.like(f"{REMINDER_TYPE}.%"), TemplateOverride.unit_code.in_(units)
        )
    ).all()
    return TemplateSet({(u, k): b for u, k, b in rows})


def _insert_new(session: Session, rows: list[dict[str, Any]]) -> set[str]:
    """Insert reminder records, skipping keys already recorded; the keys inserted now."""
    table = cast(Table, ZeroReportReminder.__table__)
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    new: set[str] = set()
    for k in range(0, len(rows), _CHUNK):
        stmt = (
            dialect.insert(table)
            .values(rows[k : k + _CHUNK])
            .on_conflict_do_nothing(index_elements=["idem_key"])
            .returning(table.c.idem_key)
        )
        new.update(session.scalars(stmt))
    return new


def send_due(
    session: Session,
    scope_code: str,
    calendar: ZeroReportCalendar,
    min_level: int,
    now: dt.datetime,
    *,
    lead: dt.timedelta = dt.timedelta(0),
) -> RunResult:
    """Queue the reminders due at ``now`` for the townships under ``scope_code`` (idempotent).

    Writes the reminder records and their outbox rows in ``session``'s transaction, and one audit
    entry per county reminded; ``geowarn dispatch`` sends them.
    """
    result = RunResult(date=now.astimezone(CHINA).date())
    found = owing(session, scope_code, calendar, min_level, now, lead)
    result.owing = len(found)
    if not found:
        return result
    people = zero_reports.contacts(session, (o.code for o in found))
    prefs = _preferences(session, sorted({f"person:{c.person_id}" for cs in people.values() for c in cs}))
    counties = sorted({o.code[:6] for o in found})
    names = _names(session, counties)
    templates = _templates(session, sorted({*counties, *(o.code for o in found)}))
    now_ms = int(now.timestamp() * 1000)
    records: list[dict[str, Any]] = []
    messages: dict[str, dict[str, Any]] = {}
    for o in found:
        base = {
            "sender": f"{names.get(o.code[:6], o.code[:6])}自然资源局",
            "township": o.name,
            "date": f"{o.date.month}月{o.date.day}日",
            "slot_label": f"第{o.slot}次" if o.slots > 1 else "",
            "deadline": o.deadline.astimezone(CHINA).strftime("%H:%M"),
            "late": "逾期" if o.late else "",
        }
        for c in people.get(o.code, []):
            who = Recipient(f"person:{c.person_id}", c.name, normalise_phone(c.phone), o.code, "official")
            pref = prefs.get(who.key)
            due = quiet_until(pref, Level.NONE, now_ms) or now_ms
            for channel, address in channels_for(who, Level.NONE, pref):
                key = idem_key(o.date, o.slot, c.person_id, channel)
                text = render_reminder(templates, channel, o.code, {**base, "name": c.name})
                records.append(
                    {
                        "report_date": o.date,
                        "slot": o.slot,
                        "unit_code": o.code,
                        "person_id": c.person_id,
                        "channel": channel,
                        "idem_key": key,
                        "overdue": o.overdue,
                        "reminded_ms": now_ms,
                    }
                )
                messages[key] = {
                    "issue_id": None,
                    "recipient_id": None,
                    "channel": channel,
                    "address": address,
                    "idem_key": key,
                    "level": int(Level.NONE),
                    "subject": SUBJECT,
                    "body": text,
                    "segments": sms_segments(text) if channel == "sms" else 1,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_ms": due,
                    "created_ms": now_ms,
                    "unit_code": o.code,
                }
    new = _insert_new(session, records) if records else set()
    if new:  # an outbox row outliving its record (history purged) is not queued again either
        keys = sorted(new)
        for k in range(0, len(keys), _CHUNK):
            new -= set(session.scalars(select(OutboxMessage.idem_key).where(
                OutboxMessage.idem_key.in_(keys[k : k + _CHUNK]))))  # fmt: skip
    rows = [m for k, m in messages.items() if k in new]
    bulk_insert(session, cast(Table, OutboxMessage.__table__), rows)
    result.already = len(messages) - len(rows)
    result.messages = len(rows)
    reminded = sorted({str(m["unit_code"]) for m in rows})
    result.townships = reminded
    for m in rows:
        channel = str(m["channel"])
        result.by_channel[channel] = result.by_channel.get(channel, 0) + 1
    by_county: dict[str, list[str]] = defaultdict(list)
    for code in reminded:
        by_county[code[:6]].append(code)
    for county, towns in by_county.items():
        record(
            session,
            "create",
            ZeroReportReminder.__tablename__,
            None,
            county,
            {
                "date": result.date.isoformat() if result.date else None,
                "townships": towns[:100],
                "townships_total": len(towns),
                "messages": sum(1 for m in rows if str(m["unit_code"])[:6] == county),
            },
        )
    return result


def roots(session: Session) -> list[str]:
    """The top units of the installation (every township lies under one of them)."""
    codes = dict(session.execute(select(AdminUnit.code, AdminUnit.parent_code)).all())
    return sorted(c for c, parent in codes.items() if parent is None or parent not in codes)


def run(db: Database, calendar: ZeroReportCalendar, min_level: int, now: dt.datetime, **kw: Any) -> RunResult:
    """:func:`send_due` for the whole installation, in one audited transaction."""
    total = RunResult(date=now.astimezone(CHINA).date())
    with db.write(actor="zero-report-reminders") as s:
        for scope in roots(s):
            r = send_due(s, scope, calendar, min_level, now, **kw)
            total.owing += r.owing
            total.townships += r.townships
            total.messages += r.messages
            total.already += r.already
            for channel, n in r.by_channel.items():
                total.by_channel[channel] = total.by_channel.get(channel, 0) + n
    return total


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ReminderSchedule:
    """The periodic task of the dispatcher loop: :func:`run` when a deadline has been reached.

    Call it as often as you like: it reads the clock at most every ``every``, and queries the
    database only when a reminder boundary (deadline less ``lead``) has been passed since its last
    run, or ``recheck`` after that run on a season day with a boundary behind it.
    """

    def __init__(
        self,
        db: Database,
        calendar: ZeroReportCalendar,
        min_level: int,
        *,
        lead: dt.timedelta = dt.timedelta(0),
        every: dt.timedelta = dt.timedelta(minutes=1),
        recheck: dt.timedelta = dt.timedelta(minutes=10),
        clock: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        self.db, self.calendar, self.min_level, self.lead = db, calendar, min_level, lead
        self.every, self.recheck, self.clock = every, recheck, clock
        self._looked: dt.datetime | None = None
        self._mark: tuple[dt.date, int] | None = None
        self._ran: dt.datetime | None = None
        self.runs = 0

    @classmethod
    def from_settings(cls, db: Database, settings: Any, **kw: Any) -> ReminderSchedule:
        lead = dt.timedelta(minutes=settings.zero_report_remind_before_minutes)
        return cls(db, calendar_from(settings), settings.response_min_level, lead=lead, **kw)

    def __call__(self) -> RunResult | None:
        now = self.clock()
        if self._looked is not None and abs(now - self._looked) < self.every:
            return None
        self._looked = now
        day = now.astimezone(CHINA).date()
        if not in_flood_season(day, self.calendar.season_start, self.calendar.season_end):
            return None
        boundaries = {*self.calendar.deadlines(day, False), *self.calendar.deadlines(day, True)}
        passed = due_slot(tuple(boundaries), now, self.lead)
        if not passed:
            return None
        mark = (day, passed)
        if mark == self._mark and self._ran is not None and abs(now - self._ran) < self.recheck:
            return None
        result = run(self.db, self.calendar, self.min_level, now, lead=self.lead)
        self._mark, self._ran = mark, now
        self.runs += 1
        if result.messages:
            log.info(
                "zero-report reminders: %d messages to %d townships (%d owing)",
                result.messages,
                len(result.townships),
                result.owing,
            )
        return result
