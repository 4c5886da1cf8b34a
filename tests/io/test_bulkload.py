"""Bulk loads: indexes and foreign keys come back exactly, a failure undoes the drop, locks and taken codes fall back.

``MIN_ROWS`` is lowered so that a file of a few rows takes the bulk path a national import takes.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
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
from geowarn.io import importer, pipeline, readers, store
from geowarn.io.importer import import_file
from tests.io.ioworld import COUNTY, EAST_BOX, HEADER, WEST_BOX, write_csv


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


class _Watchdog:
    """After ``seconds``, any statement still waiting for a lock is cancelled and recorded in ``seen``.

    A load that waits on its own reader would otherwise hang the test run instead of failing it.
    Use it as a context manager: leaving it stops the watch.
    """

    def __init__(self, db: Database, seconds: float) -> None:
        self.url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.seconds = seconds
        self.seen: list[Any] = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        if self.done.wait(self.seconds):
            return
        with psycopg.connect(self.url, autocommit=True) as c:
            rows = c.execute(
                "SELECT l.pid, l.relation::regclass::text, l.mode FROM pg_locks l "
                "WHERE l.relation IS NOT NULL AND NOT l.granted"
            ).fetchall()
            self.seen.extend(rows)
            for pid, *_ in rows:
                c.execute("SELECT pg_cancel_backend(%s)", (pid,))

    def __enter__(self) -> _Watchdog:
        self.thread.start()
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.done.set()
        self.thread.join()


@pytest.mark.parametrize("forked", [False, True])
def test_households_with_references_load_in_bulk(
    county: Database, bulk: list[str], tmp_path: Path, monkeypatch, forked: bool
) -> None:
    """The reader looks the sites up before the writer locks: no wait on the foreign keys to them."""
    _pg_only(county)
    monkeypatch.setattr(pipeline, "FORK_MIN_BYTES", 0 if forked else 1 << 62)
    monkeypatch.setattr(readers, "CHUNK_ROWS", 100)
    import_file(county, _geojson(tmp_path / "s.geojson", ["S00", "S01", "S02"]), scope_unit=COUNTY)
    homes = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [WEST_BOX[0] + 0.00001 * (i + 1), WEST_BOX[1] + 0.01]},
            "properties": {"户编号": f"H{i:04d}", "户主": f"户主{i}", "人口": 3, "隐患点编号": f"S0{i % 3}"},
        }
        for i in range(1000)
    ]
    path = tmp_path / "h.geojson"
    path.write_bytes(orjson.dumps({"type": "FeatureCollection", "features": homes}))
    bulk.clear()
    with _Watchdog(county, 20) as watch:
        res = import_file(county, path, kind="households", scope_unit=COUNTY)
    assert not watch.seen and res.created == 1000
    assert bulk == ["household"]
    with county.read() as s:
        assert s.scalar(text("SELECT count(*) FROM household WHERE site_id IS NOT NULL")) == 1000


def test_a_reader_of_a_referenced_table_means_row_by_row(
    county: Database, bulk: list[str], tmp_path: Path, monkeypatch
) -> None:
    """Dropping a foreign key locks the table it names: that wait is bounded too."""
    _pg_only(county)
    monkeypatch.setattr(bulkload, "LOCK_WAIT_S", 0.3)
    url = county.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url) as reader, _Watchdog(county, 20) as watch:
        reader.execute("SELECT count(*) FROM person").fetchone()  # ACCESS SHARE on person until rollback
        res = import_file(county, _geojson(tmp_path / "a.geojson", ["A", "B", "C"]), scope_unit=COUNTY)
        reader.rollback()
    assert not watch.seen and res.created == 3
    assert bulk == []
    _summary_exact(county)


def test_no_rebuild_without_new_rows(county: Database, bulk: list[str], tmp_path: Path) -> None:
    codes = [f"S{i:03d}" for i in range(40)]
    import_file(county, _geojson(tmp_path / "a.geojson", codes), scope_unit=COUNTY)
    bulk.clear()
    res = import_file(county, _geojson(tmp_path / "b.geojson", codes), scope_unit=COUNTY)
    assert (res.created, res.unchanged) == (0, 40)
    assert bulk == []


def test_a_streamed_csv_locks_nothing_on_postgresql(county: Database, bulk: list[str], tmp_path: Path) -> None:
    """Its lookups go on while it writes, so on PostgreSQL neither the sites nor the persons are locked."""
    lines = [HEADER] + [
        f"C{i},点{i},滑坡,118.65,26.55,城西街道,1,2,1.5,林一,13900000001,监测{i},1370000{i:04d}" for i in range(20)
    ]
    res = import_file(county, write_csv(tmp_path / "a.csv", lines), scope_unit=COUNTY)
    assert res.created == 20
    assert bulk == ([] if county.engine.dialect.name == "postgresql" else ["hazard_site", "person"])


def test_awkward_text_survives_a_bulk_copy(county: Database, bulk: list[str], tmp_path: Path) -> None:
    """COPY's own markers and escapes as data: stored as given, and a re-import finds nothing changed."""
    weird = ["\\N", "a\\tb", "line1\nline2", "\\.", "x\\\\y", "", "ends with \\", "汉字\\N"]
    feats = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [WEST_BOX[0] + 0.001 * (i + 1), WEST_BOX[1] + 0.01]},
            "properties": {
                "统一编号": f"W{i}",
                "名称": f"n{w}".replace("\n", " "),
                "灾害类型": "滑坡",
                "备注": w or None,
                "自定义": w or None,
            },
        }
        for i, w in enumerate(weird)
    ]
    path = tmp_path / "w.geojson"
    path.write_bytes(orjson.dumps({"type": "FeatureCollection", "features": feats}))
    res = import_file(county, path, scope_unit=COUNTY)
    assert res.created == len(weird) and "hazard_site" in bulk
    with county.read() as s:
        rows = s.execute(select(HazardSite.code, HazardSite.name, HazardSite.remarks, HazardSite.extra))
        got = {c: (n, r, e) for c, n, r, e in rows}
    for i, w in enumerate(weird):
        assert got[f"W{i}"] == (f"n{w}".replace("\n", " "), w or None, {"自定义": w} if w else {})
    res = import_file(county, path, scope_unit=COUNTY)
    assert (res.created, res.updated, res.unchanged) == (0, 0, len(weird))


