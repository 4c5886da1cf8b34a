"""``/api/organisations``: departments and government bodies of the units (县自然资源局, 某镇人民政府…)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from sqlalchemy import select

from geowarn.api.deps import Reader, ReadSession, Writer, WriteSession
from geowarn.api.schemas.common import Page
from geowarn.api.schemas.people import OrganisationCreate, OrganisationPublic, OrganisationUpdate
from geowarn.api.scoping import apply_changes, check_unit, get_scoped, page, scope_filter
from geowarn.inventory.domain import Department
from geowarn.inventory.models import Organisation

router = APIRouter(prefix="/organisations", tags=["organisations"])

REQUIRED = frozenset({"name", "department", "unit_code"})


@router.get("", response_model=Page[OrganisationPublic])
def list_organisations(
    session: ReadSession,
    user: Reader,
    department: Department | None = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[OrganisationPublic]:
    stmt = select(Organisation).where(scope_filter(Organisation, user)).order_by(Organisation.name, Organisation.id)
    if department is not None:
        stmt = stmt.where(Organisation.department == department.value)
    if q:
        stmt = stmt.where(Organisation.name.icontains(q, autoescape=True))
    rows, total = page(session, stmt, limit, offset)
    return Page[OrganisationPublic](
        items=[OrganisationPublic.model_validate(o) for o in rows], total=total, limit=limit, offset=offset
    )


@router.get("/{organisation_id}", response_model=OrganisationPublic)
def get_organisation(organisation_id: int, session: ReadSession, user: Reader) -> OrganisationPublic:
    return OrganisationPublic.model_validate(get_scoped(session, Organisation, organisation_id, user))


def _changes(session: Any, user: Any, body: OrganisationCreate | OrganisationUpdate) -> dict[str, Any]:
    data = body.model_dump(exclude_unset=True)
    if data.get("department") is not None:
        data["department"] = str(data["department"])
    if data.get("unit_code") is not None:
        check_unit(session, user, data["unit_code"])
    return data


@router.post("", response_model=OrganisationPublic, status_code=status.HTTP_201_CREATED)
def create_organisation(body: OrganisationCreate, session: WriteSession, user: Writer) -> OrganisationPublic:
    org = Organisation()
    apply_changes(org, _changes(session, user, body), REQUIRED)
    session.add(org)
    session.flush()
    return OrganisationPublic.model_validate(org)


@router.patch("/{organisation_id}", response_model=OrganisationPublic)
def update_organisation(
    organisation_id: int, body: OrganisationUpdate, session: WriteSession, user: Writer
) -> OrganisationPublic:
    org = get_scoped(session, Organisation, organisation_id, user, for_update=True)
    apply_changes(org, _changes(session, user, body), REQUIRED)
    session.flush()
    return OrganisationPublic.model_validate(org)
