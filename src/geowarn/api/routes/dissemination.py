"""``/api/dissemination``: who was told what and when, who confirmed; templates, endpoints, preferences;
CAP 1.2 documents and the Atom feed of active warnings.

Everything is scoped to the caller's unit: a warning of another township answers 404. Recipients'
names and phones are masked for roles without the personal-data permission. Confirmation by link
or code (``/ack``) needs no login: the link token (128 random bits) or the code together with the
phone it was sent to is the credential, and it confirms nothing but that one message.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from geowarn.api.deps import DbDep, Reader, ReadSession, Writer, WriteSession, personal, require
from geowarn.api.routes.monitoring_data import json_response
from geowarn.api.schemas.monitoring import iso_ms
from geowarn.api.scoping import check_unit, get_scoped, scope_filter
from geowarn.auth.masking import mask_name, mask_phone
from geowarn.auth.models import User
from geowarn.auth.roles import Permission
from geowarn.auth.scope import in_scope
from geowarn.dissemination import ack, capexport, response, templates
from geowarn.dissemination.models import (
    Endpoint,
    IssueRecipient,
    OutboxMessage,
    Preference,
    TemplateOverride,
    WarningIssue,
)
from geowarn.errors import InvalidInput, NotFound
from geowarn.inventory.models import Household, Person, Resident
from geowarn.warning.levels import Level
from geowarn.warning.models import now_ms

router = APIRouter(prefix="/dissemination", tags=["warning: dissemination"])
Warner = Annotated[User, require(Permission.WARN)]
Acknowledger = Annotated[User, require(Permission.ACKNOWLEDGE)]


def issue_json(i: WarningIssue) -> dict[str, Any]:
    level = Level(i.level)
    return {
        "id": i.id,
        "subject": i.subject,
        "version": i.version,
        "kind": i.kind,
        "warning_type": i.warning_type,
        "level": i.level,
        "colour": level.colour,
        "unit_code": i.unit_code,
        "issued": iso_ms(i.issued_ms),
        "title": i.title,
        "alert_id": i.alert_id,
        "product_version_id": i.product_version_id,
        "cap_identifier": i.cap_identifier,
        "recipients": i.recipients_count,
        "messages": i.messages_count,
        "townships": i.context.get("township_names", []),
    }


@router.get("/warnings")
def list_warnings(
    session: ReadSession,
    user: Reader,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    """Disseminated warning versions in scope, newest first."""
    stmt = select(WarningIssue).where(scope_filter(WarningIssue, user))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(
        stmt.order_by(WarningIssue.issued_ms.desc(), WarningIssue.id.desc()).limit(limit).offset(offset)
    )
    return json_response(
        {"items": [issue_json(i) for i in rows], "total": int(total), "limit": limit, "offset": offset}
    )


@router.get("/warnings/{issue_id}")
def get_warning(issue_id: int, session: ReadSession, user: Reader) -> Response:
    """One version with its message counts by channel and status, and its confirmations."""
    i = get_scoped(session, WarningIssue, issue_id, user)
    counts: dict[str, dict[str, int]] = {}
    for ch, st, n in session.execute(
        select(OutboxMessage.channel, OutboxMessage.status, func.count())
        .where(OutboxMessage.issue_id == i.id)
        .group_by(OutboxMessage.channel, OutboxMessage.status)
    ):
        counts.setdefault(ch, {})[st] = int(n)
    confirmed = (
        session.scalar(
            select(func.count()).where(IssueRecipient.issue_id == i.id, IssueRecipient.acked_ms.is_not(None))
        )
        or 0
    )
    return json_response({**issue_json(i), "by_channel": counts, "confirmed": int(confirmed)})


def _recipient_json(r: IssueRecipient, show: bool) -> dict[str, Any]:
    return {
        "id": r.id,
        "person_key": r.person_key,
        "name": r.name if show else mask_name(r.name),
        "phone": r.phone if show else mask_phone(r.phone),
        "unit_code": r.unit_code,
        "audience": r.audience,
        "reasons": r.reasons if show else [x for x in r.reasons if "户主" not in x],
        "household_id": r.household_id,
        "shelter_id": r.shelter_id,
        "confirmed": iso_ms(r.acked_ms),
        "confirmed_via": r.ack_via,
        "escalation_of": r.escalation_of,
        "escalated": iso_ms(r.escalated_ms),
    }


@router.get("/warnings/{issue_id}/recipients")
def list_recipients(
    issue_id: int,
    session: ReadSession,
    user: Reader,
    audience: Annotated[str | None, Query(max_length=12)] = None,
    confirmed: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    """Everyone told, with every reason; filter by audience and confirmation."""
    i = get_scoped(session, WarningIssue, issue_id, user)
    stmt = select(IssueRecipient).where(IssueRecipient.issue_id == i.id, scope_filter(IssueRecipient, user))
    if audience:
        stmt = stmt.where(IssueRecipient.audience == audience)
    if confirmed is not None:
        stmt = stmt.where(IssueRecipient.acked_ms.is_not(None) if confirmed else IssueRecipient.acked_ms.is_(None))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    show = personal(user)
    items = [
        _recipient_json(r, show) for r in session.scalars(stmt.order_by(IssueRecipient.id).limit(limit).offset(offset))
    ]
    return json_response({"items": items, "total": int(total), "limit": limit, "offset": offset})


@router.get("/warnings/{issue_id}/messages")
def list_messages(
    issue_id: int,
    session: ReadSession,
    user: Reader,
    channel: Annotated[str | None, Query(max_length=16)] = None,
    status: Annotated[str | None, Query(max_length=10)] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    """The outbox of one version: what was sent on which channel, and what became of it."""
    i = get_scoped(session, WarningIssue, issue_id, user)
    stmt = select(OutboxMessage).where(OutboxMessage.issue_id == i.id, scope_filter(OutboxMessage, user))
    if channel:
        stmt = stmt.where(OutboxMessage.channel == channel)
    if status:
        stmt = stmt.where(OutboxMessage.status == status)
    show = personal(user)
    items = [
        {
            "id": m.id,
            "recipient_id": m.recipient_id,
            "channel": m.channel,
            "address": m.address if show or m.channel not in ("sms", "voice") else mask_phone(m.address),
            "body": m.body if show else None,
            "segments": m.segments,
            "status": m.status,
            "attempts": m.attempts,
            "sent": iso_ms(m.sent_ms),
            "delivered": iso_ms(m.delivered_ms),
            "error": m.last_error,
        }
        for m in session.scalars(stmt.order_by(OutboxMessage.id).limit(limit).offset(offset))
    ]
    return json_response({"items": items, "limit": limit, "offset": offset})


@router.get("/warnings/{issue_id}/cap")
def warning_cap(issue_id: int, session: ReadSession, user: Reader) -> Response:
    """The version as a CAP 1.2 document (checked against the OASIS schema in the tests)."""
    i = get_scoped(session, WarningIssue, issue_id, user)
    return Response(capexport.cap_document(session, i), media_type="application/cap+xml")


@router.get("/warnings/{issue_id}/timeline")
def warning_timeline(issue_id: int, session: ReadSession, user: Reader) -> Response:
    """issued → first delivered → all responsible confirmed → transfer complete, per township in scope."""
    i = get_scoped(session, WarningIssue, issue_id, user)
    t = response.timeline(session, i.subject)
    t["townships"] = [
        {**x, **{k: iso_ms(v) for k, v in x.items() if k.endswith("_ms")}}
        for x in t["townships"]
        if in_scope(user.unit_code, x["township"]) or in_scope(x["township"], user.unit_code)
    ]
    return json_response(t)


@router.post("/warnings/{issue_id}/recipients/{recipient_id}/confirm")
def confirm_for(issue_id: int, recipient_id: int, session: WriteSession, user: Acknowledger) -> Response:
    """Record a confirmation taken by phone (回访) for a recipient."""
    i = get_scoped(session, WarningIssue, issue_id, user)
    r = session.scalar(
        select(IssueRecipient).where(
            IssueRecipient.id == recipient_id, IssueRecipient.issue_id == i.id, scope_filter(IssueRecipient, user)
        )
    )
    if r is None:
        raise NotFound(f"recipient {recipient_id} not found", message_zh="接收人不存在")
    if r.acked_ms is None:
        r.acked_ms, r.ack_via = now_ms(), "api"
    return json_response(_recipient_json(r, personal(user)))


@router.get("/feed.atom")
def feed(request: Request, session: ReadSession, user: Reader) -> Response:
    """An Atom feed of the active warnings in scope, each linking to its CAP document."""
    base = str(request.url_for("feed")).removesuffix("/feed.atom")
    items = capexport.active_issues(session, scope_filter(WarningIssue, user))
    return Response(
        capexport.atom_feed(items, base, f"urn:geowarn:{user.unit_code}"), media_type="application/atom+xml"
    )


@router.get("/inbox")
def inbox(session: ReadSession, user: Reader, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Response:
    """The in-app inbox of the caller's unit: messages to officials and responsible persons."""
    stmt = (
        select(OutboxMessage)
        .where(OutboxMessage.channel == "inbox", scope_filter(OutboxMessage, user))
        .order_by(OutboxMessage.id.desc())
        .limit(limit)
    )
    items = [
        {
            "id": m.id,
            "issue_id": m.issue_id,
            "to": m.address,
            "subject": m.subject,
            "body": m.body,
            "status": m.status,
            "delivered": iso_ms(m.delivered_ms),
        }
        for m in session.scalars(stmt)
    ]
    return json_response({"items": items})


