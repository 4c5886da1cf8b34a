"""Writing the messages of many warnings at once (the site alerts of one engine batch).

:func:`publish_many` records, for each (warning, resolution), exactly what
:func:`geowarn.dissemination.outbox.publish` records for it alone — the :class:`WarningIssue` with the
next version of its subject and the next CAP sequence number of its county and day, one
:class:`IssueRecipient` per person (updates and lifts carry over everyone told about the previous
version), one :class:`OutboxMessage` per (issue, person, channel) with the idempotency key
``<issue id>:<person key>:<channel>``, quiet hours holding back blue and yellow only, and the response
tasks — but reads what the warnings share once (versions, carried recipients, preferences, templates,
unit names) and writes all issues, and all recipient and outbox rows, in one bulk insert each.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Table, func, select
from sqlalchemy.orm import Session

from geowarn.audit.bulk import insert_new
from geowarn.db.bulk import insert_rows as bulk_insert
from geowarn.dissemination import response
from geowarn.dissemination.cap import CST, identifier
from geowarn.dissemination.models import Endpoint, IssueRecipient, OutboxMessage, WarningIssue
from geowarn.dissemination.outbox import (
    _PLACEHOLDERS,
    _RECIPIENT,
    ACK_PATH,
    ISSUER_CODE,
    Warning,
    _codes,
    _preferences,
    _publish_residents,
    _sender,
    _split_residents,
    _templates,
    _tokens,
    _unit_names,
    group_endpoints,
    is_group,
    with_groups,
)
from geowarn.dissemination.recipients import Pref, Recipient, Residents, channels_for, quiet_until
from geowarn.dissemination.resolve import CHUNK, Resolution, no_gc
from geowarn.dissemination.templates import COLOUR_ZH, KIND_ZH, RISK_ZH, TemplateSet, action, sms_segments
from geowarn.warning.levels import Level


@dataclass(slots=True)
class _Shared:
    """What the batch's warnings share, read once."""

    last: dict[str, tuple[int, int]]  # subject -> (version, issue id) of its latest issue
    carried: dict[int, list[Recipient]]  # issue id -> the people it told
    prefs: dict[str, dict[str, Pref]] = field(default_factory=dict)  # county -> person key -> preference
    templates: dict[str, TemplateSet] = field(default_factory=dict)  # county -> templates
    senders: dict[tuple[str, str], str] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # township code -> name
    cap_next: dict[str, int] = field(default_factory=dict)  # CAP identifier prefix -> next sequence number
    groups: dict[str, Endpoint] = field(default_factory=dict)  # group endpoints told before, by person key


def publish_many(
    session: Session, items: Sequence[tuple[Warning, Resolution]], *, public_url: str = ""
) -> list[WarningIssue]:
    """Record the issues of ``items`` (one per subject) with their recipients, outbox rows and response
    tasks; return the issues in order."""
    if not items:
        return []
    subjects = [w.subject for w, _ in items]
    if len(set(subjects)) != len(subjects):
        raise ValueError("one warning per subject in a batch")
    with no_gc():
        return _publish_many(session, items, public_url)


def _read(session: Session, items: Sequence[tuple[Warning, Resolution]]) -> _Shared:
    subjects = [w.subject for w, _ in items]
    last: dict[str, tuple[int, int]] = {}
    for k in range(0, len(subjects), CHUNK):
        rows = session.execute(
            select(WarningIssue.subject, WarningIssue.version, WarningIssue.id).where(
                WarningIssue.subject.in_(subjects[k : k + CHUNK])
            )
        )
        for subject, version, issue_id in rows:
            if subject not in last or version > last[subject][0]:
                last[subject] = (version, issue_id)
    previous = sorted(last[w.subject][1] for w, _ in items if w.kind != "initial" and w.subject in last)
    carried: dict[int, list[Recipient]] = {i: [] for i in previous}
    r = IssueRecipient
    cols = (r.issue_id, r.person_key, r.name, r.phone, r.unit_code, r.audience, r.household_id, r.shelter_id)
    for k in range(0, len(previous), CHUNK):
        stmt = select(*cols).where(IssueRecipient.issue_id.in_(previous[k : k + CHUNK])).order_by(IssueRecipient.id)
        for issue_id, key, name, phone, unit, audience, household, shelter in session.execute(stmt):
            carried[issue_id].append(
                Recipient(key, name, phone, unit, audience, ["已接收本预警此前版本"], [key], household, shelter)
            )
    shared = _Shared(last, carried)
    shared.groups = group_endpoints(session, [r for told in carried.values() for r in told])
    for w, _ in items:
        county = w.unit_code[:6]
        if county not in shared.prefs:
            shared.prefs[county] = _preferences(session, county)
            shared.templates[county] = _templates(session, county)
        if (county, w.warning_type) not in shared.senders:
            shared.senders[(county, w.warning_type)] = _sender(session, w.unit_code, w.warning_type)
        prefix = _cap_prefix(w)
        if prefix not in shared.cap_next:
            count = session.scalar(select(func.count()).where(WarningIssue.cap_identifier.like(f"{prefix}%")))
            shared.cap_next[prefix] = (count or 0) + 1
    shared.names = _unit_names(session, sorted({t for _, res in items for t in res.townships}))
    return shared


