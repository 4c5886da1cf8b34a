"""Tables of dissemination: warning issues, their recipients, the outbox, preferences, endpoints,
template overrides, response tasks and transfer records.

* ``WarningIssue``: one version of a warning as it leaves the platform (a site alert opened,
  escalated, de-escalated or closed; a regional product version issued). ``(subject, version)`` is
  unique, so the same decision can never be disseminated twice.
* ``IssueRecipient``: one person per issue (``person_key`` unique within the issue) with every reason
  they are included, their confirmation token and code, acknowledgement and escalation.
* ``OutboxMessage``: one message per (issue, person, channel), written in the transaction of the
  decision; ``idem_key`` is unique in the database and is sent to the gateway so a retry after a
  crash is recognised.
Times are epoch milliseconds like the rest of the warning tables.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, SmallInteger, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from geowarn.db import Base, TimestampMixin


class WarningIssue(Base):
    """One disseminated version of a site alert or a regional product."""

    __tablename__ = "dissemination_issue"

    id: Mapped[int] = mapped_column(primary_key=True)
    subject: Mapped[str] = mapped_column(String(40), index=True)  # alert:<id> / product:<id>
    version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(8))  # initial / update / lift
    warning_type: Mapped[str] = mapped_column(String(8))  # site / regional
    level: Mapped[int] = mapped_column(SmallInteger)
    previous_level: Mapped[int] = mapped_column(SmallInteger, default=0)
    unit_code: Mapped[str] = mapped_column(String(12), index=True)
    issued_ms: Mapped[int] = mapped_column(BigInteger)
    title: Mapped[str] = mapped_column(String(200))
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alert.id"), index=True)
    product_version_id: Mapped[int | None] = mapped_column(ForeignKey("product_version.id"), index=True)
    cap_identifier: Mapped[str] = mapped_column(String(64), unique=True)
    #: What the messages and the CAP document say: site or area names, townships, message text.
    context: Mapped[dict[str, Any]] = mapped_column(default=dict)
    recipients_count: Mapped[int] = mapped_column(Integer, default=0)
    messages_count: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (UniqueConstraint("subject", "version", name="uq_dissemination_issue_subject_version"),)


class IssueRecipient(Base):
    """One person told about one issue, with all the reasons, confirmation and escalation."""

    __tablename__ = "dissemination_recipient"

    id: Mapped[int] = mapped_column(primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("dissemination_issue.id"), index=True)
    person_key: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(20), index=True)
    unit_code: Mapped[str] = mapped_column(String(12), index=True)
    audience: Mapped[str] = mapped_column(String(12))  # resident / responsible / official / department / group
    reasons: Mapped[list[str]] = mapped_column(default=list)
    household_id: Mapped[int | None] = mapped_column(Integer)
    shelter_id: Mapped[int | None] = mapped_column(Integer)
    token: Mapped[str] = mapped_column(String(32), unique=True)
    code: Mapped[str] = mapped_column(String(8))
    acked_ms: Mapped[int | None] = mapped_column(BigInteger)
    ack_via: Mapped[str | None] = mapped_column(String(8))  # link / code / reply / api
    escalation_of: Mapped[int | None] = mapped_column(ForeignKey("dissemination_recipient.id"))
    escalated_ms: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (UniqueConstraint("issue_id", "person_key", name="uq_dissemination_recipient_person"),)


class OutboxMessage(Base):
    """A message to send: written with the decision, sent (and retried) by the dispatcher."""

    __tablename__ = "dissemination_outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: None for a message of no warning (a zero-report reminder, ``geowarn.fieldwork.reminders``).
    issue_id: Mapped[int | None] = mapped_column(ForeignKey("dissemination_issue.id"), index=True)
    recipient_id: Mapped[int | None] = mapped_column(ForeignKey("dissemination_recipient.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(500))
    idem_key: Mapped[str] = mapped_column(String(80), unique=True)
    level: Mapped[int] = mapped_column(SmallInteger)
    subject: Mapped[str | None] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    segments: Mapped[int] = mapped_column(SmallInteger, default=1)
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending/sending/sent/delivered/failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_ms: Mapped[int] = mapped_column(BigInteger)
    lease_ms: Mapped[int | None] = mapped_column(BigInteger)
    gateway_ref: Mapped[str | None] = mapped_column(String(80), index=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_ms: Mapped[int] = mapped_column(BigInteger)
    sent_ms: Mapped[int | None] = mapped_column(BigInteger)
    delivered_ms: Mapped[int | None] = mapped_column(BigInteger)
    unit_code: Mapped[str] = mapped_column(String(12), index=True)

    __table_args__ = (Index("ix_dissemination_outbox_due", "status", "next_attempt_ms"),)


class Preference(TimestampMixin, Base):
    """A person's channels, language and quiet hours (quiet hours never hold back orange or red)."""

    __tablename__ = "dissemination_preference"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_key: Mapped[str] = mapped_column(String(40), unique=True)  # person:<id> / resident:<id> / household:<id>
    channels: Mapped[list[str]] = mapped_column(default=list)
    language: Mapped[str] = mapped_column(String(8), default="zh-CN")
    quiet_start: Mapped[str | None] = mapped_column(String(5))  # "22:00" China time
    quiet_end: Mapped[str | None] = mapped_column(String(5))
    email: Mapped[str | None] = mapped_column(String(200))
    unit_code: Mapped[str] = mapped_column(String(12), index=True)


