"""The register summary stays equal to a fresh GROUP BY over hazard_site after every kind of write.

Each check compares the maintained ``register_summary`` rows with ``summary_select()`` run now,
and ``compute_stats`` read from the summary with ``compute_stats`` read from ``hazard_site``, for
the province, the county, each township and a village.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import load_only
from typer.testing import CliRunner

from geowarn.admin.models import AdminUnit
from geowarn.db import Database
from geowarn.db.migrate import downgrade, upgrade
from geowarn.inventory.domain import SiteStatus
from geowarn.inventory.models import HazardSite, SiteStatusChange
from geowarn.inventory.service import set_site_location, transition_site_status
from geowarn.inventory.stats import compute_stats
from geowarn.inventory.summary import (
    SITE_COLUMNS,
    SUMMARY_KEYS,
    RegisterSummary,
    add_sites,
    lock_counties,
    rebuild_summary,
    refresh_townships,
    summary_select,
)
from geowarn.io.importer import import_file

COUNTY = "350922"
EAST, WEST, NORTH = "350922100", "350922101", "350922102"
TOWNS = (EAST, WEST, NORTH)
SCOPES = ("350000", "350900", COUNTY, *TOWNS, EAST + "201", "350921")


def _units(db: Database) -> None:
    with db.write("test") as s:
        s.add(AdminUnit(code="350000", name="福建省", level="province"))
        s.add(AdminUnit(code="350900", name="宁德市", level="city", parent_code="350000"))
        s.add(AdminUnit(code=COUNTY, name="古田县", level="county", parent_code="350900"))
        for code, name in zip(TOWNS, ("城东街道", "城西街道", "北山镇"), strict=True):
            s.add(AdminUnit(code=code, name=name, level="township", parent_code=COUNTY))
        s.add(AdminUnit(code=EAST + "201", name="溪山村", level="village", parent_code=EAST))


def _site(code: str, unit: str, **kw: Any) -> HazardSite:
    site = HazardSite(
        code=code,
        name=kw.pop("name", code),
        hazard_type=kw.pop("hazard_type", "landslide"),
        unit_code=unit,
        township_code=kw.pop("township_code", unit[:9] if len(unit) >= 9 else None),
        threatened_households=kw.pop("households", 2),
        threatened_people=kw.pop("people", 7),
        threatened_property_yuan=kw.pop("property_yuan", 120_000),
        **kw,
    )
    set_site_location(site, 118.7, 26.5)
    return site


def _rows(db: Database, stmt: Any) -> Counter[tuple[Any, ...]]:
    with db.read() as s:
        return Counter(tuple(int(v) if i >= 6 else v for i, v in enumerate(r)) for r in s.execute(stmt))


def assert_summary_exact(db: Database) -> None:
    """The summary equals a fresh GROUP BY, and both statistics paths agree on every scope."""
    kept = _rows(db, select(*(getattr(RegisterSummary, c) for c in SUMMARY_KEYS)))
    fresh = _rows(db, summary_select())
    assert kept == fresh
    with db.read() as s:
        for scope in SCOPES:
            assert compute_stats(s, scope) == compute_stats(s, scope, use_summary=False), scope


def _by_town(db: Database) -> dict[str, int]:
    with db.read() as s:
        return {str(t): int(n) for t, n in s.execute(select(RegisterSummary.township_code, RegisterSummary.sites))}


def test_orm_create_update_delete(db: Database) -> None:
    _units(db)
    with db.write("test") as s:
        s.add(_site("A", EAST + "201"))
        s.add(_site("B", EAST, scale="small", monitoring_mode="both"))
        s.add(_site("C", WEST, hazard_type="steep_cut_slope", status="relocated"))
        s.add(_site("D", WEST + "203", township_code=None, scale=None))  # township from the unit code
        s.add(_site("E", COUNTY))  # recorded at county level: its own "township" is the county
        s.add(_site("F", "350921100201"))  # another county
    assert_summary_exact(db)
    with db.read() as s:
        county = compute_stats(s, COUNTY)
    assert county["combined"]["sites"] == 5 and county["steep_slopes"]["sites"] == 1  # relocated: still in the register
    assert [t["township_code"] for t in county["combined"]["by_township"]] == [COUNTY, EAST, WEST]

    # a site moves township and changes type, status, scale, mode and its figures, in one flush
    with db.write("test") as s:
        b = s.scalars(select(HazardSite).where(HazardSite.code == "B")).one()
        b.unit_code, b.township_code = NORTH + "202", NORTH
        b.hazard_type, b.status, b.scale, b.monitoring_mode = "rockfall", "treated", "large", "instrumented"
        b.threatened_people, b.threatened_property_yuan = 99, 10**12
    assert_summary_exact(db)
    assert _by_town(db).get(NORTH) == 1

    # several flushes in one transaction, a change that does not matter, and a deletion
    with db.write("test") as s:
        a = s.scalars(select(HazardSite).where(HazardSite.code == "A")).one()
        a.name = "renamed"
        s.flush()
        a.unit_code = WEST + "201"
        a.township_code = WEST
        s.flush()
        s.delete(s.scalars(select(HazardSite).where(HazardSite.code == "C")).one())
    assert_summary_exact(db)
    assert EAST not in _by_town(db)  # its last site left: its rows are gone


def test_delete_of_a_partly_loaded_site(db: Database) -> None:
    """A site deleted without its unit code loaded still leaves its township's figures."""
    _units(db)
    with db.write("test") as s:
        s.add(_site("A", EAST + "201"))
        s.add(_site("B", WEST))
    with db.write("test") as s:
        s.delete(s.scalars(select(HazardSite).where(HazardSite.code == "A").options(load_only(HazardSite.id))).one())
    assert_summary_exact(db)
    assert set(_by_town(db)) == {WEST}


