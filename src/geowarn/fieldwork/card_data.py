"""What goes on the two cards, read from the register in a few queries (a whole township at once).

A site's shelter is the one most of its households go to; its warning signal and route come from
the site's ``extra`` (``warning_signal``, ``evacuation_route``, ``shelter``) when the ledger has them,
else the defaults below (the usual wording of county 明白卡). Personal data is masked for roles
without the personal-data permission, as everywhere in the API.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session, selectinload

from geowarn.admin.models import AdminUnit
from geowarn.auth.masking import mask_name, mask_phone
from geowarn.fieldwork.cards import Contact, HouseholdCard, Member, SiteCard
from geowarn.fieldwork.domain import CHINA, checklist_for
from geowarn.inventory.domain import HAZARD_TYPE_ZH, SCALE_ZH, HazardType, Scale
from geowarn.inventory.models import HazardSite, Household, Person, Shelter

DEFAULT_SIGNAL = "鸣锣、吹哨、高音喇叭喊话，并电话通知"
DEFAULT_ROUTE = "听到信号后沿村道避开沟谷和坡脚，向避险场所撤离"
DEFAULT_MONITORING = "宏观巡查为主；汛期每日巡查，强降雨时加密巡查，发现异常立即报告"


def _zh(mapping: dict[HazardType, str] | dict[Scale, str], value: str | None) -> str:
    for key, text in mapping.items():
        if key.value == value:
            return text
    return value or "—"


class _People:
    def __init__(self, session: Session, ids: set[int], personal: bool) -> None:
        ids.discard(0)
        rows = session.scalars(select(Person).where(Person.id.in_(ids))).all() if ids else []
        self.by_id = {p.id: p for p in rows}
        self.personal = personal

    def contact(self, role: str, pid: int | None) -> Contact:
        p = self.by_id.get(pid or 0)
        if p is None:
            return Contact(role, "（未落实）", "")
        name = p.name if self.personal else (mask_name(p.name) or "")
        phone = (p.phone or "") if self.personal else (mask_phone(p.phone) or "")
        return Contact(role, name, phone)


def _shelter_text(s: Shelter | None) -> str:
    if s is None:
        return "（未落实）"
    return s.name + (f"（{s.address}）" if s.address else "") + (f"，可容纳{s.capacity}人" if s.capacity else "")


class _Issuers:
    """Who hands the card out: the township government (or the county bureau), looked up once per unit."""

    def __init__(self, session: Session) -> None:
        self.session, self.cache = session, dict[str, str]()

    def __call__(self, unit_code: str) -> str:
        code = unit_code[:9] if len(unit_code) >= 9 else unit_code
        if code not in self.cache:
            name = self.session.scalar(select(AdminUnit.name).where(AdminUnit.code == code))
            self.cache[code] = f"{name or code}人民政府" if len(code) == 9 else f"{name or code}自然资源局"
        return self.cache[code]


def site_cards(session: Session, where: ColumnElement[bool], personal: bool) -> list[SiteCard]:
    sites = session.scalars(
        select(HazardSite).where(where, HazardSite.status != "written_off").order_by(HazardSite.code)
    ).all()
    if not sites:
        return []
    ids = [s.id for s in sites]
    shelter_votes: dict[int, Counter[int]] = {}
    for site_id, shelter_id in session.execute(
        select(Household.site_id, Household.shelter_id).where(
            Household.site_id.in_(ids), Household.shelter_id.is_not(None)
        )
    ):
        if site_id is not None and shelter_id is not None:
            shelter_votes.setdefault(site_id, Counter())[shelter_id] += 1
    shelter_ids = {c.most_common(1)[0][0] for c in shelter_votes.values()}
    shelters = {s.id: s for s in session.scalars(select(Shelter).where(Shelter.id.in_(shelter_ids)))}
    people = _People(
        session, {s.monitor_id or 0 for s in sites} | {s.responsible_person_id or 0 for s in sites}, personal
    )
    issuers = _Issuers(session)
    today = dt.datetime.now(CHINA).date().strftime("%Y年%m月%d日")
    out = []
    for s in sites:
        extra = s.extra or {}
        votes = shelter_votes.get(s.id)
        shelter = shelters.get(votes.most_common(1)[0][0]) if votes else None
        monitor = people.contact("监测人", s.monitor_id)
        issuer = issuers(s.unit_code)
        out.append(
            SiteCard(
                code=s.code,
                name=s.name,
                hazard_type=_zh(HAZARD_TYPE_ZH, s.hazard_type),
                location=s.location_text or f"东经{s.lon:.5f}°，北纬{s.lat:.5f}°",
                scale=_zh(SCALE_ZH, s.scale) if s.scale else "—",
                threatened=f"{s.threatened_households}户{s.threatened_people}人，"
                f"财产{s.threatened_property_yuan / 10_000:g}万元",
                signs=tuple(i.zh for i in checklist_for(s.hazard_type)),
                monitoring=str(extra.get("monitoring") or DEFAULT_MONITORING),
                warning_signal=str(extra.get("warning_signal") or DEFAULT_SIGNAL),
                signal_giver=f"{monitor.name}  {monitor.phone}".strip(),
                evacuation_route=str(extra.get("evacuation_route") or DEFAULT_ROUTE),
                shelter=str(extra.get("shelter") or _shelter_text(shelter)),
                contacts=(people.contact("防灾责任人", s.responsible_person_id), monitor),
                issuer=issuer,
                date=today,
            )
        )
    return out


def household_cards(session: Session, where: ColumnElement[bool], personal: bool) -> list[HouseholdCard]:
    households: Sequence[Household] = session.scalars(
        select(Household).where(where).options(selectinload(Household.residents)).order_by(Household.code)
    ).all()
    if not households:
        return []
    site_ids = {h.site_id for h in households if h.site_id}
    sites = {s.id: s for s in session.scalars(select(HazardSite).where(HazardSite.id.in_(site_ids)))}
    shelters = {
        s.id: s
        for s in session.scalars(
            select(Shelter).where(Shelter.id.in_({h.shelter_id for h in households if h.shelter_id}))
        )
    }
    pids = {s.monitor_id or 0 for s in sites.values()} | {s.responsible_person_id or 0 for s in sites.values()}
    pids |= {s.contact_id or 0 for s in shelters.values()}
    people = _People(session, pids, personal)
    issuers = _Issuers(session)
    today = dt.datetime.now(CHINA).date().strftime("%Y年%m月%d日")
    name = (lambda n: n) if personal else (lambda n: mask_name(n) or "")
    out = []
    for h in households:
        site = sites.get(h.site_id or 0)
        shelter = shelters.get(h.shelter_id or 0)
        extra = (site.extra if site else None) or {}
        contacts = [people.contact("监测人", site.monitor_id if site else None)]
        contacts.append(people.contact("防灾责任人", site.responsible_person_id if site else None))
        if shelter is not None and shelter.contact_id:
            contacts.append(people.contact("避险点联系人", shelter.contact_id))
        threat = (
            f"{site.name}（{_zh(HAZARD_TYPE_ZH, site.hazard_type)}，编号{site.code}），本户位于其威胁范围内"
            if site
            else "所在地质灾害风险区"
        )
        out.append(
            HouseholdCard(
                code=h.code,
                head=name(h.head_name),
                size=h.size,
                address=h.address or "—",
                members=tuple(Member(name(r.name), r.relation or "", r.vulnerable) for r in h.residents),
                threat=threat,
                warning_signal=str(extra.get("warning_signal") or DEFAULT_SIGNAL),
                evacuation_route=str(extra.get("evacuation_route") or DEFAULT_ROUTE),
                shelter=_shelter_text(shelter),
                contacts=tuple(contacts),
                issuer=issuers(h.unit_code),
                date=today,
            )
        )
    return out
