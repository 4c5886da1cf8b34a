"""Scoped access to records: every lookup and list is confined to the caller's unit and below.

* A record outside the caller's scope is reported as not found (404), so its existence is not
  leaked; so is a missing one.
* A write that would place a record outside the scope is refused (403).
* A reference to another record (a household's site, a site's monitor…) must name a record in
  scope; otherwise the body is invalid (422), the same answer as for an id that does not exist.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session

from geowarn.admin.codes import is_valid_code
from geowarn.admin.models import AdminUnit
from geowarn.auth.models import User
from geowarn.auth.scope import in_scope, unit_filter
from geowarn.errors import InvalidInput, NotFound, PermissionDenied

T = TypeVar("T")

#: Chinese names of the record kinds, for messages.
KIND_ZH: dict[str, str] = {
    "hazard_site": "隐患点",
    "risk_zone": "风险区",
    "shelter": "避险点",
    "household": "受威胁户",
    "resident": "居民",
    "person": "人员",
    "organisation": "单位",
    "app_user": "用户",
    "api_token": "令牌",
    "admin_unit": "行政区",
    "import_batch": "导入批次",
    "alert": "预警",
    "alert_silence": "静默时段",
    "regional_product": "预警产品",
    "product_version": "产品版本",
}


def scope_filter(model: Any, user: User) -> ColumnElement[bool]:
    """SQL condition: the record's ``unit_code`` lies in the user's unit or below."""
    return unit_filter(model.unit_code, user.unit_code)


def not_found(kind: str, ident: object) -> NotFound:
    zh = KIND_ZH.get(kind, kind)
    return NotFound(f"{kind} {ident} not found", message_zh=f"{zh}“{ident}”不存在")


def get_scoped(session: Session, model: type[T], ident: int, user: User, **options: Any) -> T:
    """The record ``ident`` of ``model`` if it lies in the caller's scope, else ``NotFound``."""
    m: Any = model
    stmt = select(m).where(m.id == ident, scope_filter(m, user))
    if options.get("for_update") and session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    obj = session.scalar(stmt)
    if obj is None:
        raise not_found(m.__tablename__, ident)
    return obj


def check_unit(session: Session, user: User, unit_code: str) -> None:
    """A unit code a record may be placed in: well formed (422), in scope (403), registered (422)."""
    if not is_valid_code(unit_code):
        raise InvalidInput(f"not an administrative code: {unit_code!r}", message_zh=f"行政区划代码无效：{unit_code}")
    if not in_scope(user.unit_code, unit_code):
        raise PermissionDenied(
            f"unit {unit_code} is outside your unit {user.unit_code}",
            message_zh=f"行政区 {unit_code} 不在您的管辖范围内",
        )
    if session.get(AdminUnit, unit_code) is None:
        raise InvalidInput(f"unit {unit_code} is not registered", message_zh=f"行政区 {unit_code} 尚未登记")


def check_ref(session: Session, model: Any, ident: int | None, user: User, field: str) -> None:
    """A referenced record must exist in scope (422 otherwise; no difference between the two)."""
    if ident is None:
        return
    found = session.scalar(select(model.id).where(model.id == ident, scope_filter(model, user)))
    if found is None:
        zh = KIND_ZH.get(model.__tablename__, model.__tablename__)
        raise InvalidInput(
            f"{field}: {model.__tablename__} {ident} not found", message_zh=f"{field}：{zh}“{ident}”不存在"
        )


def page(session: Session, stmt: Select[Any], limit: int, offset: int) -> tuple[list[Any], int]:
    """One page of ``stmt`` (ordered by the caller) and the total count of matches."""
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    items = list(session.scalars(stmt.limit(limit).offset(offset)))
    return items, int(total)


def apply_changes(obj: Any, changes: dict[str, Any], required: frozenset[str] = frozenset()) -> None:
    """Set each changed attribute; a required field may not be set to null."""
    for key, value in changes.items():
        if value is None and key in required:
            raise InvalidInput(f"{key} may not be null", message_zh=f"{key} 不能为空")
        setattr(obj, key, value)
