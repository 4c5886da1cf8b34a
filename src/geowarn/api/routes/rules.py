"""``/api/warning/rules`` and ``/api/sites/{id}/rules``: the site-warning rules and their overrides.

Defaults ship with geowarn (``warning/default_rules.yaml``); a county overrides them per hazard
type for its own unit, and per site. A rule with the same id replaces the default; ``disabled``
removes it. Bodies are JSON, or YAML in the form of the defaults file (``Content-Type:
application/yaml``); they are validated, and errors name the path of each bad field.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import select

from geowarn.admin.codes import contains, prefix_of
from geowarn.api.deps import Reader, ReadSession, WriteSession, require
from geowarn.api.problems import PayloadTooLarge
from geowarn.api.routes.monitoring_data import json_response
from geowarn.api.scoping import get_scoped
from geowarn.auth.models import User
from geowarn.auth.roles import Permission
from geowarn.errors import InvalidInput
from geowarn.inventory.domain import HazardType
from geowarn.inventory.models import HazardSite
from geowarn.warning.models import RuleOverride
from geowarn.warning.ruleset import default_rules, merge, parse_rules, rules_document, rules_for

router = APIRouter(tags=["warning: rules"])
Warner = Annotated[User, require(Permission.WARN)]

MAX_RULES_BYTES = 256 * 1024
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
_RULES_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"type": "object", "properties": {"rules": {"type": "array"}}}},
            "application/yaml": {"schema": {"type": "string", "description": "rules: [...] as in the defaults file"}},
        },
    }
}


async def _rules_body(request: Request) -> dict[str, Any]:
    """The rules document of a PUT: JSON, or YAML when the content type says so."""
    raw = await request.body()
    if len(raw) > MAX_RULES_BYTES:
        raise PayloadTooLarge(f"rules body over {MAX_RULES_BYTES} bytes", message_zh="规则文件过大（上限 256 KB）")
    kind = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("body: not UTF-8", message_zh="规则须为 UTF-8 编码") from None
    if kind in YAML_TYPES:
        doc = rules_document(text, "body")
    else:
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise InvalidInput(f"body: not JSON: {exc}", message_zh="规则不是有效的 JSON") from None
    if not isinstance(doc, dict):
        raise InvalidInput("body: a rules document is an object with 'rules'", message_zh="规则须为含 rules 的对象")
    return doc


RulesBody = Annotated[dict[str, Any], Depends(_rules_body)]


def _invalidate(request: Request) -> None:
    overrides = getattr(request.app.state, "rule_overrides", None)
    if overrides is not None:
        overrides.invalidate()


def _dump(rules: Any) -> list[dict[str, Any]]:
    return [r.model_dump(mode="json", by_alias=True, exclude_none=True) for r in rules]


def _hazard_type(value: str) -> str:
    try:
        return HazardType(value).value
    except ValueError:
        raise InvalidInput(f"unknown hazard type {value!r}", message_zh=f"未知灾种：{value}") from None


@router.get("/warning/rules/defaults")
def defaults(user: Reader) -> Response:
    """The rules geowarn ships with, for every hazard type."""
    return json_response({"rules": _dump(default_rules().rules)})


def _type_override(session: Any, user: User, hazard_type: str) -> RuleOverride | None:
    return session.scalar(
        select(RuleOverride).where(
            RuleOverride.scope == "type", RuleOverride.hazard_type == hazard_type,
            RuleOverride.unit_code == user.unit_code,
        )
    )  # fmt: skip


@router.get("/warning/rules/types/{hazard_type}")
def type_rules(hazard_type: str, session: ReadSession, user: Reader) -> Response:
    """The override of a hazard type in the caller's unit and the rules that result."""
    kind = _hazard_type(hazard_type)
    row = _type_override(session, user, kind)
    layer = parse_rules(row.body) if row else None
    return json_response({"hazard_type": kind, "unit_code": user.unit_code,
                          "override": row.body if row else None, "version": row.version if row else 0,
                          "effective": _dump(rules_for(kind, layer))})  # fmt: skip


@router.put("/warning/rules/types/{hazard_type}", openapi_extra=_RULES_BODY)
def put_type_rules(
    hazard_type: str, body: RulesBody, request: Request, session: WriteSession, user: Warner
) -> Response:
    """Set the caller's unit's override for a hazard type (replaces the previous one)."""
    kind = _hazard_type(hazard_type)
    layer = parse_rules(body, "body")
    row = _type_override(session, user, kind)
    if row is None:
        row = RuleOverride(scope="type", hazard_type=kind, unit_code=user.unit_code, version=0)
        session.add(row)
    row.body, row.version, row.updated_by = body, row.version + 1, user.username
    session.flush()
    _invalidate(request)
    return json_response({"hazard_type": kind, "version": row.version, "effective": _dump(rules_for(kind, layer))})


def _site_override(session: Any, site_id: int) -> RuleOverride | None:
    return session.scalar(select(RuleOverride).where(RuleOverride.scope == "site", RuleOverride.site_id == site_id))


def _type_layer(session: Any, site: HazardSite) -> Any:
    rows = session.scalars(
        select(RuleOverride).where(RuleOverride.scope == "type", RuleOverride.hazard_type == site.hazard_type)
    ).all()
    mine = sorted(
        (r for r in rows if contains(r.unit_code, site.unit_code)), key=lambda r: -len(prefix_of(r.unit_code))
    )
    return parse_rules(mine[0].body) if mine else None


@router.get("/sites/{site_id}/rules")
def site_rules(site_id: int, session: ReadSession, user: Reader) -> Response:
    """The rules in force at a site (defaults ← hazard-type override ← site override) and its own override."""
    site = get_scoped(session, HazardSite, site_id, user)
    row = _site_override(session, site.id)
    effective = rules_for(site.hazard_type, _type_layer(session, site), parse_rules(row.body) if row else None)
    return json_response({"site_id": site.id, "hazard_type": site.hazard_type, "override": row.body if row else None,
                          "version": row.version if row else 0, "effective": _dump(effective)})  # fmt: skip


@router.put("/sites/{site_id}/rules", openapi_extra=_RULES_BODY)
def put_site_rules(site_id: int, body: RulesBody, request: Request, session: WriteSession, user: Warner) -> Response:
    """Set a site's own rules (replacing its previous override)."""
    site = get_scoped(session, HazardSite, site_id, user)
    layer = parse_rules(body, "body")
    row = _site_override(session, site.id)
    if row is None:
        row = RuleOverride(scope="site", site_id=site.id, unit_code=site.unit_code, version=0)
        session.add(row)
    row.body, row.version, row.updated_by = body, row.version + 1, user.username
    session.flush()
    _invalidate(request)
    effective = merge(default_rules(), _type_layer(session, site), layer).rules
    return json_response({"site_id": site.id, "version": row.version,
                          "effective": _dump(r for r in effective if r.applies_to(site.hazard_type))})  # fmt: skip


@router.delete("/sites/{site_id}/rules")
def delete_site_rules(site_id: int, request: Request, session: WriteSession, user: Warner) -> Response:
    """Drop a site's own rules (the hazard-type rules apply again)."""
    site = get_scoped(session, HazardSite, site_id, user)
    row = _site_override(session, site.id)
    if row is not None:
        session.delete(row)
    _invalidate(request)
    return json_response({"site_id": site.id, "deleted": row is not None})
