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
import json
import secrets
from dataclasses import dataclass, field, replace
from typing import Any, cast

import numpy as np
from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from geowarn.admin.models import AdminUnit
from geowarn.auth.scope import unit_filter
from geowarn.db.bulk import insert_tuples as bulk_insert_tuples
from geowarn.dissemination.models import (
    Endpoint,
    IssueRecipient,
    OutboxMessage,
    Preference,
    TemplateOverride,
    WarningIssue,
)
from geowarn.dissemination.recipients import RESIDENT_KINDS, Pref, Recipient, Residents
from geowarn.dissemination.resolve import Resolution
from geowarn.dissemination.templates import TemplateSet, sms_segments
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
    """Record one warning's issue, recipients, outbox rows and response tasks: the one-item case of
    :func:`geowarn.dissemination.outbox_batch.publish_many`, so products and site alerts share one writer."""
    from geowarn.dissemination.outbox_batch import publish_many  # it builds on this module's helpers

    return publish_many(session, [(w, res)], public_url=public_url)[0]


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