@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize("forked", [False, True])
def test_random_rounds_keep_the_summary_exact(
    county: Database, bulk: list[str], tmp_path: Path, monkeypatch, seed: int, forked: bool
) -> None:
    """Rounds of partly overlapping files (moves, new types, bad rows skipped), in chunks, in bulk mode."""
    monkeypatch.setattr(readers, "CHUNK_ROWS", 7)
    monkeypatch.setattr(pipeline, "FORK_MIN_BYTES", 0 if forked else 1 << 62)
    rnd = random.Random(seed)
    for round_ in range(4):
        feats = []
        for i in rnd.sample(range(60), 35):
            box = EAST_BOX if rnd.random() < 0.5 else WEST_BOX
            props: dict[str, Any] = {
                "统一编号": f"R{i:02d}",
                "名称": f"点{i}",
                "灾害类型": rnd.choice(["滑坡", "崩塌", "泥石流"]),
                "威胁人数": rnd.randint(0, 9) if rnd.random() > 0.05 else -1,  # now and then a bad row
                "威胁户数": rnd.randint(0, 3),
            }
            if rnd.random() < 0.3:
                props["规模等级"] = rnd.choice(["小型", "中型"])
            point = [box[0] + 0.01 + 0.001 * i, box[1] + 0.01]
            feats.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": point}, "properties": props})
        path = tmp_path / f"r{round_}.geojson"
        path.write_bytes(orjson.dumps({"type": "FeatureCollection", "features": feats}))
        res = import_file(county, path, scope_unit=COUNTY, skip_bad=True)
        assert res.created + res.updated + res.unchanged + res.rejected == res.total == 35
        _summary_exact(county)


@pytest.mark.parametrize("n", [0, 1, 6, 7, 23])
def test_sqlite_multi_row_insert_keeps_every_row_in_order(n: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Full statements of ``ROWS_PER_INSERT`` rows, then the rest one by one: nothing lost, doubled or shifted."""
    import sqlite3

    monkeypatch.setattr(bulkload, "ROWS_PER_INSERT", 3)
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b REAL, c BLOB, d INTEGER)")
    rng = random.Random(n)
    cols = [
        [rng.choice(["x", "滑坡", "", None, "a'b", "?"]) for _ in range(n)],
        [rng.choice([1.5, None, -0.0, 1e300]) for _ in range(n)],
        [rng.choice([b"\x00\x01", None, b""]) for _ in range(n)],
        list(range(n)),
    ]
    bulkload.sqlite_insert(conn.cursor(), "t", ["a", "b", "c", "d"], cols)
    got = conn.execute("SELECT a, b, c, d FROM t ORDER BY id").fetchall()
    assert got == list(zip(*cols, strict=True))


def test_sqlite_multi_row_insert_stays_under_the_variable_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    conn = sqlite3.connect(":memory:")
    conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 10)  # as an old SQLite (999) would, smaller
    conn.execute("CREATE TABLE t (a INTEGER, b INTEGER, c INTEGER)")
    bulkload.sqlite_insert(conn.cursor(), "t", ["a", "b", "c"], [list(range(100)), [1] * 100, [2] * 100])
    assert conn.execute("SELECT count(*), sum(a) FROM t").fetchone() == (100, sum(range(100)))
    with pytest.raises(ValueError):
        bulkload.sqlite_insert(conn.cursor(), "t", ["a", "b", "c"], [[1, 2], [1], [1, 2]])
    with pytest.raises(ValueError):
        bulkload.sqlite_insert(conn.cursor(), "t; DROP TABLE t", ["a"], [[1]])


def test_sqlite_load_settings_come_back(county: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """The load's small page cache and sorting threads are connection settings, not transactional:
    they must be restored after the load, and after a failed one."""
    if county.is_postgres:
        pytest.skip("SQLite pragmas")
    monkeypatch.setattr(bulkload, "MIN_ROWS", 5)

    def settings(conn: Any) -> tuple[Any, Any]:
        return conn.exec_driver_sql("PRAGMA cache_size").scalar(), conn.exec_driver_sql("PRAGMA threads").scalar()

    with county.write("test") as s:
        conn = s.connection()
        before = settings(conn)
        with bulkload.deferred_indexes(conn, "hazard_site", 10) as locked:
            assert locked and settings(conn) == (-bulkload.LOAD_CACHE_KIB, 2)
        assert settings(conn) == before
        with pytest.raises(RuntimeError), bulkload.deferred_indexes(conn, "hazard_site", 10):
            raise RuntimeError("the load failed")
        assert settings(conn) == before
        s.rollback()  # as the importer does after a failed load: the dropped indexes come back