class Endpoint(TimestampMixin, Base):
    """A group channel of a unit: a WeCom or DingTalk robot, or a signed generic webhook."""

    __tablename__ = "dissemination_endpoint"

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_code: Mapped[str] = mapped_column(String(12), index=True)
    channel: Mapped[str] = mapped_column(String(16))  # wecom / dingtalk / webhook
    name: Mapped[str] = mapped_column(String(100))
    url: Mapped[str] = mapped_column(String(500))
    secret: Mapped[str | None] = mapped_column(String(200))
    min_level: Mapped[int] = mapped_column(SmallInteger, default=1)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class TemplateOverride(TimestampMixin, Base):
    """An operator's version of a message template for a unit and below."""

    __tablename__ = "dissemination_template"

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_code: Mapped[str] = mapped_column(String(12), index=True)
    key: Mapped[str] = mapped_column(String(60))  # <type>.<audience>[.<level>][.<kind>]
    body: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (UniqueConstraint("unit_code", "key", name="uq_dissemination_template_unit_key"),)


class ResponseTask(Base):
    """An action the level requires of a township: a patrol (yellow) or a transfer order (orange, red)."""

    __tablename__ = "response_task"

    id: Mapped[int] = mapped_column(primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("dissemination_issue.id"), index=True)
    subject: Mapped[str] = mapped_column(String(40), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # patrol / transfer
    unit_code: Mapped[str] = mapped_column(String(12), index=True)  # the township
    status: Mapped[str] = mapped_column(String(12), default="open")  # open / done / may_return / closed
    #: Transfer orders: households with people and shelters; patrols: the sites to watch.
    plan: Mapped[dict[str, Any]] = mapped_column(default=dict)
    households: Mapped[int] = mapped_column(Integer, default=0)
    people: Mapped[int] = mapped_column(Integer, default=0)
    created_ms: Mapped[int] = mapped_column(BigInteger)
    completed_ms: Mapped[int | None] = mapped_column(BigInteger)
    may_return_ms: Mapped[int | None] = mapped_column(BigInteger)


class TransferRecord(Base):
    """People of a household moved to a shelter: how many, when, by whom; and when they went home."""

    __tablename__ = "transfer_record"

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("response_task.id"), index=True)
    household_id: Mapped[int | None] = mapped_column(ForeignKey("household.id"), index=True)
    shelter_id: Mapped[int | None] = mapped_column(ForeignKey("shelter.id"), index=True)
    people: Mapped[int] = mapped_column(Integer)
    moved_ms: Mapped[int] = mapped_column(BigInteger)
    recorded_by: Mapped[str | None] = mapped_column(String(64))
    returned_ms: Mapped[int | None] = mapped_column(BigInteger)
    unit_code: Mapped[str] = mapped_column(String(12), index=True)