# --- confirmation without login --------------------------------------------------------------

_PAGE = """<!doctype html><html lang="zh-CN"><meta charset="utf-8"><meta name="viewport"
content="width=device-width"><title>预警确认</title><body style="font:18px sans-serif;margin:2em">{}</body></html>"""


@router.get("/ack/{token}", response_class=HTMLResponse)
def ack_link(token: str, db: DbDep) -> HTMLResponse:
    """The link in a message: confirms that its recipient has received the warning."""
    with db.write(actor="ack-link") as s:
        r = ack.by_token(s, token, now_ms())
        title = s.scalar(select(WarningIssue.title).where(WarningIssue.id == r.issue_id)) or ""
    return HTMLResponse(_PAGE.format(f"<h1>已确认收到</h1><p>{title}</p><p>请按预警要求行动。</p>"))


class CodeIn(BaseModel):
    phone: str = Field(min_length=5, max_length=20)
    code: str = Field(pattern=r"^\d{6}$")


@router.post("/ack")
def ack_code(body: CodeIn, db: DbDep) -> Response:
    """Confirm with the code from the message and the phone it was sent to."""
    with db.write(actor="ack-code") as s:
        r = ack.by_code(s, body.phone, body.code, now_ms())
        return json_response({"confirmed": iso_ms(r.acked_ms)})


