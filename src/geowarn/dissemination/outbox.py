"""Writing a warning's messages into the outbox, in the transaction of the decision that causes them.

:func:`publish` is called by :mod:`geowarn.dissemination.hook` from the alert and product
transitions. It records the :class:`WarningIssue` (unique per subject and version), one
:class:`IssueRecipient` per person and one :class:`OutboxMessage` per (issue, person, channel) with
the idempotency key ``<issue id>:<person key>:<channel>`` (unique in the database), and creates the
response tasks the level requires. Updates and lifts go to everyone told before (the recipients of
the previous version are carried over) as well as to anyone the new version adds.

Rows are written with bulk Core inserts: a red regional warning can reach tens of thousands of
people and the ORM unit of work (and the per-row audit log) would cost seconds. The issue itself
is an ORM insert, so the audit log records that the warning was disseminated and to how many.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
from dataclasses import dataclass, field, replace
from typing import Any, cast

import numpy as np
from sqlalchemy import Table, func, select
from sqlalchemy.orm import Session

from geowarn.admin.models import AdminUnit
from geowarn.auth.scope import unit_filter
from geowarn.db.bulk import insert_rows as bulk_insert
from geowarn.db.bulk import insert_tuples as bulk_insert_tuples
from geowarn.dissemination import response
from geowarn.dissemination.cap import CST, identifier
from geowarn.dissemination.models import (
    Endpoint,
    IssueRecipient,
    OutboxMessage,
    Preference,
    TemplateOverride,
    WarningIssue,
)
from geowarn.dissemination.recipients import RESIDENT_KINDS, Pref, Recipient, Residents, channels_for, quiet_until
from geowarn.dissemination.resolve import Resolution, no_gc
from geowarn.dissemination.templates import COLOUR_ZH, KIND_ZH, RISK_ZH, TemplateSet, action, sms_segments
from geowarn.warning.levels import Level

#: Issuing-body code in CAP identifiers (a county natural-resources bureau issues both kinds).
ISSUER_CODE = "ZRZY"
#: The personal fields of a message are filled in after rendering (a template is rendered once per audience,
#: unit and shelter, not once per person: a red warning reaches tens of thousands of people), so a template
#: uses them as they are (``{{ name }}``, ``{{ code }}``, ``{{ link }}``), without filters.
_PLACEHOLDERS = {"name": "\x01name\x01", "code": "\x01code\x01", "link": "\x01link\x01"}
_RECIPIENT = cast(Table, IssueRecipient.__table__)
#: Where confirmation links point (``Settings.public_url`` + this path + token).
ACK_PATH = "/api/dissemination/ack/"


@dataclass(slots=True)
class Warning:
    """What is being disseminated: one decision about one subject."""

    subject: str  # alert:<id> / product:<id>
    kind: str  # initial / update / lift
    warning_type: str  # site / regional
    level: Level
    previous_level: Level
    unit_code: str
    title: str
    now_ms: int
    alert_id: int | None = None
    product_version_id: int | None = None
    context: dict[str, Any] = field(default_factory=dict)


def _sender(session: Session, unit_code: str, warning_type: str) -> str:
    county = session.get(AdminUnit, unit_code[:6])
    name = county.name if county is not None else unit_code[:6]
    return f"{name}自然资源局" if warning_type == "site" else f"{name}自然资源局、气象局"


def _unit_names(session: Session, codes: list[str]) -> dict[str, str]:
    if not codes:
        return {}
    return dict(session.execute(select(AdminUnit.code, AdminUnit.name).where(AdminUnit.code.in_(codes))).all())


def _cap_identifier(session: Session, unit_code: str, now_ms: int) -> str:
    day = dt.datetime.fromtimestamp(now_ms / 1000, CST).strftime("%Y%m%d")
    prefix = f"{unit_code[:6]}{ISSUER_CODE}{day}"
    n = session.scalar(select(func.count()).where(WarningIssue.cap_identifier.like(f"{prefix}%"))) or 0
    return identifier(unit_code, ISSUER_CODE, now_ms, n + 1)


def _carried(session: Session, subject: str) -> list[Recipient]:
    """Everyone told about the previous version of the subject (escalations included)."""
    last = session.scalar(
        select(WarningIssue.id).where(WarningIssue.subject == subject).order_by(WarningIssue.version.desc()).limit(1)
    )
    if last is None:
        return []
    rows = session.execute(
        select(
            IssueRecipient.person_key,
            IssueRecipient.name,
            IssueRecipient.phone,
            IssueRecipient.unit_code,
            IssueRecipient.audience,
            IssueRecipient.household_id,
            IssueRecipient.shelter_id,
        ).where(IssueRecipient.issue_id == last)
    ).all()
    return [Recipient(k, n, p, u, a, ["已接收本预警此前版本"], [k], h, s) for k, n, p, u, a, h, s in rows]


GROUP_PREFIX = "endpoint:"


def is_group(r: Recipient) -> bool:
    """A group endpoint (a WeCom or DingTalk group, a webhook) told by an earlier version."""
    return r.key.startswith(GROUP_PREFIX)


def group_endpoints(session: Session, carried: list[Recipient]) -> dict[str, Endpoint]:
    """The still-active endpoints among carried recipients, by person key."""
    ids = sorted({int(r.key.removeprefix(GROUP_PREFIX)) for r in carried if is_group(r)})
    if not ids:
        return {}
    rows = session.scalars(select(Endpoint).where(Endpoint.id.in_(ids), Endpoint.active.is_(True)))
    return {f"{GROUP_PREFIX}{e.id}": e for e in rows}


def with_groups(res: Resolution, known: set[str], groups: dict[str, Endpoint]) -> Resolution:
    """``res`` with the groups told before added to its endpoints: an update or the lift reaches them
    whatever its level (endpoints are otherwise chosen by the level, so a lift would miss them)."""
    extra = [e for key, e in groups.items() if key not in known]
    return replace(res, endpoints=[*res.endpoints, *extra]) if extra else res


def _preferences(session: Session, unit_code: str) -> dict[str, Pref]:
    out = {}
    for p in session.scalars(select(Preference).where(unit_filter(Preference.unit_code, unit_code[:6]))):
        out[p.person_key] = Pref(tuple(p.channels or ()), p.quiet_start, p.quiet_end, p.email, p.language)
    return out


def _templates(session: Session, unit_code: str) -> TemplateSet:
    rows = session.execute(
        select(TemplateOverride.unit_code, TemplateOverride.key, TemplateOverride.body).where(
            unit_filter(TemplateOverride.unit_code, unit_code[:6])
        )
    ).all()
    return TemplateSet({(u, k): b for u, k, b in rows})


def bulk_insert_columns(session: Session, table: Table, columns: dict[str, list[Any]]) -> None:
    """Insert rows given as columns (equal-length lists; JSON already as text)."""
    bulk_insert_tuples(session, table, list(columns), list(zip(*columns.values(), strict=True)))


def publish(session: Session, w: Warning, res: Resolution, *, public_url: str = "") -> WarningIssue:
    """Record the issue, its recipients and its outbox rows, and the response tasks; return the issue."""
    with no_gc():
        return _publish(session, w, res, public_url)


def _publish(session: Session, w: Warning, res: Resolution, public_url: str) -> WarningIssue:
    version = (session.scalar(select(func.max(WarningIssue.version)).where(WarningIssue.subject == w.subject)) or 0) + 1
    prefs = _preferences(session, w.unit_code)
    fast, slow = _split_residents(res.residents, prefs)
    recipients = [*res.recipients, *slow]
    if w.kind != "initial":
        known = {k for r in recipients for k in r.keys} | {r.phone for r in recipients if r.phone}
        known.update(f"endpoint:{e.id}" for e in res.endpoints)  # a group told again is one row, not two
        if fast is not None:
            known.update(fast.keys())
            known.update(k for _, keys in fast.merged.values() for k in keys)
            known.update(p for p in fast.phone.tolist() if p)
        carried = _carried(session, w.subject)
        recipients += [r for r in carried if r.key not in known and r.phone not in known and not is_group(r)]
        res = with_groups(res, known, group_endpoints(session, carried))
    townships = sorted(set(res.townships))
    names = _unit_names(session, townships)
    sender = _sender(session, w.unit_code, w.warning_type)
    context = {
        **w.context,
        "sender": sender,
        "townships": townships,
        "township_names": [names.get(t, t) for t in townships],
        "sites": [{"id": s.id, "code": s.code, "name": s.name, "level": int(s.level)} for s in res.sites[:50]],
        "sites_total": len(res.sites),
    }
    issue = WarningIssue(
        subject=w.subject,
        version=version,
        kind=w.kind,
        warning_type=w.warning_type,
        level=int(w.level),
        previous_level=int(w.previous_level),
        unit_code=w.unit_code,
        issued_ms=w.now_ms,
        title=w.title,
        alert_id=w.alert_id,
        product_version_id=w.product_version_id,
        cap_identifier=_cap_identifier(session, w.unit_code, w.now_ms),
        context=context,
    )
    session.add(issue)
    session.flush()
    templates = _templates(session, w.unit_code)
    rec_rows: list[dict[str, Any]] = []
    tokens, codes = _tokens(len(recipients) + len(res.endpoints)), _codes(len(recipients))
    for r, code, token in zip(recipients, codes, tokens, strict=False):
        rec_rows.append(
            {
                "issue_id": issue.id,
                "person_key": r.key,
                "name": r.name[:100],
                "phone": r.phone,
                "unit_code": r.unit_code,
                "audience": r.audience,
                "reasons": r.reasons,
                "household_id": r.household_id,
                "shelter_id": r.shelter_id,
                "token": token,
                "code": code,
            }
        )
    for e, token in zip(res.endpoints, tokens[len(recipients) :], strict=True):
        rec_rows.append(
            {
                "issue_id": issue.id,
                "person_key": f"endpoint:{e.id}",
                "name": e.name[:100],
                "phone": None,
                "unit_code": e.unit_code,
                "audience": "group",
                "reasons": [f"工作群：{e.name}"],
                "household_id": None,
                "shelter_id": None,
                "token": token,
                "code": "",
            }
        )
    ids: list[int] = []
    if rec_rows:  # ids read back by person key (unique in the issue): RETURNING goes row by row on SQLite
        bulk_insert(session, _RECIPIENT, rec_rows)
        by_key = dict(session.execute(select(_RECIPIENT.c.person_key, _RECIPIENT.c.id)
                                      .where(_RECIPIENT.c.issue_id == issue.id)).all())  # fmt: skip
        ids = [by_key[row["person_key"]] for row in rec_rows]
    level_for_action = w.level if w.kind != "lift" else Level.NONE
    base = {
        "sender": sender,
        "title": w.title,
        "site_name": w.context.get("site_name", ""),
        "township": "、".join(names.get(t, t) for t in townships[:3]),
        "townships": "、".join(names.get(t, t) for t in townships[:5]) + ("等" if len(townships) > 5 else ""),
        "level_label": (w.level.site_label if w.warning_type == "site" else w.level.regional_label)
        if w.level
        else "解除",
        "colour_zh": COLOUR_ZH[w.level],
        "risk_zh": RISK_ZH[w.level],
        "kind_zh": KIND_ZH[w.kind],
        "action": action(w.warning_type, level_for_action, w.kind),
        "reason": w.context.get("reason_zh", ""),
        "issued": dt.datetime.fromtimestamp(w.now_ms / 1000, CST).strftime("%m月%d日%H:%M"),
    }
    link_base = public_url.rstrip("/") + ACK_PATH
    out_rows = []
    cache: dict[tuple[str, str, int | None], str] = {}
    by_source: dict[tuple[str, int | None], str] = {}

    def render(audience: str, unit: str, shelter_id: int | None) -> str:
        """Once per audience, unit and shelter; the personal fields are filled in afterwards."""
        rendered = cache.get((audience, unit, shelter_id))
        if rendered is None:  # units sharing a template source share the text (the context has no unit)
            source = templates.source(w.warning_type, audience, w.level, w.kind, unit)
            rendered = by_source.get((source, shelter_id))
            if rendered is None:
                shelter = res.shelters.get(shelter_id) if shelter_id else None
                ctx = {**base, **_PLACEHOLDERS, "shelter": shelter[0] if shelter else "",
                       "route": (shelter[1] or "") if shelter else ""}  # fmt: skip
                rendered = templates.render(w.warning_type, audience, w.level, w.kind, unit, ctx)
                by_source[(source, shelter_id)] = rendered
            cache[(audience, unit, shelter_id)] = rendered
        return rendered

    people: list[Recipient | None] = [*recipients, *[None] * len(res.endpoints)]
    for rid, row, who in zip(ids, rec_rows, people, strict=True):
        shelter_id, token, unit = cast(int | None, row["shelter_id"]), str(row["token"]), str(row["unit_code"])
        audience = str(row["audience"])
        pref: Pref | None
        pairs: list[tuple[str, str]]
        if who is None:
            endpoint_id = int(str(row["person_key"]).split(":")[1])
            e = next(e for e in res.endpoints if e.id == endpoint_id)
            pairs, pref = [(e.channel, f"endpoint:{e.id}")], None
        else:
            pref = next((prefs[k] for k in who.keys if k in prefs), None)
            pairs = channels_for(who, w.level, pref)
        if not pairs:
            continue
        text = (
            render(audience, unit, shelter_id)
            .replace(_PLACEHOLDERS["name"], str(row["name"]))
            .replace(_PLACEHOLDERS["code"], str(row["code"]))
            .replace(_PLACEHOLDERS["link"], link_base + token)
        )
        due = quiet_until(pref, w.level, w.now_ms) or w.now_ms
        for channel, address in pairs:
            out_rows.append(
                {
                    "issue_id": issue.id,
                    "recipient_id": rid,
                    "channel": channel,
                    "address": address,
                    "idem_key": f"{issue.id}:{row['person_key']}:{channel}",
                    "level": int(w.level),
                    "subject": w.title[:200],
                    "body": text,
                    "segments": sms_segments(text) if channel == "sms" else 1,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_ms": due,
                    "created_ms": w.now_ms,
                    "unit_code": unit,
                }
            )
    if out_rows:
        bulk_insert(session, cast(Table, OutboxMessage.__table__), out_rows)
    n_fast, m_fast = 0, 0
    if fast is not None and len(fast):
        n_fast, m_fast = _publish_residents(session, w, issue.id, fast, render, link_base)
    issue.recipients_count, issue.messages_count = len(rec_rows) + n_fast, len(out_rows) + m_fast
    response.on_issue(session, issue, res)
    session.flush()
    return issue


def _tokens(n: int) -> list[str]:
    """``n`` link tokens of 128 random bits each, as ``secrets.token_urlsafe(16)`` (one call to the OS)."""
    raw = secrets.token_bytes(16 * n)
    enc = base64.urlsafe_b64encode
    return [enc(raw[i : i + 16]).rstrip(b"=").decode() for i in range(0, 16 * n, 16)]


def _codes(n: int) -> list[str]:
    """``n`` random 6-digit confirmation codes (64 random bits reduced mod 10^6: bias below 10^-13)."""
    values = np.frombuffer(secrets.token_bytes(8 * n), dtype=np.uint64) % np.uint64(1_000_000)
    return [f"{v:06d}" for v in values.tolist()]


def _split_residents(residents: Residents | None, prefs: dict[str, Pref]) -> tuple[Residents | None, list[Recipient]]:
    """The residents without a stored preference (written column-wise) and, as objects, those with one."""
    if residents is None or not len(residents):
        return residents, []
    wanted: dict[int, set[int]] = {0: set(), 1: set()}
    for key in prefs:
        kind, _, rid = key.partition(":")
        if kind in RESIDENT_KINDS and rid.isdigit():
            wanted[RESIDENT_KINDS.index(kind)].add(int(rid))
    slow = np.zeros(len(residents), dtype=bool)
    for k, ids in wanted.items():
        if ids:
            slow |= (residents.kind == k) & np.isin(residents.record_id, list(ids))
    for row, (_, keys) in residents.merged.items():
        slow[row] |= any(k in prefs for k in keys)
    if not slow.any():
        return residents, []
    rows = np.flatnonzero(slow).tolist()
    slow_people = [residents.recipient(i) for i in rows]
    keep = np.flatnonzero(~slow)
    remap = {int(old): new for new, old in enumerate(keep.tolist())}
    fast = Residents(
        residents.kind[keep],
        residents.record_id[keep],
        residents.name[keep],
        residents.phone[keep],
        residents.unit_code[keep],
        residents.household_id[keep],
        residents.shelter_id[keep],
        residents.reason[keep],
        residents.texts,
        {remap[r]: v for r, v in residents.merged.items() if r in remap},
    )
    return fast, slow_people


def _publish_residents(
    session: Session, w: Warning, issue_id: int, fast: Residents, render: Any, link_base: str
) -> tuple[int, int]:
    """Recipient and outbox rows of residents without a preference, column by column.

    The same rows the per-person loop of :func:`publish` writes: without a preference a resident gets an
    SMS if they have a phone, and at red also a voice call (:func:`channels_for`); nothing waits for
    quiet hours. Returns the numbers of recipients and messages written."""
    n = len(fast)
    keys = fast.keys()
    names = [v[:100] for v in fast.name.tolist()]
    units = fast.unit_code.tolist()
    shelters = [v if v >= 0 else None for v in fast.shelter_id.tolist()]
    reason_json = [json.dumps([t], ensure_ascii=False) for t in fast.texts]
    reasons = [reason_json[i] for i in fast.reason.tolist()]
    for row, (texts, _) in fast.merged.items():
        reasons[row] = json.dumps(texts, ensure_ascii=False)
    tokens, codes = _tokens(n), _codes(n)
    phones = fast.phone.tolist()
    bulk_insert_columns(
        session,
        _RECIPIENT,
        {
            "issue_id": [issue_id] * n,
            "person_key": keys,
            "name": names,
            "phone": phones,
            "unit_code": units,
            "audience": ["resident"] * n,
            "reasons": reasons,
            "household_id": fast.household_id.tolist(),
            "shelter_id": shelters,
            "token": tokens,
            "code": codes,
        },
    )
    reached = [i for i, p in enumerate(phones) if p]
    if not reached:
        return n, 0
    by_key = dict(
        session.execute(
            select(_RECIPIENT.c.person_key, _RECIPIENT.c.id).where(
                _RECIPIENT.c.issue_id == issue_id, _RECIPIENT.c.audience == "resident"
            )
        ).all()
    )
    name_mark, code_mark, link_mark = (_PLACEHOLDERS[k] for k in ("name", "code", "link"))
    bodies = [
        render("resident", units[i], shelters[i])
        .replace(name_mark, names[i])
        .replace(code_mark, codes[i])
        .replace(link_mark, link_base + tokens[i])
        for i in reached
    ]
    channels = ["sms", "voice"] if w.level >= Level.RED else ["sms"]
    m = len(reached)
    columns: dict[str, list[Any]] = {c: [] for c in (
        "issue_id", "recipient_id", "channel", "address", "idem_key", "level", "subject", "body", "segments",
        "status", "attempts", "next_attempt_ms", "created_ms", "unit_code")}  # fmt: skip
    ids = [by_key[keys[i]] for i in reached]
    address = [phones[i] for i in reached]
    unit_of = [units[i] for i in reached]
    for channel in channels:
        columns["issue_id"] += [issue_id] * m
        columns["recipient_id"] += ids
        columns["channel"] += [channel] * m
        columns["address"] += address
        columns["idem_key"] += [f"{issue_id}:{keys[i]}:{channel}" for i in reached]
        columns["level"] += [int(w.level)] * m
        columns["subject"] += [w.title[:200]] * m
        columns["body"] += bodies
        columns["segments"] += [sms_segments(b) for b in bodies] if channel == "sms" else [1] * m
        columns["status"] += ["pending"] * m
        columns["attempts"] += [0] * m
        columns["next_attempt_ms"] += [w.now_ms] * m
        columns["created_ms"] += [w.now_ms] * m
        columns["unit_code"] += unit_of
    bulk_insert_columns(session, cast(Table, OutboxMessage.__table__), columns)
    return n, m * len(channels)
