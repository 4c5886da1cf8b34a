"""``/api/shelters``: shelters and assembly points (避险点/避难场所)."""

from __future__ import annotations

from typing import Annotated, Any

import shapely
from fastapi import APIRouter, Query, Response, status
from sqlalchemy import select

from geowarn.api import site_ops
from geowarn.api.deps import Reader, ReadSession, Writer, WriteSession
from geowarn.api.routes.monitoring_data import json_response
from geowarn.api.rows import page_rows, utc_iso
from geowarn.api.schemas.common import Page
from geowarn.api.schemas.register import ShelterCreate, ShelterPublic, ShelterUpdate
from geowarn.api.scoping import apply_changes, check_ref, check_unit, get_scoped, scope_filter
from geowarn.inventory.models import Person, Shelter

router = APIRouter(prefix="/shelters", tags=["shelters"])

REQUIRED = frozenset({"name", "lon", "lat", "capacity", "unit_code"})


#: ``ShelterPublic``'s fields in its order (the timestamps of ``Timestamps`` first, as pydantic lays
#: out the fields of a model with two bases), read as plain rows by the list: table columns, not ORM
#: attributes (see ``alerts._LIST``), in a statement built once and copied by each ``where``.
_KEYS = ("created_at", "updated_at", "id", "code", "name", "lon", "lat", "capacity", "address", "unit_code",
         "contact_id")  # fmt: skip
_SHELTER = Shelter.__table__.c
_LIST = select(*(_SHELTER[k] for k in _KEYS)).order_by(_SHELTER.code, _SHELTER.id)


@router.get("", response_model=Page[ShelterPublic])
def list_shelters(
    session: ReadSession,
    user: Reader,
    q: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    """Shelters in scope by code, each as ``ShelterPublic`` (built from plain rows: the map reads them all)."""
    stmt = _LIST.where(scope_filter(_SHELTER, user))
    if q:
        stmt = stmt.where(_SHELTER.name.icontains(q, autoescape=True) | _SHELTER.code.icontains(q, autoescape=True))
    rows, total = page_rows(session, stmt, limit, offset)
    items = [dict(zip(_KEYS, (utc_iso(r[0]), utc_iso(r[1]), *r[2:]), strict=True)) for r in rows]
    return json_response({"items": items, "total": total, "limit": limit, "offset": offset})


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
