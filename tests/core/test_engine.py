"""Storage behaviour that users rely on: concurrent writers never see 'database is locked'."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import shapely
from sqlalchemy import func, select

from geowarn.db import Database
from geowarn.errors import ConfigError
from geowarn.inventory.models import HazardSite, Person


def _site(code: str) -> HazardSite:
    return HazardSite(
        code=code,
        name=code,
        hazard_type="landslide",
        lon=118.9,
        lat=26.6,
        geom=shapely.Point(118.9, 26.6),
        unit_code="350922100",
    )


def test_concurrent_writers_and_readers_do_not_fail(db: Database) -> None:
    errors: list[BaseException] = []
    n_threads, per_thread = 8, 25

    def writer(t: int) -> None:
        try:
            for i in range(per_thread):
                with db.write(f"thread{t}") as s:
                    s.add(_site(f"T{t}-{i}"))
        except BaseException as exc:
            errors.append(exc)

    def reader() -> None:
        try:
            for _ in range(per_thread):
                with db.read() as s:
                    s.scalar(select(func.count()).select_from(HazardSite))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(n_threads)]
    threads += [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(HazardSite)) == n_threads * per_thread


def test_write_rolls_back_on_error(db: Database) -> None:
    with pytest.raises(RuntimeError), db.write("t") as s:
        s.add(_site("X1"))
        s.flush()
        raise RuntimeError("boom")
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(HazardSite)) == 0


def test_geometry_round_trips_exactly(db: Database) -> None:
    zone = shapely.MultiPolygon([shapely.Polygon([(118.1, 26.1), (118.2, 26.1), (118.2, 26.2)])])
    with db.write("t") as s:
        site = _site("G1")
        site.danger_zone_geom = zone
        s.add(site)
    with db.read() as s:
        got = s.scalars(select(HazardSite)).one()
    assert shapely.equals_exact(got.geom, shapely.Point(118.9, 26.6), 0)
    assert shapely.equals_exact(got.danger_zone_geom, zone, 0)
    assert (got.minx, got.maxy) == (118.9, 26.6)


def test_every_write_is_audited_with_actor_and_masked_personal_data(db: Database) -> None:
    from geowarn.audit.models import AuditEntry

    with db.write("alice") as s:
        p = Person(name="王五", phone="13800001234", unit_code="350922100")
        s.add(p)
    with db.write("bob") as s:
        p2 = s.get(Person, p.id)
        assert p2 is not None
        p2.phone = "13900005678"
    with db.read() as s:
        entries = s.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
    assert [(e.actor, e.action, e.entity) for e in entries] == [
        ("alice", "create", "person"),
        ("bob", "update", "person"),
    ]
    assert entries[0].changes["phone"] == "138****1234"
    assert entries[1].changes["phone"] == ["138****1234", "139****5678"]
    assert entries[1].unit_code == "350922100"


@pytest.mark.parametrize("n", [3, 30])
def test_a_flush_of_many_objects_is_audited_like_a_flush_of_few(db: Database, n: int) -> None:
    """Above ``BULK_ENTRIES`` the entries go in by COPY on PostgreSQL: the same entries either way."""
    from geowarn.audit.hook import BULK_ENTRIES
    from geowarn.audit.models import AuditEntry

    assert (n >= BULK_ENTRIES) == (n == 30)
    with db.write("alice") as s:
        s.add_all([Person(name=f"王{i}", phone=f"1380000{i:04d}", unit_code="350922100", roles=["monitor"])
                   for i in range(n)])  # fmt: skip
    with db.read() as s:
        people = {str(p.id): p for p in s.scalars(select(Person))}
        entries = s.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
    assert len(entries) == n and {e.entity_id for e in entries} == set(people)
    for e in entries:
        p = people[str(e.entity_id)]
        assert (e.actor, e.action, e.entity, e.unit_code) == ("alice", "create", "person", "350922100")
        assert e.changes["phone"] == f"{p.phone[:3]}****{p.phone[-4:]}" and e.changes["roles"] == ["monitor"]
        assert e.at is not None


def test_memory_sqlite_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        Database("sqlite://")
