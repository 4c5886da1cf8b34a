"""The site lifecycle: legal and illegal transitions, history rows, write-off evidence, audit."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from geowarn.audit.models import AuditEntry
from geowarn.db import Database
from geowarn.errors import InvalidInput, InvalidTransition
from geowarn.inventory.domain import SiteStatus
from geowarn.inventory.models import HazardSite, SiteStatusChange
from geowarn.inventory.service import (
    record_registration,
    set_site_location,
    township_code_of,
    transition_site_status,
)


def _new_site(db: Database, code: str = "350922100001") -> int:
    with db.write("tester") as s:
        site = HazardSite(code=code, name="溪口村后山滑坡", hazard_type="landslide", unit_code="350922101201")
        set_site_location(site, 118.91, 26.61)
        site.township_code = township_code_of(site.unit_code)
        s.add(site)
        record_registration(s, site, effective_on=dt.date(2015, 3, 1), actor="tester")
        s.flush()
        return site.id


def _move(db: Database, site_id: int, target: SiteStatus, evidence: str | None = None, day: int = 1) -> None:
    with db.write("tester") as s:
        site = s.get(HazardSite, site_id)
        assert site is not None
        transition_site_status(
            s, site, target, reason="测试", effective_on=dt.date(2021, 6, day), evidence=evidence, actor="tester"
        )


def test_helpers() -> None:
    assert township_code_of("350922101201") == "350922101"
    assert township_code_of("350922101") == "350922101"
    assert township_code_of("350922") is None
    assert township_code_of(None) is None
    site = HazardSite()
    set_site_location(site, 118.5, 26.25)
    assert (site.lon, site.lat) == (118.5, 26.25)
    assert (site.geom.x, site.geom.y) == (118.5, 26.25)
    with pytest.raises(InvalidInput) as err:
        set_site_location(site, 218.5, 26.25)
    assert "坐标超出范围" in err.value.message_zh
    with pytest.raises(InvalidInput):
        set_site_location(site, float("nan"), 26.25)


def test_full_lifecycle_keeps_history(db: Database) -> None:
    site_id = _new_site(db)
    _move(db, site_id, SiteStatus.UNDER_TREATMENT, day=1)
    _move(db, site_id, SiteStatus.TREATED, day=2)
    _move(db, site_id, SiteStatus.WRITTEN_OFF, evidence="治理工程竣工验收意见书（2021-06-03）", day=3)
    with db.read() as s:
        site = s.get(HazardSite, site_id)
        assert site is not None  # never deleted
        assert site.status == "written_off"
        assert site.status_since == dt.date(2021, 6, 3)
        steps = s.execute(
            select(SiteStatusChange.from_status, SiteStatusChange.to_status, SiteStatusChange.evidence)
            .where(SiteStatusChange.site_id == site_id)
            .order_by(SiteStatusChange.id)
        ).all()
        assert [tuple(r) for r in steps] == [
            (None, "registered", None),
            ("registered", "under_treatment", None),
            ("under_treatment", "treated", None),
            ("treated", "written_off", "治理工程竣工验收意见书（2021-06-03）"),
        ]
        audited = s.scalars(select(AuditEntry.entity).where(AuditEntry.entity == "site_status_change")).all()
        assert len(audited) == 4
        by = s.scalars(select(SiteStatusChange.by_user).where(SiteStatusChange.site_id == site_id)).all()
        assert set(by) == {"tester"}


def test_relocation_path_and_return_to_register(db: Database) -> None:
    site_id = _new_site(db)
    _move(db, site_id, SiteStatus.RELOCATED)
    _move(db, site_id, SiteStatus.REGISTERED, day=2)  # relocation failed: back in the register
    with db.read() as s:
        site = s.get(HazardSite, site_id)
        assert site is not None and site.status == "registered"


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ([], SiteStatus.TREATED),
        ([], SiteStatus.WRITTEN_OFF),
        ([], SiteStatus.REGISTERED),
        ([SiteStatus.UNDER_TREATMENT], SiteStatus.RELOCATED),
        ([SiteStatus.UNDER_TREATMENT], SiteStatus.WRITTEN_OFF),
    ],
)
def test_illegal_transitions_are_refused(db: Database, path: list[SiteStatus], target: SiteStatus) -> None:
    site_id = _new_site(db)
    for step in path:
        _move(db, site_id, step)
    with pytest.raises(InvalidTransition) as err:
        _move(db, site_id, target, evidence="材料")
    assert err.value.status == 409
    assert "不能由" in err.value.message_zh
    with db.read() as s:
        site = s.get(HazardSite, site_id)
        assert site is not None
        assert site.status == (path[-1].value if path else "registered")
        assert len(s.scalars(select(SiteStatusChange.id).where(SiteStatusChange.site_id == site_id)).all()) == 1 + len(
            path
        )


def test_message_names_both_statuses(db: Database) -> None:
    site_id = _new_site(db)
    with pytest.raises(InvalidTransition) as err:
        _move(db, site_id, SiteStatus.TREATED)
    assert "在册" in err.value.message_zh and "已治理" in err.value.message_zh
    assert err.value.extra["from_status"] == "registered"


def test_written_off_is_final(db: Database) -> None:
    site_id = _new_site(db)
    _move(db, site_id, SiteStatus.RELOCATED)
    _move(db, site_id, SiteStatus.WRITTEN_OFF, evidence="搬迁安置验收表")
    for target in SiteStatus:
        with pytest.raises(InvalidTransition):
            _move(db, site_id, target, evidence="x")


@pytest.mark.parametrize("evidence", [None, "", "   "])
def test_write_off_needs_evidence(db: Database, evidence: str | None) -> None:
    site_id = _new_site(db)
    _move(db, site_id, SiteStatus.RELOCATED)
    with pytest.raises(InvalidInput) as err:
        _move(db, site_id, SiteStatus.WRITTEN_OFF, evidence=evidence)
    assert "核销须提供依据" in err.value.message_zh
    with db.read() as s:
        site = s.get(HazardSite, site_id)
        assert site is not None and site.status == "relocated"


def test_reason_is_required(db: Database) -> None:
    site_id = _new_site(db)
    with db.write("tester") as s:
        site = s.get(HazardSite, site_id)
        assert site is not None
        with pytest.raises(InvalidInput):
            transition_site_status(
                s,
                site,
                SiteStatus.UNDER_TREATMENT,
                reason=" ",
                effective_on=dt.date(2021, 1, 1),
                evidence=None,
                actor="t",
            )
