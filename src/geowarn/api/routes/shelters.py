"""``/api/shelters``: shelters and assembly points (避险点/避难场所)."""

from __future__ import annotations

from typing import Annotated, Any

import shapely
from fastapi import APIRouter, Query, status
from sqlalchemy import select

from geowarn.api import site_ops
from geowarn.api.deps import Reader, ReadSession, Writer, WriteSession
from geowarn.api.schemas.common import Page
from geowarn.api.schemas.register import ShelterCreate, ShelterPublic, ShelterUpdate
from geowarn.api.scoping import apply_changes, check_ref, check_unit, get_scoped, page, scope_filter
from geowarn.inventory.models import Person, Shelter

router = APIRouter(prefix="/shelters", tags=["shelters"])

REQUIRED = frozenset({"name", "lon", "lat", "capacity", "unit_code"})


@router.get("", response_model=Page[ShelterPublic])
def list_shelters(
    session: ReadSession,
    user: Reader,
    q: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[ShelterPublic]:
    stmt = select(Shelter).where(scope_filter(Shelter, user)).order_by(Shelter.code, Shelter.id)
    if q:
        stmt = stmt.where(Shelter.name.icontains(q, autoescape=True) | Shelter.code.icontains(q, autoescape=True))
    rows, total = page(session, stmt, limit, offset)
    return Page[ShelterPublic](
        items=[ShelterPublic.model_validate(r) for r in rows], total=total, limit=limit, offset=offset
    )


@router.get("/{shelter_id}", response_model=ShelterPublic)
def get_shelter(shelter_id: int, session: ReadSession, user: Reader) -> ShelterPublic:
    return ShelterPublic.model_validate(get_scoped(session, Shelter, shelter_id, user))


def _changes(session: Any, user: Any, body: ShelterCreate | ShelterUpdate, exclude: set[str]) -> dict[str, Any]:
    data = body.model_dump(exclude_unset=True, exclude=exclude)
    if data.get("unit_code") is not None:
        check_unit(session, user, data["unit_code"])
    check_ref(session, Person, data.get("contact_id"), user, "contact_id")
    return data


def _apply(shelter: Shelter, data: dict[str, Any]) -> None:
    apply_changes(shelter, data, REQUIRED)
    if "lon" in data or "lat" in data:
        shelter.geom = shapely.Point(shelter.lon, shelter.lat)


@router.post("", response_model=ShelterPublic, status_code=status.HTTP_201_CREATED)
def create_shelter(body: ShelterCreate, session: WriteSession, user: Writer) -> ShelterPublic:
    data = _changes(session, user, body, {"code"})
    site_ops.check_code_free(session, Shelter, body.code, "避险点")
    shelter = Shelter(code=body.code, capacity=0)
    _apply(shelter, {k: v for k, v in data.items() if v is not None})
    session.add(shelter)
    session.flush()
    return ShelterPublic.model_validate(shelter)


@router.patch("/{shelter_id}", response_model=ShelterPublic)
def update_shelter(shelter_id: int, body: ShelterUpdate, session: WriteSession, user: Writer) -> ShelterPublic:
    shelter = get_scoped(session, Shelter, shelter_id, user, for_update=True)
    _apply(shelter, _changes(session, user, body, set()))
    session.flush()
    return ShelterPublic.model_validate(shelter)
