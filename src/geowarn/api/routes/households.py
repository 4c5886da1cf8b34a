"""``/api/households``: threatened households (受威胁户) with their residents nested.

Names, phones and ID numbers are masked for roles without the personal-data permission.
"""

from __future__ import annotations

from typing import Annotated, Any

import shapely
from fastapi import APIRouter, Query, status
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from geowarn.api import site_ops
from geowarn.api.deps import Reader, ReadSession, Writer, WriteSession, personal
from geowarn.api.schemas.common import Page
from geowarn.api.schemas.register import (
    HouseholdCreate,
    HouseholdPublic,
    HouseholdUpdate,
    ResidentCreate,
    ResidentPublic,
    ResidentUpdate,
)
from geowarn.api.scoping import apply_changes, check_ref, check_unit, get_scoped, not_found, page, scope_filter
from geowarn.auth.models import User
from geowarn.inventory.models import HazardSite, Household, Resident, RiskZone, Shelter

router = APIRouter(prefix="/households", tags=["households"])

REQUIRED = frozenset({"head_name", "size", "lon", "lat", "unit_code"})


@router.get("", response_model=Page[HouseholdPublic])
def list_households(
    session: ReadSession,
    user: Reader,
    site_id: int | None = None,
    risk_zone_id: int | None = None,
    shelter_id: int | None = None,
    q: Annotated[str | None, Query(max_length=100, description="text in code or address")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[HouseholdPublic]:
    stmt = (
        select(Household)
        .where(scope_filter(Household, user))
        .options(selectinload(Household.residents))
        .order_by(Household.code, Household.id)
    )
    for col, value in ((Household.site_id, site_id), (Household.risk_zone_id, risk_zone_id)):
        if value is not None:
            stmt = stmt.where(col == value)
    if shelter_id is not None:
        stmt = stmt.where(Household.shelter_id == shelter_id)
    if q:
        # Not by head name: a search by name would reveal masked names to roles that may not see them.
        stmt = stmt.where(
            Household.code.icontains(q, autoescape=True) | Household.address.icontains(q, autoescape=True)
        )
    rows, total = page(session, stmt, limit, offset)
    items = [HouseholdPublic.of(h, personal(user)) for h in rows]
    return Page[HouseholdPublic](items=items, total=total, limit=limit, offset=offset)


@router.get("/{household_id}", response_model=HouseholdPublic)
def get_household(household_id: int, session: ReadSession, user: Reader) -> HouseholdPublic:
    return HouseholdPublic.of(get_scoped(session, Household, household_id, user), personal(user))


def _changes(
    session: Session, user: User, body: HouseholdCreate | HouseholdUpdate, exclude: set[str]
) -> dict[str, Any]:
    data = body.model_dump(exclude_unset=True, exclude=exclude)
    if data.get("unit_code") is not None:
        check_unit(session, user, data["unit_code"])
    check_ref(session, HazardSite, data.get("site_id"), user, "site_id")
    check_ref(session, RiskZone, data.get("risk_zone_id"), user, "risk_zone_id")
    check_ref(session, Shelter, data.get("shelter_id"), user, "shelter_id")
    return data


def _apply(household: Household, data: dict[str, Any]) -> None:
    apply_changes(household, data, REQUIRED)
    if "lon" in data or "lat" in data:
        household.geom = shapely.Point(household.lon, household.lat)
    if "unit_code" in data:
        for r in household.residents:
            r.unit_code = household.unit_code


def _resident(household: Household, body: ResidentCreate) -> Resident:
    data = body.model_dump(exclude_none=True)
    data.setdefault("vulnerable", False)
    return Resident(household=household, unit_code=household.unit_code, **data)


@router.post("", response_model=HouseholdPublic, status_code=status.HTTP_201_CREATED)
def create_household(body: HouseholdCreate, session: WriteSession, user: Writer) -> HouseholdPublic:
    data = _changes(session, user, body, {"code", "residents"})
    site_ops.check_code_free(session, Household, body.code, "受威胁户")
    household = Household(code=body.code, size=max(1, len(body.residents)))
    _apply(household, {k: v for k, v in data.items() if v is not None})
    session.add(household)
    for r in body.residents:
        session.add(_resident(household, r))
    session.flush()
    return HouseholdPublic.of(household, personal(user))


@router.patch("/{household_id}", response_model=HouseholdPublic)
def update_household(household_id: int, body: HouseholdUpdate, session: WriteSession, user: Writer) -> HouseholdPublic:
    household = get_scoped(session, Household, household_id, user, for_update=True)
    _apply(household, _changes(session, user, body, set()))
    session.flush()
    return HouseholdPublic.of(household, personal(user))


@router.post("/{household_id}/residents", response_model=ResidentPublic, status_code=status.HTTP_201_CREATED)
def add_resident(household_id: int, body: ResidentCreate, session: WriteSession, user: Writer) -> ResidentPublic:
    household = get_scoped(session, Household, household_id, user, for_update=True)
    resident = _resident(household, body)
    session.add(resident)
    session.flush()
    return ResidentPublic.of(resident, personal(user))


@router.patch("/{household_id}/residents/{resident_id}", response_model=ResidentPublic)
def update_resident(
    household_id: int, resident_id: int, body: ResidentUpdate, session: WriteSession, user: Writer
) -> ResidentPublic:
    household = get_scoped(session, Household, household_id, user)
    resident = session.scalar(
        select(Resident).where(
            Resident.id == resident_id, Resident.household_id == household.id, scope_filter(Resident, user)
        )
    )
    if resident is None:
        raise not_found("resident", resident_id)
    apply_changes(resident, body.model_dump(exclude_unset=True), frozenset({"name", "vulnerable"}))
    session.flush()
    return ResidentPublic.of(resident, personal(user))
