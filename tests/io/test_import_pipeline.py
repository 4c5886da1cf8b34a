"""A file read in chunks by a forked process while the parent writes: the same result as one pass.

``CHUNK_ROWS`` is lowered so that a small file makes several chunks, and ``FORK_MIN_BYTES`` so
that it is read in a forked child, as a national file is. Each test runs with the child and in
one process, on both backends.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select, text

from geowarn.db import Database
from geowarn.errors import FileRejected
from geowarn.inventory.models import HazardSite, Person
from geowarn.inventory.summary import SUMMARY_KEYS, RegisterSummary, summary_select
from geowarn.io import pipeline, readers
from geowarn.io.importer import import_file
from geowarn.io.models import ImportBatch
from tests.io.ioworld import COUNTY, EAST_BOX, WEST_BOX


@pytest.fixture(params=["forked", "in-process", "pieces"])
def chunked(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Chunks of 7 rows; the file returned lists the process each chunk was validated in.

    "pieces": a forked reader parses GeoJSON a few features at a time (on SQLite; PostgreSQL reads whole).
    """
    monkeypatch.setattr(readers, "CHUNK_ROWS", 7)
    monkeypatch.setattr(pipeline, "FORK_MIN_BYTES", 1 << 62 if request.param == "in-process" else 0)
    if request.param == "pieces":
        monkeypatch.setattr(readers, "STREAM_MIN_BYTES", 0)
        monkeypatch.setattr(readers, "FIRST_PIECE_BYTES", 600)
        monkeypatch.setattr(readers, "PIECE_FEATURES", 5)
    else:
        monkeypatch.setattr(readers, "STREAM_MIN_BYTES", 1 << 62)
    pids = tmp_path / "pids"
    real = pipeline._read_and_validate

    def spy(*a: Any, **k: Any) -> Any:
        for item in real(*a, **k):
            with pids.open("a") as fh:
                fh.write(f"{os.getpid()}\n")
            yield item

    monkeypatch.setattr(pipeline, "_read_and_validate", spy)
    return pids


def _feature(i: int, code: str, **props: Any) -> dict[str, Any]:
    box = EAST_BOX if i % 2 else WEST_BOX
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [box[0] + 0.002 * (i % 40 + 1), box[1] + 0.01]},
        "properties": {
            "统一编号": code,
            "名称": f"点{code}",
            "灾害类型": "滑坡",
            "威胁人数": i,
            "防灾责任人": "林一",
            "责任人电话": "13900000001",
            "监测人": f"监测员{i % 9}",  # the same monitors come back in later chunks
            "监测人电话": f"1370000000{i % 9}",
            **props,
        },
    }


def _write(path: Path, feats: list[dict[str, Any]]) -> Path:
    path.write_bytes(orjson.dumps({"type": "FeatureCollection", "features": feats}))
    return path


def _summary_exact(db: Database) -> None:
    with db.read() as s:
        kept = sorted(
            tuple(map(str, r)) for r in s.execute(select(*(getattr(RegisterSummary, c) for c in SUMMARY_KEYS)))
        )
        fresh = sorted(tuple(map(str, r)) for r in s.execute(summary_select()))
    assert kept == fresh


def test_chunks_write_as_one_file(county: Database, chunked: Path, tmp_path: Path) -> None:
    feats = [_feature(i, f"S{i:02d}") for i in range(30)]
    res = import_file(county, _write(tmp_path / "a.geojson", feats), scope_unit=COUNTY)
    assert (res.total, res.created, res.rejected) == (30, 30, 0)
    with county.read() as s:
        assert s.scalar(select(func.count()).select_from(HazardSite)) == 30
        # persons created by one chunk are found by the next: 9 monitors in each of two townships
        # (a person is matched in the site's unit and its parents or children), one responsible person in each
        assert s.scalar(select(func.count()).select_from(Person)) == 18 + 2
        assert s.scalar(select(HazardSite.threatened_people).where(HazardSite.code == "S29")) == 29
        batch = s.scalars(select(ImportBatch)).one()
        assert batch.rows_created == 30 and batch.status == "committed" and len(batch.sha256) == 64
    _summary_exact(county)
    # the same file again: every chunk finds its records, nothing changes
    res = import_file(county, _write(tmp_path / "b.geojson", feats), scope_unit=COUNTY)
    assert (res.created, res.updated, res.unchanged) == (0, 0, 30)


def test_a_bad_row_in_a_late_chunk_undoes_the_early_chunks(county: Database, chunked: Path, tmp_path: Path) -> None:
    feats = [_feature(i, f"S{i:02d}") for i in range(30)]
    feats[25]["properties"]["威胁人数"] = "很多"
    feats[27]["properties"]["统一编号"] = "S03"  # a duplicate of a code three chunks back
    with pytest.raises(FileRejected) as exc:
        import_file(county, _write(tmp_path / "a.geojson", feats), scope_unit=COUNTY)
    assert [(p.row, p.field) for p in exc.value.problems] == [(26, "威胁人数"), (28, "统一编号")]
    with county.read() as s:
        assert s.scalar(select(func.count()).select_from(HazardSite)) == 0
        assert s.scalar(select(func.count()).select_from(Person)) == 0
        assert s.scalar(select(func.count()).select_from(RegisterSummary)) == 0
        batch = s.scalars(select(ImportBatch)).one()
        assert (batch.status, batch.rows_total, batch.rows_rejected) == ("rejected", 30, 2)


