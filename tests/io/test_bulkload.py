"""Bulk loads: indexes and foreign keys come back exactly, a failure undoes the drop, locks and taken codes fall back.

``MIN_ROWS`` is lowered so that a file of a few rows takes the bulk path a national import takes.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from geowarn.db import Database, bulkload
from geowarn.inventory.models import HazardSite, Person
from geowarn.inventory.summary import SUMMARY_KEYS, RegisterSummary, summary_select
from geowarn.io import importer, store
from geowarn.io.importer import import_file
from tests.io.ioworld import COUNTY, EAST_BOX, WEST_BOX


def _geojson(path: Path, codes: list[str], *, people: int = 3) -> Path:
    feats = []
    for i, code in enumerate(codes):
        box = EAST_BOX if i % 2 else WEST_BOX
        x = box[0] + 0.001 * (i + 1) % (box[2] - box[0])
        feats.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [x, box[1] + 0.01]},
                "properties": {
                    "统一编号": code,
                    "名称": f"点{code}",
                    "灾害类型": "滑坡" if i % 3 else "崩塌",
                    "威胁人数": people + i,
                    "威胁财产（万元）": 1.5,
                    "防灾责任人": "林一",
                    "责任人电话": "13900000001",
                    "监测人": f"监测员{code}",
                    "监测人电话": f"137{i:08d}",
                },
            }
        )
    path.write_bytes(orjson.dumps({"type": "FeatureCollection", "features": feats}))
    return path


def _catalogue(db: Database) -> dict[str, Any]:
    """Index and foreign-key definitions of the two tables a site import loads, as the database has them."""
    out: dict[str, Any] = {}
    with db.read() as s:
        for table in ("hazard_site", "person"):
            if db.engine.dialect.name == "postgresql":
                out[table] = sorted(
                    s.execute(
                        text(
                            "SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = CAST(:t AS regclass) "
                            "UNION ALL SELECT conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint "
                            "WHERE conrelid = CAST(:t AS regclass)"
                        ),
                        {"t": table},
                    ).scalars()
                )
            else:
                out[table] = sorted(
                    s.execute(
                        text("SELECT name || ' ' || coalesce(sql, '') FROM sqlite_master WHERE tbl_name = :t"),
                        {"t": table},
                    ).scalars()
                )
    return out


def _summary_exact(db: Database) -> None:
    with db.read() as s:
        kept = sorted(tuple(r) for r in s.execute(select(*(getattr(RegisterSummary, c) for c in SUMMARY_KEYS))))
        fresh = sorted(tuple(r) for r in s.execute(summary_select()))
    assert [tuple(map(str, r)) for r in kept] == [tuple(map(str, r)) for r in fresh]


@pytest.fixture
def bulk(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Bulk mode from one row on; the list records each table whose indexes were dropped."""
    monkeypatch.setattr(bulkload, "MIN_ROWS", 1)
    dropped: list[str] = []
    for name in ("_drop_pg", "_drop_sqlite"):
        real = getattr(bulkload, name)

        def spy(conn: Any, table: str, _real: Any = real) -> Any:
            got = _real(conn, table)
            if got is not None:
                dropped.append(table)
            return got

        monkeypatch.setattr(bulkload, name, spy)
    return dropped


def test_bulk_import_restores_indexes_and_keys(county: Database, bulk: list[str], tmp_path: Path) -> None:
    before = _catalogue(county)
    codes = [f"S{i:03d}" for i in range(40)]
    res = import_file(county, _geojson(tmp_path / "a.geojson", codes), scope_unit=COUNTY)
    assert (res.created, res.total) == (40, 40)
    assert set(bulk) == {"hazard_site", "person"}
    assert _catalogue(county) == before
    _summary_exact(county)
    with county.read() as s:
        ids = sorted(s.scalars(select(HazardSite.id)))
        assert len(set(ids)) == 40
        # the responsible person once in each of the two townships, and 40 monitors
        assert s.scalar(select(func.count()).select_from(Person)) == 42
        site = s.scalars(select(HazardSite).where(HazardSite.code == "S007")).one()
        assert site.monitor_id is not None and site.threatened_people == 10
        assert site.geom is not None and site.minx == site.lon and site.maxy == site.lat
    # the foreign keys are enforced again
    with pytest.raises(IntegrityError), county.write("test") as s:
        s.execute(text("UPDATE hazard_site SET monitor_id = 999999 WHERE code = 'S001'"))
    # a later import (the table is no longer empty, fewer rows than it holds) goes row by row
    bulk.clear()
    res = import_file(county, _geojson(tmp_path / "b.geojson", ["S001", "T1"], people=50), scope_unit=COUNTY)
    assert (res.created, res.updated) == (1, 1)
    assert bulk == []
    _summary_exact(county)
    with county.read() as s:  # ids after a bulk run continue from it
        assert s.scalar(select(HazardSite.id).where(HazardSite.code == "T1")) > max(ids)