def _cap_prefix(w: Warning) -> str:
    day = dt.datetime.fromtimestamp(w.now_ms / 1000, CST).strftime("%Y%m%d")
    return f"{w.unit_code[:6]}{ISSUER_CODE}{day}"


@dataclass(slots=True)
class _Pending:
    """One warning on its way to the outbox."""

    w: Warning
    res: Resolution
    issue: WarningIssue
    recipients: list[Recipient]
    fast: Residents | None
    prefs: dict[str, Pref]
    townships: list[str]
    rows: list[dict[str, Any]] = field(default_factory=list)  # recipient rows, persons then endpoints


def _publish_many(session: Session, items: Sequence[tuple[Warning, Resolution]], public_url: str) -> list[WarningIssue]:
    shared = _read(session, items)
    pending = [_prepare(shared, w, res) for w, res in items]
    link_base = public_url.rstrip("/") + ACK_PATH
    renders = [_renderer(shared, p) for p in pending]
    messages: list[tuple[_Pending, int, dict[str, Any]]] = []  # (warning, recipient row, message row)
    for p, render in zip(pending, renders, strict=True):
        p.rows = _recipient_rows(p)
        out = _messages(p, render, link_base)
        p.issue.recipients_count, p.issue.messages_count = len(p.rows), len(out)  # counted before the insert
        messages += [(p, i, m) for i, m in out]
    insert_new(session, [p.issue for p in pending], WarningIssue.__tablename__)
    rows = [{**r, "issue_id": p.issue.id} for p in pending for r in p.rows]
    ids: dict[tuple[int, str], int] = {}
    if rows:  # ids read back by (issue, person key): RETURNING goes row by row on SQLite
        bulk_insert(session, _RECIPIENT, rows)
        issue_ids = sorted({p.issue.id for p in pending if p.rows})
        for k in range(0, len(issue_ids), CHUNK):
            stmt = select(_RECIPIENT.c.issue_id, _RECIPIENT.c.person_key, _RECIPIENT.c.id).where(
                _RECIPIENT.c.issue_id.in_(issue_ids[k : k + CHUNK])
            )
            ids.update(((i, key), rid) for i, key, rid in session.execute(stmt))
    for p, i, m in messages:
        key = str(p.rows[i]["person_key"])
        m["issue_id"], m["recipient_id"] = p.issue.id, ids[(p.issue.id, key)]
        m["idem_key"] = f"{p.issue.id}:{key}:{m['channel']}"
    if messages:
        bulk_insert(session, cast(Table, OutboxMessage.__table__), [m for _, _, m in messages])
    for p, render in zip(pending, renders, strict=True):
        if p.fast is not None and len(p.fast):  # residents as columns (regional warnings)
            n_fast, m_fast = _publish_residents(session, p.w, p.issue.id, p.fast, render, link_base)
            p.issue.recipients_count += n_fast
            p.issue.messages_count += m_fast
    response.on_issues(session, [(p.issue, p.res) for p in pending])
    return [p.issue for p in pending]


def _prepare(shared: _Shared, w: Warning, res: Resolution) -> _Pending:
    """The issue (not yet written) and the people of one warning."""
    county = w.unit_code[:6]
    prefs = shared.prefs[county]
    fast, slow = _split_residents(res.residents, prefs)
    recipients = [*res.recipients, *slow]
    last = shared.last.get(w.subject)
    if w.kind != "initial" and last is not None:
        known = {k for r in recipients for k in r.keys} | {r.phone for r in recipients if r.phone}
        known.update(f"endpoint:{e.id}" for e in res.endpoints)  # a group told again is one row, not two
        if fast is not None:
            known.update(fast.keys())
            known.update(k for _, keys in fast.merged.values() for k in keys)
            known.update(p for p in fast.phone.tolist() if p)
        carried = shared.carried.get(last[1], [])
        recipients += [r for r in carried if r.key not in known and r.phone not in known and not is_group(r)]
        res = with_groups(res, known, {r.key: shared.groups[r.key] for r in carried if r.key in shared.groups})
    townships = sorted(set(res.townships))
    prefix = _cap_prefix(w)
    number = shared.cap_next[prefix]
    shared.cap_next[prefix] = number + 1
    context = {
        **w.context,
        "sender": shared.senders[(county, w.warning_type)],
        "townships": townships,
        "township_names": [shared.names.get(t, t) for t in townships],
        "sites": [{"id": s.id, "code": s.code, "name": s.name, "level": int(s.level)} for s in res.sites[:50]],
        "sites_total": len(res.sites),
    }
    issue = WarningIssue(
        subject=w.subject,
        version=(last[0] if last is not None else 0) + 1,
        kind=w.kind,
        warning_type=w.warning_type,
        level=int(w.level),
        previous_level=int(w.previous_level),
        unit_code=w.unit_code,
        issued_ms=w.now_ms,
        title=w.title,
        alert_id=w.alert_id,
        product_version_id=w.product_version_id,
        cap_identifier=identifier(w.unit_code, ISSUER_CODE, w.now_ms, number),
        context=context,
    )
    return _Pending(w, res, issue, recipients, fast, prefs, townships)