def test_skip_bad_keeps_every_good_row_of_every_chunk(county: Database, chunked: Path, tmp_path: Path) -> None:
    feats = [_feature(i, f"S{i:02d}") for i in range(30)]
    feats[2]["properties"]["威胁人数"] = -1
    feats[27]["properties"]["统一编号"] = "S03"
    out = tmp_path / "rejects.csv"
    res = import_file(county, _write(tmp_path / "a.geojson", feats), scope_unit=COUNTY, skip_bad=True, reject_path=out)
    assert (res.total, res.created, res.rejected) == (30, 28, 2)
    with county.read() as s:
        codes = set(s.scalars(select(HazardSite.code)))
    assert "S02" not in codes and "S03" in codes and "S27" not in codes and len(codes) == 28
    assert out.read_text(encoding="utf-8-sig").count("\n") == 3
    _summary_exact(county)


def test_a_whole_file_problem_in_a_late_chunk(county: Database, chunked: Path, tmp_path: Path) -> None:
    feats = [_feature(i, f"S{i:02d}") for i in range(30)]
    feats[22]["geometry"]["coordinates"] = "118.7,26.5"  # not an array of numbers
    with pytest.raises(FileRejected) as exc:
        import_file(county, _write(tmp_path / "a.geojson", feats), scope_unit=COUNTY)
    assert exc.value.problems[0].row == 0
    with county.read() as s:
        assert s.scalar(select(func.count()).select_from(HazardSite)) == 0
        assert s.scalars(select(ImportBatch.status)).one() == "rejected"


def test_the_child_ran_the_reading(county: Database, chunked: Path, tmp_path: Path, request) -> None:
    """Chunks were validated in a forked child exactly when the file qualified for it."""
    feats = [_feature(i, f"S{i:02d}") for i in range(30)]
    import_file(county, _write(tmp_path / "a.geojson", feats), scope_unit=COUNTY)
    pids = chunked.read_text().split()
    mode = request.node.callspec.params["chunked"]
    if mode == "pieces" and not county.is_postgres:
        assert len(pids) >= 5  # pieces: the features in the first 600 bytes, then about five at a time
    else:
        assert len(pids) == 6  # 30 rows: a first chunk of one row, then chunks of 7
    assert (set(pids) == {str(os.getpid())}) is (mode == "in-process") and len(set(pids)) == 1


def test_the_child_failing_is_an_error_not_a_hang(county: Database, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(pipeline, "FORK_MIN_BYTES", 0)

    def dies(*_a: Any, **_k: Any) -> Any:
        os._exit(3)
        yield  # pragma: no cover

    monkeypatch.setattr(pipeline, "_read_and_validate", dies)
    with pytest.raises(RuntimeError, match="exit code 3"):
        import_file(county, _write(tmp_path / "a.geojson", [_feature(1, "A")]), scope_unit=COUNTY)
    with county.read() as s:
        assert s.scalar(select(func.count()).select_from(HazardSite)) == 0


def test_households_of_a_geojson_file_find_their_sites(county: Database, chunked: Path, tmp_path: Path) -> None:
    """References are looked up after the reader has ended its read of the imported table."""
    import_file(county, _write(tmp_path / "s.geojson", [_feature(i, f"S{i:02d}") for i in range(3)]), scope_unit=COUNTY)
    homes = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [WEST_BOX[0] + 0.001 * (i + 1), WEST_BOX[1] + 0.01]},
            "properties": {"户编号": f"H{i:02d}", "户主": f"户主{i}", "人口": 3, "隐患点编号": f"S{i % 3:02d}"},
        }
        for i in range(20)
    ]
    homes[19]["properties"]["隐患点编号"] = "NOPE"
    with pytest.raises(FileRejected) as exc:
        import_file(county, _write(tmp_path / "h.geojson", homes), kind="households", scope_unit=COUNTY)
    assert [(p.row, p.field) for p in exc.value.problems] == [(20, "隐患点编号")]
    homes.pop()
    res = import_file(county, _write(tmp_path / "h.geojson", homes), kind="households", scope_unit=COUNTY)
    assert res.created == 19
    with county.read() as s:
        linked = s.execute(
            text("SELECT count(*) FROM household h JOIN hazard_site s ON s.id = h.site_id WHERE s.code = 'S01'")
        ).scalar_one()
    assert linked == 6


def test_a_failing_writer_stops_the_reader(county: Database, chunked: Path, tmp_path: Path, monkeypatch) -> None:
    """The writer fails on its second chunk: the error is the caller's, nothing is kept, no reader is left."""
    import multiprocessing

    from geowarn.io import importer

    real = importer.upsert
    calls: list[int] = []

    def fails_second(*a: Any, **k: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        return real(*a, **k)

    monkeypatch.setattr(importer, "upsert", fails_second)
    with pytest.raises(OSError, match="disk full"):
        import_file(
            county, _write(tmp_path / "a.geojson", [_feature(i, f"S{i:02d}") for i in range(30)]), scope_unit=COUNTY
        )
    assert multiprocessing.active_children() == []
    with county.read() as s:
        assert s.scalar(select(func.count()).select_from(HazardSite)) == 0


def test_a_missing_file_is_refused_and_recorded(county: Database, chunked: Path, tmp_path: Path) -> None:
    with pytest.raises(FileRejected) as exc:
        import_file(county, tmp_path / "nowhere.geojson", scope_unit=COUNTY)
    assert exc.value.problems[0].row == 0
    with county.read() as s:
        assert s.scalars(select(ImportBatch.status)).one() == "rejected"
