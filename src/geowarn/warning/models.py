"""Tables of the warning engine: site alerts with their history, silences, rule overrides.

An alert is one open record per (site, rule) — enforced by the unique ``open_key`` on both backends —
whose level moves up and down as evaluations arrive; every change is an ``AlertEvent`` (nothing is
overwritten without a trace). Times are epoch milliseconds, like observations.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from geowarn.db import Base, TimestampMixin


class Alert(Base):
    """A site alert (or a device alarm) from opening to end."""

    __tablename__ = "alert"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # site_rule / device_offline / no_data
    site_id: Mapped[int | None] = mapped_column(ForeignKey("hazard_site.id"), index=True)
    device_id: Mapped[int | None] = mapped_column(ForeignKey("device.id"), index=True)
    rule_id: Mapped[str] = mapped_column(String(64))
    rule_name: Mapped[str | None] = mapped_column(String(200))
    unit_code: Mapped[str] = mapped_column(String(12), index=True)
    status: Mapped[str] = mapped_column(String(12), default="open")  # open / closed
    level: Mapped[int] = mapped_column(SmallInteger)
    max_level: Mapped[int] = mapped_column(SmallInteger)
    opened_ms: Mapped[int] = mapped_column(BigInteger, index=True)
    updated_ms: Mapped[int] = mapped_column(BigInteger)
    closed_ms: Mapped[int | None] = mapped_column(BigInteger)
    #: Why: the rule, terms, observed values, thresholds and windows of the latest evaluation.
    reason: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: Inverse-velocity time-of-failure forecast, when computed (t_failure_ms, r2, n, window).
    forecast: Mapped[dict[str, Any] | None]
    #: Times the alert was reopened within the flap window instead of a new alert being raised.
    flaps: Mapped[int] = mapped_column(Integer, default=0)
    acknowledged_ms: Mapped[int | None] = mapped_column(BigInteger)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))
    ack_comment: Mapped[str | None] = mapped_column(Text)

    events: Mapped[list[AlertEvent]] = relationship(back_populates="alert", order_by="AlertEvent.id")

    #: ``kind:site-or-device:rule`` while open, NULL once closed: a plain unique column (NULLs never
    #: collide on either backend) that makes a second open alert for the same subject impossible.
    open_key: Mapped[str | None] = mapped_column(String(120), unique=True)

    __table_args__ = (Index("ix_alert_status_level", "status", "level"),)


class AlertEvent(Base):
    """One change in an alert's life: opened, escalated, deescalated, reopened, acknowledged, closed."""

    __tablename__ = "alert_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alert.id"), index=True)
    t_ms: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))
    level_from: Mapped[int | None] = mapped_column(SmallInteger)
    level_to: Mapped[int | None] = mapped_column(SmallInteger)
    actor: Mapped[str | None] = mapped_column(String(64))
    comment: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[dict[str, Any] | None]

    alert: Mapped[Alert] = relationship(back_populates="events")


class Silence(TimestampMixin, Base):
    """A silence / maintenance window: no new alerts for a site or device between two times."""

    __tablename__ = "alert_silence"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("hazard_site.id"), index=True)
    device_id: Mapped[int | None] = mapped_column(ForeignKey("device.id"), index=True)
    unit_code: Mapped[str] = mapped_column(String(12), index=True)
    start_ms: Mapped[int] = mapped_column(BigInteger)
    end_ms: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(64))
    cancelled_ms: Mapped[int | None] = mapped_column(BigInteger)


class RuleOverride(TimestampMixin, Base):
    """Rules stored through the API: for a hazard type (scope ``type``) or one site (scope ``site``).

    ``body`` is the rule-set document in the same shape as the YAML defaults; the engine merges
    package defaults ← type override ← site override.
    """

    __tablename__ = "warning_rule_override"

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(8))  # type / site
    hazard_type: Mapped[str | None] = mapped_column(String(32))
    site_id: Mapped[int | None] = mapped_column(ForeignKey("hazard_site.id"), unique=True)
    unit_code: Mapped[str] = mapped_column(String(12), index=True)
    body: Mapped[dict[str, Any]] = mapped_column(default=dict)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_by: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (Index("uq_rule_override_type", "unit_code", "hazard_type", unique=True),)


def now_ms() -> int:
    return int(dt.datetime.now(dt.UTC).timestamp() * 1000)


def open_key(kind: str, rule_id: str, site_id: int | None, device_id: int | None) -> str:
    subject = f"d{device_id}" if device_id is not None else f"s{site_id}"
    return f"{kind}:{subject}:{rule_id}"