def test_failed_bulk_load_undoes_the_drop(county: Database, bulk: list[str], tmp_path: Path, monkeypatch) -> None:
    before = _catalogue(county)

    def broken(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("disk full")

    monkeypatch.setattr(importer, "upsert", broken)
    with pytest.raises(RuntimeError):
        import_file(county, _geojson(tmp_path / "a.geojson", ["A", "B"]), scope_unit=COUNTY)
    assert set(bulk) == {"hazard_site", "person"}
    assert _catalogue(county) == before
    with county.read() as s:
        assert s.scalar(select(func.count()).select_from(HazardSite)) == 0
        assert s.scalar(select(func.count()).select_from(Person)) == 0


def _pg_only(db: Database) -> None:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL locking and COPY")


def test_busy_table_loads_row_by_row(county: Database, bulk: list[str], tmp_path: Path, monkeypatch) -> None:
    """A reader holding the table: the exclusive lock is not waited for long, the load goes row by row."""
    _pg_only(county)
    monkeypatch.setattr(bulkload, "LOCK_WAIT_S", 0.2)
    url = county.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url) as reader:
        reader.execute("SELECT count(*) FROM hazard_site").fetchone()  # ACCESS SHARE until its transaction ends
        res = import_file(county, _geojson(tmp_path / "a.geojson", ["A", "B", "C"]), scope_unit=COUNTY)
        reader.rollback()
    assert res.created == 3
    assert "hazard_site" not in bulk
    with county.read() as s:  # the import's lock_timeout did not outlive the wait
        assert s.scalar(text("SELECT current_setting('lock_timeout')")) == "0"
    _summary_exact(county)


def test_code_taken_after_lookup_goes_through_staging(
    county: Database, bulk: list[str], tmp_path: Path, monkeypatch
) -> None:
    """Another writer inserted a code between the lookup and the lock: COPY fails, the upsert path takes over."""
    _pg_only(county)
    import_file(county, _geojson(tmp_path / "a.geojson", ["X"]), scope_unit=COUNTY)
    monkeypatch.setattr(store, "lookup_existing", lambda *_a, **_k: {})  # the lookup saw nothing
    bulk.clear()
    res = import_file(county, _geojson(tmp_path / "b.geojson", ["X", "Y"], people=90), scope_unit=COUNTY)
    assert (res.created, res.updated) == (1, 1)
    with county.read() as s:
        assert s.scalar(select(HazardSite.threatened_people).where(HazardSite.code == "X")) == 90
        assert s.scalar(select(func.count()).select_from(HazardSite)) == 2
    _summary_exact(county)


def test_copy_text_round_trip(db: Database) -> None:
    _pg_only(db)
    now = dt.datetime(2026, 12, 5, 1, 2, 3, 456789, tzinfo=dt.UTC)
    rows = [
        ("tab\there", 1, 0.1, b"\x00\x01\\", dt.date(2026, 1, 2), now, '{"a": "b\\\\c"}', True),
        ("line\nbreak\r\\back", -5, 1e-300, b"", dt.date(1999, 12, 31), now, "{}", False),
        (None, None, None, None, None, None, None, None),
        ("汉字 \\N", 2**40, float("1.7976931348623157e308"), b"\xff", dt.date(2026, 1, 2), now, "[1]", None),
    ]
    columns = [list(c) for c in zip(*rows, strict=True)]
    with db.write("test") as s:
        raw: Any = s.connection().connection.driver_connection
        with raw.cursor() as cur:
            cur.execute(
                "CREATE TEMP TABLE t (s text, i bigint, f float8, b bytea, d date, ts timestamptz, j jsonb, ok bool)"
            )
            with cur.copy("COPY t FROM STDIN") as cp:
                for block in bulkload.copy_text(columns, block_rows=3):
                    cp.write(block)
            cur.execute("SELECT s, i, f, b, d, ts, j, ok FROM t")
            back = cur.fetchall()
            cur.execute("DROP TABLE t")
    expected = [(r[0], r[1], r[2], r[3], r[4], r[5], None if r[6] is None else orjson.loads(r[6]), r[7]) for r in rows]
    assert back == expected
