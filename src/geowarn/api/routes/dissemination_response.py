"""``/api/response``: patrol tasks and transfer orders created by warnings, transfer records, shelter
occupancy, and the return home after a lift (rules in :mod:`geowarn.dissemination.response`).

Scoped like the register: a task of another township answers 404. Household heads' names are masked
for roles without the personal-data permission.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from geowarn.api.deps import Reader, ReadSession, WriteSession, personal, require
from geowarn.api.routes.monitoring_common import when_ms
from geowarn.api.routes.monitoring_data import json_response
from geowarn.api.schemas.monitoring import iso_ms
from geowarn.api.scoping import check_ref, get_scoped, scope_filter
from geowarn.auth.masking import mask_name
from geowarn.auth.models import User
from geowarn.auth.roles import Permission
from geowarn.dissemination import response
from geowarn.dissemination.models import ResponseTask, TransferRecord
from geowarn.inventory.models import Shelter
from geowarn.warning.models import now_ms

router = APIRouter(prefix="/response", tags=["warning: response"])
Reporter = Annotated[User, require(Permission.REPORT)]


def task_json(t: ResponseTask, show: bool, *, plan: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": t.id,
        "issue_id": t.issue_id,
        "subject": t.subject,
        "kind": t.kind,
        "unit_code": t.unit_code,
        "status": t.status,
        "households": t.households,
        "people": t.people,
        "created": iso_ms(t.created_ms),
        "completed": iso_ms(t.completed_ms),
        "may_return": iso_ms(t.may_return_ms),
    }
    if plan:
        p = dict(t.plan)
        if "households" in p and not show:
            p["households"] = [{**h, "head": mask_name(h.get("head"))} for h in p["households"]]
        out["plan"] = p
    return out


@router.get("/tasks")
def list_tasks(
    session: ReadSession,
    user: Reader,
    kind: Literal["patrol", "transfer"] | None = None,
    status: Annotated[str | None, Query(max_length=12)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> Response:
    """Patrol tasks and transfer orders in scope, newest first."""
    stmt = select(ResponseTask).where(scope_filter(ResponseTask, user))
    if kind:
        stmt = stmt.where(ResponseTask.kind == kind)
    if status:
        stmt = stmt.where(ResponseTask.status == status)
    rows = session.scalars(stmt.order_by(ResponseTask.created_ms.desc(), ResponseTask.id.desc()).limit(limit))
    show = personal(user)
    return json_response({"items": [task_json(t, show) for t in rows]})


@router.get("/tasks/{task_id}")
def get_task(task_id: int, session: ReadSession, user: Reader) -> Response:
    """A task with its plan (sites to patrol, or households, people and shelters to move) and records."""
    t = get_scoped(session, ResponseTask, task_id, user)
    records = [
        {
            "id": r.id,
            "household_id": r.household_id,
            "shelter_id": r.shelter_id,
            "people": r.people,
            "moved": iso_ms(r.moved_ms),
            "recorded_by": r.recorded_by,
            "returned": iso_ms(r.returned_ms),
        }
        for r in session.scalars(
            select(TransferRecord).where(TransferRecord.task_id == t.id).order_by(TransferRecord.id)
        )
    ]
    return json_response({**task_json(t, personal(user), plan=True), "transfers": records})


class TransferIn(BaseModel):
    household_id: int | None = None
    shelter_id: int | None = None
    people: int = Field(ge=1, le=100_000)
    moved_at: str | None = Field(None, description="ISO 8601 or epoch ms; default now")


@router.post("/tasks/{task_id}/transfers", status_code=201)
def add_transfer(task_id: int, body: TransferIn, session: WriteSession, user: Reporter) -> Response:
    """Record people moved to a shelter under a transfer order."""
    t = get_scoped(session, ResponseTask, task_id, user, for_update=True)
    check_ref(session, Shelter, body.shelter_id, user, "shelter_id")
    moved = when_ms(body.moved_at, "moved_at") if body.moved_at else now_ms()
    r = response.record_transfer(
        session,
        t,
        household_id=body.household_id,
        shelter_id=body.shelter_id,
        people=body.people,
        moved_ms=moved,
        by=user.username,
    )
    return json_response(
        {"id": r.id, "task_status": t.status, "people": r.people, "shelter_id": r.shelter_id}, status_code=201
    )


@router.post("/tasks/{task_id}/return")
def return_home(task_id: int, session: WriteSession, user: Reporter) -> Response:
    """After the lift: the people of the order go home (refused while the warning is in force)."""
    t = get_scoped(session, ResponseTask, task_id, user, for_update=True)
    released = response.record_return(session, t, now_ms())
    return json_response({"id": t.id, "status": t.status, "people_returned": released})


@router.get("/shelters")
def shelters(session: ReadSession, user: Reader) -> Response:
    """Shelters in scope with capacity and the people in them now."""
    rows = list(session.scalars(select(Shelter).where(scope_filter(Shelter, user)).order_by(Shelter.code)))
    occ = response.occupancy(session, [s.id for s in rows])
    return json_response(
        {
            "items": [
                {
                    "id": s.id,
                    "code": s.code,
                    "name": s.name,
                    "capacity": s.capacity,
                    "occupancy": occ.get(s.id, 0),
                    "unit_code": s.unit_code,
                }
                for s in rows
            ]
        }
    )
