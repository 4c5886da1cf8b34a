"""``/api/units``: the administrative-unit tree under the caller's unit (GB/T 2260 + 统计用区划代码)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from geowarn.admin.codes import level_of, parent_of
from geowarn.admin.models import AdminUnit
from geowarn.api.deps import Admin, Reader, ReadSession, WriteSession
from geowarn.api.geojson import to_multipolygon
from geowarn.api.schemas.admin import UnitCreate, UnitNode, UnitPublic, UnitUpdate
from geowarn.api.scoping import check_unit, not_found
from geowarn.auth.models import User
from geowarn.auth.scope import in_scope, unit_filter
from geowarn.errors import Conflict, InvalidInput, PermissionDenied

router = APIRouter(prefix="/units", tags=["units"])


def _scoped_unit(session: Session, code: str, user: User) -> AdminUnit:
    unit = session.scalar(select(AdminUnit).where(AdminUnit.code == code, unit_filter(AdminUnit.code, user.unit_code)))
    if unit is None:
        raise not_found("admin_unit", code)
    return unit


def _public(unit: AdminUnit, with_boundary: bool) -> UnitPublic:
    return UnitPublic(
        code=unit.code,
        name=unit.name,
        level=unit.level,
        parent_code=unit.parent_code,
        boundary=unit.geom if with_boundary else None,
    )


@router.get("", response_model=list[UnitNode])
def unit_tree(session: ReadSession, user: Reader) -> list[UnitNode]:
    """The caller's unit and every unit below it, as a tree (roots first, children by code)."""
    rows = session.execute(
        select(AdminUnit.code, AdminUnit.name, AdminUnit.level, AdminUnit.parent_code)
        .where(unit_filter(AdminUnit.code, user.unit_code))
        .order_by(AdminUnit.code)
    ).all()
    nodes = {r.code: UnitNode(code=r.code, name=r.name, level=r.level, parent_code=r.parent_code) for r in rows}
    roots: list[UnitNode] = []
    for node in nodes.values():
        parent = nodes.get(node.parent_code or "")
        (parent.children if parent is not None else roots).append(node)
    return roots


@router.get("/{code}", response_model=UnitPublic)
def get_unit(
    code: str,
    session: ReadSession,
    user: Reader,
    boundary: Annotated[bool, Query(description="include the boundary as GeoJSON")] = False,
) -> UnitPublic:
    return _public(_scoped_unit(session, code, user), boundary)


@router.post("", response_model=UnitPublic, status_code=status.HTTP_201_CREATED)
def create_unit(body: UnitCreate, session: WriteSession, user: Admin) -> UnitPublic:
    """Add a unit below the caller's unit; its parent must be registered."""
    try:
        level = level_of(body.code)
    except ValueError:
        raise InvalidInput(f"not an administrative code: {body.code}", message_zh="行政区划代码无效") from None
    if body.code == user.unit_code or not in_scope(user.unit_code, body.code):
        raise PermissionDenied(
            f"unit {body.code} is not below your unit {user.unit_code}", message_zh="只能在本单位之下新增行政区"
        )
    if session.get(AdminUnit, body.code) is not None:
        raise Conflict(f"unit {body.code} exists", message_zh=f"行政区 {body.code} 已存在")
    parent = parent_of(body.code)
    if parent is None:
        raise InvalidInput("a province has no parent", message_zh="省级行政区不能在此新增")
    check_unit(session, user, parent)
    unit = AdminUnit(
        code=body.code, name=body.name, level=level.value, parent_code=parent, geom=to_multipolygon(body.boundary)
    )
    session.add(unit)
    session.flush()
    return _public(unit, body.boundary is not None)


@router.patch("/{code}", response_model=UnitPublic)
def update_unit(code: str, body: UnitUpdate, session: WriteSession, user: Admin) -> UnitPublic:
    unit = _scoped_unit(session, code, user)
    data = body.model_dump(exclude_unset=True)
    if "name" in data:
        if data["name"] is None:
            raise InvalidInput("name may not be null", message_zh="名称不能为空")
        unit.name = data["name"]
    if "boundary" in data:
        unit.geom = to_multipolygon(data["boundary"])
    session.flush()
    return _public(unit, "boundary" in data)
