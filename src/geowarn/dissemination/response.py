"""Response actions by level, transfer records, shelter occupancy, return, and the per-township timeline.

DOMAIN.md (level responses, seed 003 "县地质灾害防治工作方案"):

* yellow — responsible persons organise monitors to patrol and watch: a **patrol task** per township
  listing the sites in the warning;
* orange — threatened people at hazard sites are transferred to shelters; red — people at sites,
  steep cut slopes and susceptible areas: a **transfer order** per township listing the households,
  their people and shelters (orange and red also densify patrols, so patrol tasks are kept);
* people transferred do not return before the danger is lifted: a lift turns transfer orders into
  ``may_return`` and only then may a return be recorded.

The timeline of a warning per township: issued → first message delivered (or handed to the
gateway) → all responsible persons confirmed → transfer complete.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, func, insert, select
from sqlalchemy.orm import Session

from geowarn.dissemination.models import IssueRecipient, OutboxMessage, ResponseTask, TransferRecord, WarningIssue
from geowarn.dissemination.resolve import Resolution
from geowarn.errors import InvalidInput, InvalidTransition
from geowarn.warning.levels import Level


def on_issue(session: Session, issue: WarningIssue, res: Resolution) -> int:
    """Create or update the tasks the issue's level requires, or release them after a lift; returns tasks created."""
    return on_issues(session, [(issue, res)])


def on_issues(session: Session, items: Sequence[tuple[WarningIssue, Resolution]]) -> int:
    """:func:`on_issue` for the issues of distinct subjects at once (one read of their tasks, one insert)."""
    subjects = [issue.subject for issue, _ in items]
    if len(set(subjects)) != len(subjects):
        raise ValueError("one issue per subject in a batch")
    tasks: dict[str, list[ResponseTask]] = defaultdict(list)
    asked = [i.subject for i, _ in items if i.kind == "lift" or i.level == Level.NONE or i.level >= Level.YELLOW]
    for k in range(0, len(asked), 2000):  # blue issues have no tasks
        stmt = select(ResponseTask).where(
            ResponseTask.subject.in_(asked[k : k + 2000]), ResponseTask.status.in_(("open", "done"))
        )
        for task in session.scalars(stmt.order_by(ResponseTask.id)):
            tasks[task.subject].append(task)
    new_rows: list[dict[str, Any]] = []  # bulk-inserted: a province-wide warning makes a task per township
    for issue, res in items:
        new_rows += _tasks_for(issue, res, tasks.get(issue.subject, []))
    if new_rows:
        session.execute(insert(cast(Table, ResponseTask.__table__)), new_rows)
    session.flush()
    return len(new_rows)


def _tasks_for(issue: WarningIssue, res: Resolution, open_tasks: list[ResponseTask]) -> list[dict[str, Any]]:
    """Update the subject's open tasks for ``issue``; returns the rows of the tasks to create."""
    level = Level(issue.level)
    if issue.kind == "lift" or level is Level.NONE:
        for old in open_tasks:
            if old.kind == "transfer":
                old.status, old.may_return_ms = "may_return", issue.issued_ms
            else:
                old.status, old.completed_ms = "closed", old.completed_ms or issue.issued_ms
        return []
    new_rows: list[dict[str, Any]] = []
    base = {"issue_id": issue.id, "subject": issue.subject, "status": "open", "created_ms": issue.issued_ms}
    if level >= Level.YELLOW:
        by_town: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for s in res.sites:
            if s.level >= Level.YELLOW:
                by_town[s.township].append({"site_id": s.id, "code": s.code, "name": s.name, "level": int(s.level)})
        existing = {t.unit_code: t for t in open_tasks if t.kind == "patrol"}
        for town, sites in sorted(by_town.items()):
            task: ResponseTask | None = existing.get(town)
            if task is None:
                new_rows.append({**base, "kind": "patrol", "unit_code": town, "plan": {"sites": sites},
                                 "households": 0, "people": 0})  # fmt: skip
            else:
                task.issue_id, task.plan = issue.id, {"sites": sites}
    if level >= Level.ORANGE and res.households:
        by_town_h: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for h in res.households:
            shelter = res.shelters.get(h["shelter_id"]) if h["shelter_id"] else None
            by_town_h[h["unit_code"][:9]].append({**h, "shelter": shelter[0] if shelter else None})
        existing = {t.unit_code: t for t in open_tasks if t.kind == "transfer"}
        for town, households in sorted(by_town_h.items()):
            task = existing.get(town)
            if task is not None:
                known = {h["household_id"] for h in task.plan.get("households", [])}
                households = [
                    *task.plan.get("households", []),
                    *[h for h in households if h["household_id"] not in known],
                ]
            shelters = sorted({(h["shelter_id"], h["shelter"]) for h in households if h["shelter_id"]})
            plan = {"households": households, "shelters": [{"id": i, "name": n} for i, n in shelters]}
            people = sum(int(h["people"] or 0) for h in households)
            if task is None:
                new_rows.append({**base, "kind": "transfer", "unit_code": town, "plan": plan,
                                 "households": len(households), "people": people})  # fmt: skip
            else:
                task.issue_id, task.status, task.plan = issue.id, "open", plan
                task.households, task.people = len(households), people
    return new_rows


