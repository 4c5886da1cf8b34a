"""Register hygiene (台账核查) per township: the gaps that make community monitoring fail.

Seed 003 asks that every site have a responsible person and a monitor (逐点落实防灾责任人、监测责任人),
that monitor information be updated and checked before the season (人员信息更新和核对), and that every
threatened household know its shelter. The lists:

* ``site_without_monitor`` / ``site_without_responsible`` — active sites lacking either person;
* ``monitor_idle`` — a site monitor with no patrol (by them, or at their sites) in the last N days;
* ``phone_unverified`` — a monitor or responsible person whose current number was not checked
  (``phone_check``) in the last ``Settings.phone_check_days`` days, or who has no number;
* ``household_without_shelter`` — a threatened household with no shelter.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from geowarn.admin.models import AdminUnit
from geowarn.auth.masking import mask_name, mask_phone
from geowarn.auth.scope import unit_filter
from geowarn.fieldwork.models import Patrol, PhoneCheck
from geowarn.inventory.models import HazardSite, Household, Person

KIND_ZH = {
    "site_without_monitor": "隐患点未落实监测人",
    "site_without_responsible": "隐患点未落实防灾责任人",
    "monitor_idle": "监测人长期未巡查",
    "phone_unverified": "联系电话未核实",
    "household_without_shelter": "受威胁户未落实避险场所",
}
KINDS = tuple(KIND_ZH)


@dataclass(frozen=True, slots=True)
class Finding:
    township: str
    kind: str
    record: str  # hazard_site / person / household
    record_id: int
    label: str  # code and name of the site, name of the person, code of the household
    detail: str


def _utc(t: dt.datetime | None) -> dt.datetime | None:
    if t is None:
        return None
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t


def findings(
    session: Session, scope_code: str, now: dt.datetime, *, idle_days: int, phone_days: int, personal: bool
) -> list[Finding]:
    """Every gap in the register under ``scope_code``, ordered by township and kind."""
    name = (lambda n: n) if personal else (lambda n: mask_name(n) or "")
    phone = (lambda p: p or "") if personal else (lambda p: mask_phone(p) or "")
    out: list[Finding] = []
    sites = session.execute(
        select(
            HazardSite.id,
            HazardSite.code,
            HazardSite.name,
            HazardSite.unit_code,
            HazardSite.monitor_id,
            HazardSite.responsible_person_id,
        )
        .where(unit_filter(HazardSite.unit_code, scope_code), HazardSite.status != "written_off")
        .order_by(HazardSite.code)
    ).all()
    monitors: dict[int, list[int]] = {}
    people_ids: set[int] = set()
    for sid, code, sname, unit, monitor, responsible in sites:
        label = f"{code} {sname}"
        if monitor is None:
            out.append(Finding(unit[:9], "site_without_monitor", "hazard_site", sid, label, "未指定监测人"))
        else:
            monitors.setdefault(monitor, []).append(sid)
        if responsible is None:
            out.append(Finding(unit[:9], "site_without_responsible", "hazard_site", sid, label, "未指定防灾责任人"))
        people_ids |= {p for p in (monitor, responsible) if p is not None}
    people = {p.id: p for p in session.scalars(select(Person).where(Person.id.in_(people_ids)))} if people_ids else {}

    # Monitors: the latest patrol by the person or at any of their sites.
    since = now - dt.timedelta(days=idle_days)
    site_ids = [s for ids in monitors.values() for s in ids]
    by_site = (
        dict(
            session.execute(
                select(Patrol.site_id, func.max(Patrol.patrolled_at))
                .where(Patrol.site_id.in_(site_ids))
                .group_by(Patrol.site_id)
            ).all()
        )
        if site_ids
        else {}
    )
    by_person = (
        dict(
            session.execute(
                select(Patrol.person_id, func.max(Patrol.patrolled_at))
                .where(Patrol.person_id.in_(list(monitors)))
                .group_by(Patrol.person_id)
            ).all()
        )
        if monitors
        else {}
    )
    for pid, sids in sorted(monitors.items()):
        p = people.get(pid)
        if p is None:
            continue
        times = [_utc(by_site.get(s)) for s in sids] + [_utc(by_person.get(pid))]
        last = max((t for t in times if t is not None), default=None)
        if last is None or last < since:
            detail = f"最近巡查：{last.date().isoformat()}" if last else "无巡查记录"
            out.append(
                Finding(
                    p.unit_code[:9], "monitor_idle", "person", pid, name(p.name), f"{detail}（{len(sids)}处隐患点）"
                )
            )

    # Phones: the current number must have a check within phone_days.
    checked = (
        set(
            session.execute(
                select(PhoneCheck.person_id, PhoneCheck.phone).where(
                    PhoneCheck.person_id.in_(list(people)), PhoneCheck.checked_at >= now - dt.timedelta(days=phone_days)
                )
            ).all()
        )
        if people
        else set()
    )
    for pid, p in sorted(people.items()):
        if not p.phone:
            out.append(Finding(p.unit_code[:9], "phone_unverified", "person", pid, name(p.name), "无联系电话"))
        elif (pid, p.phone) not in checked:
            out.append(
                Finding(p.unit_code[:9], "phone_unverified", "person", pid, name(p.name), f"{phone(p.phone)} 未核实")
            )

    for hid, code, unit in session.execute(
        select(Household.id, Household.code, Household.unit_code)
        .where(unit_filter(Household.unit_code, scope_code), Household.shelter_id.is_(None))
        .order_by(Household.code)
    ):
        out.append(Finding(unit[:9], "household_without_shelter", "household", hid, code, "未指定避险场所"))
    order = {k: i for i, k in enumerate(KINDS)}
    return sorted(out, key=lambda f: (f.township, order[f.kind], f.label))


def township_names(session: Session, scope_code: str) -> dict[str, str]:
    return dict(
        session.execute(
            select(AdminUnit.code, AdminUnit.name).where(
                unit_filter(AdminUnit.code, scope_code), AdminUnit.level == "township"
            )
        ).all()
    )


HEADERS = ("乡镇代码", "乡镇（街道）", "问题", "对象类型", "对象编号", "对象", "说明")
RECORD_ZH = {"hazard_site": "隐患点", "person": "人员", "household": "受威胁户"}


def rows(items: Sequence[Finding], names: dict[str, str]) -> list[tuple[str | int, ...]]:
    return [
        (f.township, names.get(f.township, ""), KIND_ZH[f.kind], RECORD_ZH[f.record], f.record_id, f.label, f.detail)
        for f in items
    ]


def to_csv(items: Sequence[Finding], names: dict[str, str]) -> bytes:
    """UTF-8 with a BOM, so Excel opens the Chinese text correctly."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(HEADERS)
    writer.writerows(rows(items, names))
    return buf.getvalue().encode("utf-8-sig")


def to_xlsx(items: Sequence[Finding], names: dict[str, str]) -> bytes:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("台账核查")
    ws.append(list(HEADERS))
    for r in rows(items, names):
        ws.append(list(r))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