def _recipient_rows(p: _Pending) -> list[dict[str, Any]]:
    """Recipient rows of one warning (``issue_id`` is filled in once the issue is written)."""
    issue_id = None
    tokens, codes = _tokens(len(p.recipients) + len(p.res.endpoints)), _codes(len(p.recipients))
    rows = [
        {"issue_id": issue_id, "person_key": r.key, "name": r.name[:100], "phone": r.phone, "unit_code": r.unit_code,
         "audience": r.audience, "reasons": r.reasons, "household_id": r.household_id, "shelter_id": r.shelter_id,
         "token": token, "code": code}
        for r, code, token in zip(p.recipients, codes, tokens, strict=False)
    ]  # fmt: skip
    rows += [
        {"issue_id": issue_id, "person_key": f"endpoint:{e.id}", "name": e.name[:100], "phone": None,
         "unit_code": e.unit_code, "audience": "group", "reasons": [f"工作群：{e.name}"], "household_id": None,
         "shelter_id": None, "token": token, "code": ""}
        for e, token in zip(p.res.endpoints, tokens[len(p.recipients) :], strict=True)
    ]  # fmt: skip
    return rows


def _renderer(shared: _Shared, p: _Pending) -> Callable[[str, str, int | None], str]:
    """Render a message once per audience, unit and shelter; the personal fields are filled in afterwards."""
    w, res, townships, names = p.w, p.res, p.townships, shared.names
    templates = shared.templates[w.unit_code[:6]]
    level_for_action = w.level if w.kind != "lift" else Level.NONE
    base = {
        "sender": shared.senders[(w.unit_code[:6], w.warning_type)],
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
    cache: dict[tuple[str, str, int | None], str] = {}
    by_source: dict[tuple[str, int | None], str] = {}

    def render(audience: str, unit: str, shelter_id: int | None) -> str:
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

    return render


def _messages(
    p: _Pending, render: Callable[[str, str, int | None], str], link_base: str
) -> list[tuple[int, dict[str, Any]]]:
    """The outbox rows of one warning, each with the index of its recipient row (the issue and recipient
    ids and the idempotency key are filled in once those rows are written)."""
    w = p.w
    endpoints = {f"endpoint:{e.id}": e for e in p.res.endpoints}
    people: list[Recipient | None] = [*p.recipients, *[None] * len(p.res.endpoints)]
    out: list[tuple[int, dict[str, Any]]] = []
    for i, (row, who) in enumerate(zip(p.rows, people, strict=True)):
        pref: Pref | None
        if who is None:
            e = endpoints[str(row["person_key"])]
            pairs, pref = [(e.channel, f"endpoint:{e.id}")], None
        else:
            pref = next((p.prefs[k] for k in who.keys if k in p.prefs), None)
            pairs = channels_for(who, w.level, pref)
        if not pairs:
            continue
        text = (
            render(str(row["audience"]), str(row["unit_code"]), cast(int | None, row["shelter_id"]))
            .replace(_PLACEHOLDERS["name"], str(row["name"]))
            .replace(_PLACEHOLDERS["code"], str(row["code"]))
            .replace(_PLACEHOLDERS["link"], link_base + str(row["token"]))
        )
        due = quiet_until(pref, w.level, w.now_ms) or w.now_ms
        for channel, address in pairs:
            out.append(
                (
                    i,
                    {
                        "issue_id": None,
                        "recipient_id": None,
                        "channel": channel,
                        "address": address,
                        "idem_key": None,
                        "level": int(w.level),
                        "subject": w.title[:200],
                        "body": text,
                        "segments": sms_segments(text) if channel == "sms" else 1,
                        "status": "pending",
                        "attempts": 0,
                        "next_attempt_ms": due,
                        "created_ms": w.now_ms,
                        "unit_code": str(row["unit_code"]),
                    },
                )
            )
    return out