# --- templates, endpoints, preferences -----------------------------------------------------------


@router.get("/templates")
def list_templates(session: ReadSession, user: Reader) -> Response:
    """The package defaults, the actions by level, and the overrides in scope."""
    rows = session.scalars(select(TemplateOverride).where(scope_filter(TemplateOverride, user)))
    return json_response(
        {
            "defaults": templates.defaults()["templates"],
            "actions": templates.defaults()["actions"],
            "names": list(templates.CONTEXT_NAMES),
            "reminder_names": list(templates.REMINDER_NAMES),
            "overrides": [
                {"id": t.id, "unit_code": t.unit_code, "key": t.key, "body": t.body, "updated_by": t.updated_by}
                for t in rows
            ],
        }
    )


class TemplateIn(BaseModel):
    body: str = Field(min_length=1, max_length=2000)
    unit_code: str | None = Field(None, max_length=12)


@router.put("/templates/{key}")
def put_template(key: str, body: TemplateIn, session: WriteSession, user: Warner) -> Response:
    """Store an operator's template for a unit (default: the caller's) and below; checked before saving."""
    parts = key.split(".")
    if len(parts) < 2 or parts[0] not in ("site", "regional", templates.REMINDER_TYPE) or len(key) > 60:
        raise InvalidInput(
            f"bad template key {key!r}",
            message_zh="模板键应为 <site|regional>.<受众>[.<颜色>][.<类型>] 或 zero_report.official[.short]",
        )
    unit = body.unit_code or user.unit_code
    check_unit(session, user, unit)
    templates.check(body.body, key)
    names = templates.REMINDER_NAMES if parts[0] == templates.REMINDER_TYPE else templates.CONTEXT_NAMES
    t = session.scalar(select(TemplateOverride).where(TemplateOverride.unit_code == unit, TemplateOverride.key == key))
    if t is None:
        t = TemplateOverride(unit_code=unit, key=key, body=body.body, updated_by=user.username)
        session.add(t)
    else:
        t.body, t.updated_by = body.body, user.username
    session.flush()
    sample = " ".join(templates.compile_template(body.body).render(**{k: f"<{k}>" for k in names}).split())
    return json_response(
        {
            "id": t.id,
            "unit_code": unit,
            "key": key,
            "body": t.body,
            "sample": sample,
            "sample_segments": templates.sms_segments(sample),
        }
    )


