"""The regional product workflow on both backends: versions kept, joint sign-off from yellow up."""

from __future__ import annotations

import pytest
import shapely
from sqlalchemy import select

from geowarn.auth.models import User
from geowarn.db import Database
from geowarn.errors import InvalidInput, InvalidTransition, PermissionDenied
from geowarn.warning import products as wf
from geowarn.warning.product_models import ProductArea, ProductVersion, RegionalProduct

T0 = 1_782_864_000_000
HOUR = 3_600_000
OPERATOR = User(username="operator", role="operator", unit_code="350922")
OPERATOR2 = User(username="operator2", role="operator", unit_code="350922")
WEATHER = User(username="weather", role="weather", unit_code="350922")
VIEWER = User(username="viewer", role="viewer", unit_code="350922")


def _content(levels: dict[int, tuple[float, float]]) -> wf.VersionContent:
    areas = {lv: shapely.box(x, 26.0, x + 0.1, 26.1) for lv, (x, _) in levels.items()}
    return wf.VersionContent(T0, T0 + 24 * HOUR, areas=areas, areas_km2={lv: a for lv, (_, a) in levels.items()},
                             summary={"townships": []}, message="测试")  # fmt: skip


def _version(db: Database, product_id: int, number: int) -> ProductVersion:
    with db.read() as s:
        return s.scalars(
            select(ProductVersion).where(ProductVersion.product_id == product_id, ProductVersion.number == number)
        ).one()


def test_orange_needs_both_departments_then_updates_and_lifts(db: Database) -> None:
    with db.write("operator") as s:
        p = wf.create(
            s, OPERATOR, "350922", "示范县地质灾害气象风险预警", _content({2: (118.0, 120.0), 3: (118.2, 80.5)}), T0
        )
        pid, code = p.id, p.code
        v1 = p.versions[0]
        assert v1.level == 3 and len(v1.areas) == 2
        wf.submit(v1, T0 + 1)
        wf.sign(s, v1, OPERATOR, "natural_resources", "approve", "同意", T0 + 2)
        with pytest.raises(InvalidTransition, match="weather"):
            wf.issue(s, v1, OPERATOR, T0 + 3)
        with pytest.raises(PermissionDenied):
            wf.sign(s, v1, OPERATOR2, "weather", "approve", None, T0 + 3)
        wf.sign(s, v1, WEATHER, "weather", "approve", "同意发布", T0 + 4)
        wf.issue(s, v1, OPERATOR, T0 + 5)
        assert (p.status, p.level, p.current_version) == ("issued", 3, 1)
    assert code == "350922-20260701-01"
    with db.write("operator") as s:
        p = s.get(RegionalProduct, pid)
        assert p is not None
        v2 = wf.draft_version(s, p, OPERATOR, "update", _content({4: (118.0, 50.0)}), T0 + HOUR)
        wf.submit(v2, T0 + HOUR)
        wf.sign(s, v2, OPERATOR, "natural_resources", "approve", None, T0 + HOUR)
        wf.sign(s, v2, WEATHER, "weather", "approve", None, T0 + HOUR)
        wf.issue(s, v2, OPERATOR, T0 + HOUR)
        assert p.level == 4
    with db.write("operator") as s:
        p = s.get(RegionalProduct, pid)
        assert p is not None
        v3 = wf.draft_version(s, p, OPERATOR, "lift", _content({4: (118.0, 50.0)}), T0 + 5 * HOUR)
        assert v3.level == 0 and v3.areas == []
        wf.submit(v3, T0 + 5 * HOUR)
        assert wf.required_departments(v3) == ["natural_resources"]
        wf.sign(s, v3, OPERATOR, "natural_resources", "approve", None, T0 + 5 * HOUR)
        wf.issue(s, v3, OPERATOR, T0 + 5 * HOUR)
        assert (p.status, p.level) == ("lifted", 0)
    states = [_version(db, pid, n).state for n in (1, 2, 3)]
    assert states == ["superseded", "superseded", "issued"]
    with db.read() as s:  # every version's areas kept
        assert s.scalar(select(ProductArea.area_km2).where(ProductArea.level == 3)) == 80.5
        assert len(s.scalars(select(ProductArea)).all()) == 3


def test_blue_needs_natural_resources_only_and_a_frozen_version_cannot_change(db: Database) -> None:
    with db.write("operator") as s:
        p = wf.create(s, OPERATOR, "350922", "蓝色预警", _content({1: (118.0, 10.0)}), T0)
        v = p.versions[0]
        wf.submit(v, T0)
        with pytest.raises(InvalidTransition):
            wf.edit_draft(s, v, _content({2: (118.0, 10.0)}))
        wf.sign(s, v, OPERATOR, "natural_resources", "approve", None, T0)
        wf.issue(s, v, OPERATOR, T0)
        assert p.status == "issued"


def test_rejection_and_the_same_person_twice(db: Database) -> None:
    admin = User(username="admin", role="administrator", unit_code="350922")
    with db.write("operator") as s:
        p = wf.create(s, OPERATOR, "350922", "黄色预警", _content({2: (118.0, 10.0)}), T0)
        v = p.versions[0]
        wf.submit(v, T0)
        wf.sign(s, v, admin, "natural_resources", "approve", None, T0)
        with pytest.raises(PermissionDenied):  # administrators never sign for the weather bureau
            wf.sign(s, v, admin, "weather", "approve", None, T0)
        wf.sign(s, v, WEATHER, "weather", "reject", "雨带预报有变", T0)
        assert v.state == "rejected"
        with pytest.raises(InvalidTransition):
            wf.issue(s, v, OPERATOR, T0)
        v2 = wf.draft_version(s, p, OPERATOR, "initial", _content({1: (118.0, 10.0)}), T0 + 1)
        assert v2.number == 2 and v2.state == "draft"


def test_bad_content_is_refused() -> None:
    bad = wf.VersionContent(T0, T0)
    with pytest.raises(InvalidInput):
        wf._check_content(bad)
    with pytest.raises(InvalidInput):
        wf._check_content(wf.VersionContent(T0, T0 + 1, areas={5: shapely.box(0, 0, 1, 1)}))
    with pytest.raises(PermissionDenied):
        wf.sign(None, ProductVersion(state="review"), VIEWER, "natural_resources", "approve", None, T0)  # type: ignore[arg-type]
