"""``/api/persons``: responsible persons, monitors, duty officials and contacts.

A person is never deleted (sites, shelters and the audit log refer to them); ``active: false``
retires them. Phones and ID numbers are masked for roles without the personal-data permission.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from sqlalchemy import select

from geowarn.api.deps import Reader, ReadSession, Writer, WriteSession, personal
from geowarn.api.schemas.common import Page
from geowarn.api.schemas.people import PersonCreate, PersonPublic, PersonUpdate
from geowarn.api.scoping import apply_changes, check_ref, check_unit, get_scoped, page, scope_filter
from geowarn.inventory.domain import PersonRole
from geowarn.inventory.models import Organisation, Person

router = APIRouter(prefix="/persons", tags=["persons"])

REQUIRED = frozenset({"name", "roles", "unit_code", "active"})


@router.get("", response_model=Page[PersonPublic])
def list_persons(
    session: ReadSession,
    user: Reader,
    role: PersonRole | None = None,
    active: bool | None = None,
    organisation_id: int | None = None,
    q: Annotated[str | None, Query(max_length=100, description="text in name or title")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[PersonPublic]:
    stmt = select(Person).where(scope_filter(Person, user)).order_by(Person.name, Person.id)
    if active is not None:
        stmt = stmt.where(Person.active == active)
    if organisation_id is not None:
        stmt = stmt.where(Person.organisation_id == organisation_id)
    if q:
        stmt = stmt.where(Person.name.icontains(q, autoescape=True) | Person.title.icontains(q, autoescape=True))
    if role is not None:
        # roles is a JSON list: filter in Python on the scoped rows (persons per unit are few).
        rows = [p for p in session.scalars(stmt) if role.value in (p.roles or [])]
        total, rows = len(rows), rows[offset : offset + limit]
    else:
        rows, total = page(session, stmt, limit, offset)
    return Page[PersonPublic](
        items=[PersonPublic.of(p, personal(user)) for p in rows], total=total, limit=limit, offset=offset
    )


@router.get("/{person_id}", response_model=PersonPublic)
def get_person(person_id: int, session: ReadSession, user: Reader) -> PersonPublic:
    return PersonPublic.of(get_scoped(session, Person, person_id, user), personal(user))


def _changes(session: Any, user: Any, body: PersonCreate | PersonUpdate) -> dict[str, Any]:
    data = body.model_dump(exclude_unset=True)
    if data.get("roles") is not None:
        data["roles"] = sorted({str(r) for r in data["roles"]})
    if data.get("unit_code") is not None:
        check_unit(session, user, data["unit_code"])
    check_ref(session, Organisation, data.get("organisation_id"), user, "organisation_id")
    return data


@router.post("", response_model=PersonPublic, status_code=status.HTTP_201_CREATED)
def create_person(body: PersonCreate, session: WriteSession, user: Writer) -> PersonPublic:
    person = Person(roles=[], active=True)
    apply_changes(person, {k: v for k, v in _changes(session, user, body).items() if v is not None}, REQUIRED)
    session.add(person)
    session.flush()
    return PersonPublic.of(person, personal(user))


@router.patch("/{person_id}", response_model=PersonPublic)
def update_person(person_id: int, body: PersonUpdate, session: WriteSession, user: Writer) -> PersonPublic:
    person = get_scoped(session, Person, person_id, user, for_update=True)
    apply_changes(person, _changes(session, user, body), REQUIRED)
    session.flush()
    return PersonPublic.of(person, personal(user))
