"""Acknowledgement (link, code, SMS reply) and escalation of unconfirmed orange and red warnings.

* Every recipient has a random link token (``secrets.token_urlsafe``, 128 bits) and a 6-digit code.
  A link confirms on its own; a code confirms together with the phone it was sent to (typed in the
  app, or an SMS reply from that phone containing the code); a reply of 1 / 收到 / 确认 confirms the
  latest unconfirmed warning sent to that phone.
* A responsible person or official who has not confirmed an orange or red warning within
  ``Settings.escalate_after_minutes`` is escalated to the duty officials one level up
  (village → township → county; DOMAIN.md: "属地管理", 631 rhythm's call-back to responsible
  officials); the escalation is a recipient of its own (``escalation_of``), messaged through the
  outbox, and escalates further if it is not confirmed either.
"""

from __future__ import annotations

import re
import secrets

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from geowarn.dissemination.models import IssueRecipient, OutboxMessage, WarningIssue
from geowarn.dissemination.outbox import ACK_PATH
from geowarn.dissemination.recipients import normalise_phone
from geowarn.dissemination.templates import COLOUR_ZH, sms_segments
from geowarn.errors import InvalidInput, NotFound
from geowarn.inventory.models import Person
from geowarn.warning.levels import Level

_YES = {"1", "收到", "确认", "好", "ok", "已收到"}
_CODE = re.compile(r"\d{6}")
DAY_MS = 86_400_000


def _confirm(r: IssueRecipient, via: str, now_ms: int) -> IssueRecipient:
    if r.acked_ms is None:
        r.acked_ms, r.ack_via = now_ms, via
    return r


def by_token(session: Session, token: str, now_ms: int) -> IssueRecipient:
    r = session.scalar(select(IssueRecipient).where(IssueRecipient.token == token)) if len(token) <= 32 else None
    if r is None:
        raise NotFound("unknown confirmation link", message_zh="确认链接无效")
    return _confirm(r, "link", now_ms)


def by_code(session: Session, phone: str, code: str, now_ms: int, via: str = "code") -> IssueRecipient:
    tel = normalise_phone(phone)
    r = session.scalar(
        select(IssueRecipient)
        .where(IssueRecipient.phone == tel, IssueRecipient.code == code.strip())
        .order_by(IssueRecipient.id.desc())
        .limit(1)
    )
    if r is None:
        raise InvalidInput("wrong code for this phone", message_zh="确认码与手机号不符")
    return _confirm(r, via, now_ms)


def by_reply(session: Session, phone: str, text: str, now_ms: int) -> IssueRecipient | None:
    """An SMS reply: the code it contains, or a plain yes for the latest unconfirmed warning."""
    tel = normalise_phone(phone)
    m = _CODE.search(text)
    if m:
        try:
            return by_code(session, phone, m.group(0), now_ms, via="reply")
        except InvalidInput:
            return None
    if text.strip().lower() not in _YES:
        return None
    r = session.scalar(
        select(IssueRecipient)
        .join(WarningIssue, WarningIssue.id == IssueRecipient.issue_id)
        .where(
            IssueRecipient.phone == tel, IssueRecipient.acked_ms.is_(None), WarningIssue.issued_ms >= now_ms - DAY_MS
        )
        .order_by(IssueRecipient.id.desc())
        .limit(1)
    )
    return _confirm(r, "reply", now_ms) if r is not None else None


def _above(unit_code: str) -> str | None:
    """The unit one level up on the village → township → county chain."""
    if len(unit_code) == 12:
        return unit_code[:9]
    if len(unit_code) == 9:
        return unit_code[:6]
    return None


def _officials_at(session: Session, unit_code: str) -> list[Person]:
    people = session.scalars(select(Person).where(Person.unit_code == unit_code, Person.active.is_(True)))
    return [p for p in people if {"duty_official", "leader"} & set(p.roles or [])]


def escalate_due(session: Session, now_ms: int, after_minutes: int, public_url: str = "") -> list[IssueRecipient]:
    """Escalate every overdue unconfirmed responsible person / official of a current orange or red issue."""
    latest = (
        select(WarningIssue.subject, func.max(WarningIssue.version).label("v"))
        .group_by(WarningIssue.subject)
        .subquery()
    )
    rows = session.execute(
        select(IssueRecipient, WarningIssue)
        .join(WarningIssue, WarningIssue.id == IssueRecipient.issue_id)
        .join(latest, (latest.c.subject == WarningIssue.subject) & (latest.c.v == WarningIssue.version))
        .where(
            WarningIssue.level >= int(Level.ORANGE),
            WarningIssue.kind != "lift",
            IssueRecipient.audience.in_(("responsible", "official")),
            IssueRecipient.acked_ms.is_(None),
            IssueRecipient.escalated_ms.is_(None),
            WarningIssue.issued_ms <= now_ms - after_minutes * 60_000,
        )
        .order_by(IssueRecipient.id)
    ).all()
    created: list[IssueRecipient] = []
    parents = {r.escalation_of for r, _ in rows if r.escalation_of is not None}
    parent_ms = dict(
        session.execute(
            select(IssueRecipient.id, IssueRecipient.escalated_ms).where(IssueRecipient.id.in_(parents))
        ).all()
    )
    for r, issue in rows:
        if r.escalation_of is not None and (parent_ms.get(r.escalation_of) or now_ms) > now_ms - after_minutes * 60_000:
            continue  # an escalation waits its own N minutes before going further up
        r.escalated_ms = now_ms
        up = _above(r.unit_code)
        targets = _officials_at(session, up) if up else []
        level = Level(issue.level)
        for p in targets:
            esc = IssueRecipient(
                issue_id=issue.id,
                person_key=f"person:{p.id}#esc{r.id}",
                name=p.name,
                phone=normalise_phone(p.phone),
                unit_code=p.unit_code,
                audience="official",
                reasons=[f"{r.name}（{'；'.join(r.reasons[:1])}）{after_minutes}分钟内未确认，逐级上报"],
                token=secrets.token_urlsafe(16),
                code=f"{secrets.randbelow(1_000_000):06d}",
                escalation_of=r.id,
            )
            session.add(esc)
            session.flush()
            created.append(esc)
            if not esc.phone:
                continue
            text = (
                f"【督办】{r.name}未在{after_minutes}分钟内确认{issue.title}（{COLOUR_ZH[level]}预警），"
                f"请立即督促落实。回复{esc.code}或点{public_url.rstrip('/')}{ACK_PATH}{esc.token}确认。"
            )
            session.execute(
                insert(OutboxMessage),
                [
                    {
                        "issue_id": issue.id,
                        "recipient_id": esc.id,
                        "channel": "sms",
                        "address": esc.phone,
                        "idem_key": f"{issue.id}:{esc.person_key}:sms",
                        "level": issue.level,
                        "subject": issue.title[:200],
                        "body": text,
                        "segments": sms_segments(text),
                        "status": "pending",
                        "attempts": 0,
                        "next_attempt_ms": now_ms,
                        "created_ms": now_ms,
                        "unit_code": esc.unit_code,
                    }
                ],
            )
    return created