def test_township_code_disagreeing_with_unit(db: Database) -> None:
    """Scoping follows unit_code, the breakdown follows township_code: both paths still agree."""
    _units(db)
    with db.write("test") as s:
        s.add(_site("X", EAST + "201", township_code=WEST))
        s.add(_site("Y", WEST + "201"))
    assert_summary_exact(db)
    with db.read() as s:
        east = compute_stats(s, EAST)
    assert east["combined"]["sites"] == 1 and east["combined"]["by_township"][0]["township_code"] == WEST


def test_status_transition(db: Database) -> None:
    _units(db)
    with db.write("test") as s:
        s.add(_site("A", EAST + "201"))
        s.add(_site("B", EAST + "201", people=3))
    with db.write("officer") as s:
        a = s.scalars(select(HazardSite).where(HazardSite.code == "A")).one()
        transition_site_status(
            s, a, SiteStatus.UNDER_TREATMENT, reason="治理工程开工", effective_on=dt.date(2026, 11, 1), evidence=None,
            actor="officer",
        )  # fmt: skip
    assert_summary_exact(db)
    with db.read() as s:
        st_ = compute_stats(s, EAST)
        assert s.scalar(select(SiteStatusChange.to_status)) == "under_treatment"
    assert [(g["status"], g["sites"]) for g in st_["combined"]["by_status"]] == [
        ("registered", 1),
        ("under_treatment", 1),
    ]


def _csv(path: Path, rows: list[str]) -> Path:
    head = "统一编号,名称,灾害类型,经度,纬度,乡镇,威胁户数,威胁人数,威胁财产（万元）,规模等级,监测方式"
    path.write_text("\n".join([head, *rows]) + "\n", encoding="utf-8-sig")
    return path