def _endpoint_json(e: Endpoint) -> dict[str, Any]:
    return {
        "id": e.id,
        "unit_code": e.unit_code,
        "channel": e.channel,
        "name": e.name,
        "url": e.url,
        "signed": bool(e.secret),
        "min_level": e.min_level,
        "active": e.active,
    }


@router.get("/endpoints")
def list_endpoints(session: ReadSession, user: Reader) -> Response:
    """Group channels (WeCom/DingTalk robots, webhooks) in scope; secrets are never shown."""
    rows = session.scalars(select(Endpoint).where(scope_filter(Endpoint, user)).order_by(Endpoint.id))
    return json_response({"items": [_endpoint_json(e) for e in rows]})


class EndpointIn(BaseModel):
    unit_code: str = Field(max_length=12)
    channel: str = Field(pattern="^(wecom|dingtalk|webhook)$")
    name: str = Field(min_length=1, max_length=100)
    url: str = Field(pattern=r"^https?://", max_length=500)
    secret: str | None = Field(None, max_length=200)
    min_level: int = Field(1, ge=1, le=4)


@router.post("/endpoints", status_code=201)
def create_endpoint(body: EndpointIn, session: WriteSession, user: Warner) -> Response:
    check_unit(session, user, body.unit_code)
    e = Endpoint(**body.model_dump(), active=True)
    session.add(e)
    session.flush()
    return json_response(_endpoint_json(e), status_code=201)


class PreferenceIn(BaseModel):
    channels: list[str] = Field(default_factory=list, max_length=6)
    quiet_start: str | None = Field(None, pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    quiet_end: str | None = Field(None, pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    email: str | None = Field(None, max_length=200, pattern=r"^[^@\s]+@[^@\s]+$")
    language: str = Field("zh-CN", max_length=8)


_KEYED: dict[str, Any] = {"person": Person, "resident": Resident, "household": Household}


@router.put("/preferences/{person_key}")
def put_preference(person_key: str, body: PreferenceIn, session: WriteSession, user: Writer) -> Response:
    """A person's channels, e-mail and quiet hours (quiet hours never hold back orange or red)."""
    kind, _, ident = person_key.partition(":")
    model = _KEYED.get(kind)
    if model is None or not ident.isdigit():
        raise InvalidInput(f"bad person key {person_key!r}", message_zh="人员标识应为 person:/resident:/household:编号")
    record: Any = get_scoped(session, model, int(ident), user)
    bad = set(body.channels) - {"sms", "voice", "email", "inbox"}
    if bad:
        raise InvalidInput(f"unknown channels {sorted(bad)}", message_zh="未知的接收渠道")
    if (body.quiet_start is None) != (body.quiet_end is None):
        raise InvalidInput("give both ends of the quiet hours", message_zh="免打扰时段须同时给出开始和结束")
    p = session.scalar(select(Preference).where(Preference.person_key == person_key))
    if p is None:
        p = Preference(person_key=person_key, unit_code=record.unit_code)
        session.add(p)
    p.channels, p.quiet_start, p.quiet_end, p.email, p.language = (
        body.channels,
        body.quiet_start,
        body.quiet_end,
        body.email,
        body.language,
    )
    p.unit_code = record.unit_code
    session.flush()
    return json_response(
        {
            "person_key": person_key,
            "channels": p.channels,
            "quiet_start": p.quiet_start,
            "quiet_end": p.quiet_end,
            "email": p.email if personal(user) else None,
        }
    )
