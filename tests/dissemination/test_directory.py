"""The register's people in memory (``dissemination.directory``) follow every change, by any path.

The directory is used only while the register stamp, kept by database triggers, has the value it was
read with. These tests change households, residents and persons through the ORM and behind it (plain
SQL), commit and roll back, and check each time that the resolution from the directory equals the
reference resolution read from the database.
"""

from __future__ import annotations

from typing import Any

import pytest
import shapely
from sqlalchemy import text

from geowarn.db import Database
from geowarn.dissemination import directory, resolve
from geowarn.inventory.models import HazardSite, Household, Person, Resident
from geowarn.inventory.stamp import DIRECTORY, SITES, register_stamp
from tests.dissemination.test_fast_path import COUNTY, _as_dict, _same
from tests.dissemination.world import VILLAGE, build

RED = [(4, shapely.box(118.99, 25.99, 119.07, 26.03))]


def _stamp(db: Database, name: str = DIRECTORY) -> Any:
    with db.read() as s:
        return register_stamp(s, name)


def _keys(db: Database) -> set[str]:
    return set(_as_dict(_same(db, RED)))


def test_the_stamp_changes_with_every_write_to_the_people(db: Database) -> None:
    w = build(db)
    h1 = w.households["H1"]
    seen = [_stamp(db)]

    def changed(*sql: str, orm: Any = None) -> None:
        with db.write("test") as s:
            for q in sql:
                s.execute(text(q))
            if orm is not None:
                s.add(orm)
        now = _stamp(db)
        assert now not in seen, sql or orm
        seen.append(now)

    changed(orm=Person(name="新人", phone="13700000001", roles=["monitor"], unit_code=VILLAGE, active=True))
    changed("UPDATE person SET phone = '13700000002' WHERE name = '新人'")
    changed("DELETE FROM person WHERE name = '新人'")
    changed(orm=Resident(household_id=h1, name="新居民", phone="13700000003", unit_code=VILLAGE))
    changed("UPDATE resident SET name = '改名' WHERE name = '新居民'")
    changed("DELETE FROM resident WHERE name = '改名'")
    changed(orm=Household(code="HX", head_name="新户", size=1, lon=119.5, lat=26.5, geom=shapely.Point(119.5, 26.5),
                          unit_code=VILLAGE))  # fmt: skip
    changed("UPDATE household SET size = 3 WHERE code = 'HX'")
    changed("DELETE FROM household WHERE code = 'HX'")
    # a change rolled back leaves the stamp as it was
    with pytest.raises(RuntimeError), db.write("test") as s:
        s.execute(text("UPDATE resident SET phone = '13700000009'"))
        raise RuntimeError("undo")
    assert _stamp(db) == seen[-1]
    # the sites have their own stamp
    sites = _stamp(db, SITES)
    with db.write("test") as s:
        s.execute(text("UPDATE hazard_site SET name = name || '1'"))
    assert _stamp(db) == seen[-1]
    assert _stamp(db, SITES) != sites
    if db.is_postgres:
        changed("TRUNCATE resident")


def test_the_directory_is_kept_while_nothing_changes(db: Database) -> None:
    build(db)
    with db.read() as s:
        first = directory.cached(s)
    with db.read() as s:
        assert directory.cached(s) is first is not None
    with db.write("test") as s:
        s.execute(text("UPDATE hazard_site SET name = name || '1'"))  # not the register's people
    with db.read() as s:
        assert directory.cached(s) is first
    with db.write("test") as s:
        s.execute(text("UPDATE person SET name = name || '1' WHERE id = (SELECT min(id) FROM person)"))
    with db.read() as s:
        assert directory.cached(s) is not first


def test_resolution_follows_changes_made_behind_the_application(db: Database) -> None:
    w = build(db)
    before = _keys(db)
    resident = sorted(k for k in before if k.startswith("resident:"))[0]
    rid = int(resident.split(":")[1])
    # a new phone, typed into the database by hand: the resident is told at the new number
    with db.write("test") as s:
        s.execute(text("UPDATE resident SET phone = '13812345678' WHERE id = :id"), {"id": rid})
    with db.read() as s:
        res = resolve.for_areas(s, COUNTY, RED)
    phones = {r.phone for r in res.all_recipients()}
    assert "13812345678" in phones
    assert _keys(db) == before
    # deleted by hand: no longer told
    with db.write("test") as s:
        s.execute(text("DELETE FROM resident WHERE id = :id"), {"id": rid})
    assert _keys(db) == before - {resident}
    # a resident added through the application: told
    with db.write("test") as s:
        new = Resident(household_id=w.households["H2"], name="新来的", phone="13811112222", unit_code=VILLAGE)
        s.add(new)
        s.flush()
        new_key = f"resident:{new.id}"  # SQLite may give it the deleted one's id: still a new record
    assert _keys(db) == (before - {resident}) | {new_key}
    with db.read() as s:
        told = {r.phone: r for r in resolve.for_areas(s, COUNTY, RED).all_recipients()}
    assert told["13811112222"].name == "新来的"


def test_uncommitted_changes_are_resolved_from_the_database(db: Database) -> None:
    w = build(db)
    before = _keys(db)
    with pytest.raises(RuntimeError), db.write("test") as s:
        s.add(Resident(household_id=w.households["H1"], name="未提交", phone="13899990000", unit_code=VILLAGE))
        s.flush()
        assert directory.cached(s) is None  # this transaction sees another register than the committed one
        inside = resolve.for_areas(s, COUNTY, RED)
        ref = resolve.for_areas(s, COUNTY, RED, columnar=False)
        assert _as_dict(inside) == _as_dict(ref)
        assert "13899990000" in {r.phone for r in inside.all_recipients()}
        raise RuntimeError("roll back")
    assert _keys(db) == before  # rolled back: the directory never held the resident


def test_resolution_follows_the_sites(db: Database) -> None:
    w = build(db)
    with db.read() as s:
        assert [x.id for x in resolve.for_areas(s, COUNTY, RED).sites] == [w.site]
    with db.write("test") as s:  # treated, by hand: it threatens no one any more
        s.execute(text("UPDATE hazard_site SET status = 'treated' WHERE id = :id"), {"id": w.site})
    with db.read() as s:
        assert resolve.for_areas(s, COUNTY, RED).sites == []
    _same(db, RED)
    with db.write("test") as s:  # back in the register, and moved out of the warning area
        site = s.get(HazardSite, w.site)
        assert site is not None
        site.status, site.lon, site.lat, site.geom = "registered", 121.0, 26.0, shapely.Point(121.0, 26.0)
    with db.read() as s:
        assert resolve.for_areas(s, COUNTY, RED).sites == []
        assert [x.id for x in resolve.for_areas(s, COUNTY, [(4, shapely.box(120.9, 25.9, 121.1, 26.1))]).sites] == [
            w.site
        ]