def test_import_create_and_update(db: Database, tmp_path: Path) -> None:
    _units(db)
    with db.write("test") as s:  # an ORM site the import leaves alone
        s.add(_site("K", NORTH))
    first = [
        "S1,一号,滑坡,118.75,26.55,城东街道,3,10,12.3,小型,群测群防",
        "S2,二号,崩塌,118.65,26.55,城西街道,1,4,0.5,中型,专业监测",
        "S3,三号,高陡边坡,118.65,26.56,城西街道,2,6,1,,群专结合",
    ]
    res = import_file(db, _csv(tmp_path / "a.csv", first), scope_unit=COUNTY)
    assert res.created == 3
    assert_summary_exact(db)
    # S1 moves to the west and becomes a rockfall; S2's figures change; S4 is new
    second = [
        "S1,一号,崩塌,118.65,26.55,城西街道,3,10,12.3,小型,群测群防",
        "S2,二号,崩塌,118.65,26.55,城西街道,5,40,200,中型,专业监测",
        "S3,三号,高陡边坡,118.65,26.56,城西街道,2,6,1,,群专结合",
        "S4,四号,泥石流,118.75,26.56,城东街道,0,0,0,大型,群测群防",
    ]
    res = import_file(db, _csv(tmp_path / "b.csv", second), scope_unit=COUNTY)
    assert (res.created, res.updated, res.unchanged) == (1, 2, 1)
    assert_summary_exact(db)
    with db.read() as s:
        west = compute_stats(s, WEST)
    assert west["hazard_sites"]["sites"] == 2 and west["hazard_sites"]["people"] == 50
    # new sites only: added to their cells, here onto the ORM site K's cell and a new one beside it
    third = ["S5,五号,滑坡,118.75,26.57,北山镇,1,2,3,,群测群防", "S6,六号,滑坡,118.75,26.57,北山镇,1,2,3,大型,群测群防"]
    res = import_file(db, _csv(tmp_path / "c.csv", third), scope_unit=COUNTY)
    assert (res.created, res.updated) == (2, 0)
    assert_summary_exact(db)
    with db.read() as s:
        assert compute_stats(s, NORTH)["hazard_sites"]["sites"] == 3


def test_rebuild_repairs_plain_sql_writes(db: Database) -> None:
    _units(db)
    with db.write("test") as s:
        s.add(_site("A", EAST + "201"))
        s.add(_site("B", WEST))
    with db.raw_writer() as conn:  # behind the application's back
        conn.execute(text("UPDATE hazard_site SET hazard_type = 'rockfall', threatened_people = 50"))
        conn.execute(delete(RegisterSummary).where(RegisterSummary.scope_code == WEST))
    kept = _rows(db, select(*(getattr(RegisterSummary, c) for c in SUMMARY_KEYS)))
    assert kept != _rows(db, summary_select())
    with db.write("test") as s:
        assert rebuild_summary(s.connection(), WEST) == 1  # one township only
    with db.read() as s:
        assert compute_stats(s, WEST) == compute_stats(s, WEST, use_summary=False)
        assert compute_stats(s, EAST) != compute_stats(s, EAST, use_summary=False)
    with db.write("test") as s:
        rebuild_summary(s.connection())
    assert_summary_exact(db)


def test_cli_rebuild(db: Database) -> None:
    from geowarn.cli import app

    _units(db)
    with db.write("test") as s:
        s.add(_site("A", EAST + "201", people=11))
    with db.raw_writer() as conn:
        conn.execute(delete(RegisterSummary))
    out = CliRunner().invoke(app, ["stats", "--unit", COUNTY, "--json", "--rebuild"])
    assert out.exit_code == 0, out.output
    assert '"people": 11' in out.stdout
    assert_summary_exact(db)


def test_migration_backfills_existing_sites(db: Database) -> None:
    _units(db)
    with db.write("test") as s:
        s.add(_site("A", EAST + "201"))
        s.add(_site("B", WEST, scale=None, township_code=None))
        s.add(_site("C", WEST + "201", status="written_off"))
    downgrade(db.url, "e40ff7aef637")
    try:
        with db.raw_writer() as conn:  # sites written before the summary existed
            conn.execute(text("UPDATE hazard_site SET threatened_people = threatened_people + 1"))
    finally:
        upgrade(db.url)
    assert_summary_exact(db)


def test_concurrent_writers_of_one_township(db: Database) -> None:
    """Two transactions editing sites of the same township: the second waits, then sees the first."""
    _units(db)
    with db.write("test") as s:
        s.add(_site("A", EAST + "201"))
        s.add(_site("B", EAST + "202"))
    if db.backend != "postgresql":  # SQLite has a single writer: nothing can interleave
        return
    flushed, done = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def second() -> None:
        try:
            flushed.wait(10)
            with db.write("two") as s:
                b = s.scalars(select(HazardSite).where(HazardSite.code == "B")).one()
                b.status = "treated"  # flushes at commit: waits for the first writer's lock
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    worker = threading.Thread(target=second)
    worker.start()
    with db.write("one") as s:
        a = s.scalars(select(HazardSite).where(HazardSite.code == "A")).one()
        a.hazard_type = "rockfall"
        s.flush()
        flushed.set()
        assert not done.wait(0.5)  # the second writer is held back while this one is open
    worker.join(10)
    assert not errors
    assert_summary_exact(db)