def record_transfer(
    session: Session,
    task: ResponseTask,
    *,
    household_id: int | None,
    shelter_id: int | None,
    people: int,
    moved_ms: int,
    by: str | None,
) -> TransferRecord:
    """People of a household (or a group, without a household) moved to a shelter."""
    if task.kind != "transfer":
        raise InvalidInput("not a transfer order", message_zh="该任务不是转移指令")
    if task.status not in ("open", "done"):
        raise InvalidTransition(f"task is {task.status}", message_zh="转移指令已结束，不能再登记转移")
    if people < 1:
        raise InvalidInput("people must be at least 1", message_zh="转移人数至少为1")
    planned = {h["household_id"]: h for h in task.plan.get("households", [])}
    if household_id is not None and household_id not in planned:
        raise InvalidInput(f"household {household_id} is not in this order", message_zh="该户不在本转移指令中")
    if shelter_id is None and household_id is not None:
        shelter_id = planned[household_id].get("shelter_id")
    record = TransferRecord(
        task_id=task.id,
        household_id=household_id,
        shelter_id=shelter_id,
        people=people,
        moved_ms=moved_ms,
        recorded_by=by,
        unit_code=task.unit_code,
    )
    session.add(record)
    session.flush()
    moved = set(session.scalars(select(TransferRecord.household_id).where(TransferRecord.task_id == task.id)))
    if task.status == "open" and planned and set(planned) <= moved:
        task.status, task.completed_ms = "done", moved_ms
    return record


def record_return(session: Session, task: ResponseTask, now_ms: int) -> int:
    """After the lift: everyone of the order has gone home; returns the people released."""
    if task.status != "may_return":
        raise InvalidTransition(f"task is {task.status}", message_zh="预警尚未解除，已转移群众不得返回")
    released = 0
    for r in session.scalars(
        select(TransferRecord).where(TransferRecord.task_id == task.id, TransferRecord.returned_ms.is_(None))
    ):
        r.returned_ms = now_ms
        released += r.people
    task.status = "closed"
    return released


def occupancy(session: Session, shelter_ids: list[int] | None = None) -> dict[int, int]:
    """People in each shelter now (transferred and not yet returned)."""
    stmt = (
        select(TransferRecord.shelter_id, func.sum(TransferRecord.people))
        .where(TransferRecord.returned_ms.is_(None), TransferRecord.shelter_id.is_not(None))
        .group_by(TransferRecord.shelter_id)
    )
    if shelter_ids is not None:
        stmt = stmt.where(TransferRecord.shelter_id.in_(shelter_ids))
    return {int(k or 0): int(v or 0) for k, v in session.execute(stmt)}


def timeline(session: Session, subject: str) -> dict[str, Any]:
    """issued → first delivered → all responsible confirmed → transfer complete, per township."""
    issues = list(
        session.scalars(select(WarningIssue).where(WarningIssue.subject == subject).order_by(WarningIssue.version))
    )
    if not issues:
        return {"subject": subject, "townships": []}
    ids = [i.id for i in issues]
    first_issue = next((i for i in issues if i.kind != "lift"), issues[0])
    first_sent: dict[str, int] = {}
    for unit, t in session.execute(
        select(OutboxMessage.unit_code, func.min(func.coalesce(OutboxMessage.delivered_ms, OutboxMessage.sent_ms)))
        .where(OutboxMessage.issue_id.in_(ids), OutboxMessage.sent_ms.is_not(None))
        .group_by(OutboxMessage.unit_code)
    ):
        town = unit[:9]
        first_sent[town] = min(first_sent.get(town, t), t)
    confirm: dict[str, list[int | None]] = defaultdict(list)
    current = issues[-1]
    for unit, acked in session.execute(
        select(IssueRecipient.unit_code, IssueRecipient.acked_ms).where(
            IssueRecipient.issue_id == current.id, IssueRecipient.audience == "responsible"
        )
    ):
        confirm[unit[:9]].append(acked)
    tasks: dict[str, list[ResponseTask]] = defaultdict(list)
    for task in session.scalars(
        select(ResponseTask).where(ResponseTask.subject == subject, ResponseTask.kind == "transfer")
    ):
        tasks[task.unit_code].append(task)
    towns = sorted(set(first_sent) | set(confirm) | set(tasks) | set(first_issue.context.get("townships", [])))
    out = []
    for town in towns:
        acks = confirm.get(town, [])
        all_acked = max((a for a in acks if a), default=None) if acks and all(acks) else None
        ts = tasks.get(town, [])
        done = max((t.completed_ms or 0 for t in ts), default=None) if ts and all(t.completed_ms for t in ts) else None
        out.append(
            {
                "township": town,
                "issued_ms": first_issue.issued_ms,
                "first_delivered_ms": first_sent.get(town),
                "responsible": len(acks),
                "responsible_confirmed": sum(1 for a in acks if a),
                "all_responsible_confirmed_ms": all_acked,
                "transfer_orders": len(ts),
                "transfer_complete_ms": done,
            }
        )
    return {
        "subject": subject,
        "current_version": current.version,
        "level": current.level,
        "lifted_ms": current.issued_ms if current.kind == "lift" else None,
        "townships": out,
    }
