"""The record of zero-report reminders sent (零报告催报记录): one row per (day, slot, person, channel).

A row is written in the same transaction as its outbox message and shares its idempotency key
(``idem_key``, unique here and in ``dissemination_outbox``), so a reminder is never queued twice
however often the scheduler runs, and the status view can say when a township was reminded and
join the outbox for whether the message arrived.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Date, ForeignKey, Index, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from geowarn.db import Base


class ZeroReportReminder(Base):
    """One reminder of a township's missing zero report to one person on one channel."""

    __tablename__ = "zero_report_reminder"

    id: Mapped[int] = mapped_column(primary_key=True)
    report_date: Mapped[dt.date] = mapped_column(Date)
    slot: Mapped[int] = mapped_column(SmallInteger)  # the report the township owes (1, or 2 in a response)
    unit_code: Mapped[str] = mapped_column(String(12))  # the township
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    idem_key: Mapped[str] = mapped_column(String(80), unique=True)  # = the outbox row's
    overdue: Mapped[int] = mapped_column(SmallInteger, default=0)  # reports past their deadline then
    reminded_ms: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_zero_report_reminder_day_unit", "report_date", "unit_code"),)