def test_two_imports_refreshing_and_adding_in_many_counties(db: Database) -> None:
    """Each refreshes one township, then adds sites in 60 counties (which takes the exclusive lock of
    many counties). The second starts while the first is between the two steps. Locking all their
    counties first, as the importer does, makes the second wait: without it, they deadlocked."""
    if db.backend != "postgresql":  # SQLite has a single writer
        return
    many = [f"{35 + i // 90:02d}{i % 90:02d}01100" for i in range(60)]
    sites: dict[str, list[Any]] = {c: [] for c in SITE_COLUMNS}
    for unit in many:
        row = (unit, unit[:9], "landslide", "small", "registered", "community", 1, 1, 1)
        for c, v in zip(SITE_COLUMNS, row, strict=True):
            sites[c].append(v)
    errors: list[BaseException] = []
    first_refreshed, second_refreshed = threading.Event(), threading.Event()

    def one(town: str, first: bool) -> None:
        try:
            with db.write("t") as s:
                conn = s.connection()
                lock_counties(conn, [town, *sites["unit_code"]])
                refresh_townships(conn, [town])
                if first:
                    first_refreshed.set()
                    second_refreshed.wait(1.0)  # the other may run up to here meanwhile (it cannot)
                else:
                    second_refreshed.set()
                add_sites(conn, sites)
        except BaseException as exc:
            errors.append(exc)

    a = threading.Thread(target=one, args=(EAST, True))
    a.start()
    first_refreshed.wait(10)
    b = threading.Thread(target=one, args=("350981100", False))
    b.start()
    a.join(30)
    b.join(30)
    assert not errors
    with db.read() as s:
        assert s.scalar(select(func.sum(RegisterSummary.sites))) == 120


_EDIT = st.tuples(
    st.sampled_from(["move", "retype", "status", "people", "delete", "add", "rename"]),
    st.integers(0, 7),
    st.sampled_from([EAST + "201", EAST, WEST + "203", NORTH, COUNTY, "350921100201"]),
    st.sampled_from(["landslide", "rockfall", "steep_cut_slope", None]),
    st.sampled_from([s.value for s in SiteStatus]),
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.lists(_EDIT, min_size=1, max_size=4), min_size=1, max_size=4))
def test_random_edits(db: Database, edits: list[list[tuple[str, int, str, str | None, str]]]) -> None:
    with db.write("test") as s:  # every example starts from the same eight sites
        s.execute(delete(HazardSite))
        for i in range(8):
            s.add(_site(f"H{i}", TOWNS[i % 3] + "201", people=i, property_yuan=i * 10_001))
    added = 0
    for transaction in edits:
        with db.write("test") as s:
            sites = {x.code: x for x in s.scalars(select(HazardSite))}
            for op, i, unit, hazard_type, status in transaction:
                site = sites.get(f"H{i}")
                if op == "add" or site is None:
                    added += 1
                    new = _site(f"N{added}", unit, hazard_type=hazard_type or "debris_flow", scale=None)
                    s.add(new)
                    sites[new.code] = new
                elif op == "move":
                    site.unit_code = unit
                    site.township_code = unit[:9] if len(unit) >= 9 else None
                elif op == "retype":
                    site.hazard_type = hazard_type or "unstable_slope"
                    site.scale = None if hazard_type is None else "medium"
                elif op == "status":
                    site.status = status
                elif op == "people":
                    site.threatened_people += i + 1
                elif op == "rename":
                    site.name = f"{site.name}'"
                else:
                    s.delete(site)
                    del sites[site.code]
                s.flush()
        assert_summary_exact(db)


@pytest.mark.parametrize("scope", ["350000", COUNTY, EAST])
def test_empty_register(db: Database, scope: str) -> None:
    with db.read() as s:
        got = compute_stats(s, scope)
        assert got == compute_stats(s, scope, use_summary=False)
    assert got["combined"]["sites"] == 0 and got["combined"]["by_township"] == []
