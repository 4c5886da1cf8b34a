"""Importing ledgers: formats, encodings, CRSs, every validation rule, scope, re-import, rejection records."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import openpyxl
import pytest
from pyproj import Transformer
from sqlalchemy import select

from geowarn.audit.models import AuditEntry
from geowarn.db import Database
from geowarn.errors import FileRejected, RowProblem
from geowarn.inventory.models import HazardSite, Person
from geowarn.io.importer import import_file
from geowarn.io.models import ImportBatch, ImportRejection
from tests.io.ioworld import COUNTY, EAST, HEADER, WEST, write_csv

GOOD = [
    HEADER,
    "S1,溪山滑坡,滑坡,118.75,26.55,城东街道,3,12,12.3,张三,13800138000,王五,13900139000",
    "S2,西坑崩塌,崩塌,118.65,26.55,城西街道,1,4,0.5,李四,0591-1234567,王五,13900139000",
]


def sites(db: Database) -> dict[str, HazardSite]:
    with db.read() as s:
        return {h.code: h for h in s.scalars(select(HazardSite))}


def problems_of(exc: pytest.ExceptionInfo[FileRejected]) -> list[RowProblem]:
    return exc.value.problems


def reject(db: Database, path: Path, **kw: object) -> list[RowProblem]:
    with pytest.raises(FileRejected) as exc:
        import_file(db, path, scope_unit=kw.pop("scope_unit", COUNTY), **kw)  # type: ignore[arg-type]
    return problems_of(exc)


def test_utf8_bom_csv_creates_sites_persons_and_extra(county: Database, tmp_path: Path) -> None:
    lines = [GOOD[0] + ",巡查频次", GOOD[1] + ",每周", GOOD[2] + ","]
    res = import_file(county, write_csv(tmp_path / "a.csv", lines), scope_unit=COUNTY, actor="officer")
    assert (res.total, res.created, res.updated, res.unchanged, res.rejected) == (2, 2, 0, 0, 0)
    assert res.source_crs == "EPSG:4326"
    got = sites(county)
    s1 = got["S1"]
    assert s1.hazard_type == "landslide" and s1.unit_code == EAST and s1.township_code == EAST
    assert s1.threatened_property_yuan == 123_000 and got["S2"].threatened_property_yuan == 5_000
    assert s1.extra == {"巡查频次": "每周"} and got["S2"].extra == {}
    assert (s1.minx, s1.maxy, s1.lon, s1.lat) == (118.75, 26.55, 118.75, 26.55)
    assert s1.geom.x == 118.75 and s1.version == 1 and s1.status == "registered" and s1.created_at is not None
    with county.read() as s:
        people = {(p.unit_code, p.name, p.phone): p for p in s.scalars(select(Person))}
        # the key is unit + name + phone: the same monitor in two townships is two register entries
        assert set(people) == {
            (EAST, "张三", "13800138000"), (WEST, "李四", "0591-1234567"),
            (EAST, "王五", "13900139000"), (WEST, "王五", "13900139000"),
        }  # fmt: skip
        assert s1.monitor_id == people[(EAST, "王五", "13900139000")].id
        assert s1.responsible_person_id == people[(EAST, "张三", "13800138000")].id
        assert people[(EAST, "张三", "13800138000")].roles == ["responsible"]
        batch = s.scalars(select(ImportBatch)).one()
        assert batch.status == "committed" and batch.rows_created == 2 and batch.actor == "officer"
        audit = s.scalars(select(AuditEntry).where(AuditEntry.action == "import")).one()
        assert audit.changes["rows_created"] == 2 and audit.entity_id == str(batch.id)


def test_gbk_csv(county: Database, tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    path = write_csv(tmp_path / "gbk.csv", GOOD, encoding="gbk")
    res = import_file(county, path, scope_unit=COUNTY, progress=lambda done, total: calls.append((done, total)))
    assert res.created == 2 and sites(county)["S1"].name == "溪山滑坡"
    assert calls[-1] == (2, 2)


def test_undecodable_file_is_refused(county: Database, tmp_path: Path) -> None:
    p = tmp_path / "bad.csv"
    p.write_bytes("编号,名称\n".encode() + b"\xff\xfe\xfa\x81\x30\n")
    probs = reject(county, p)
    assert probs[0].row == 0 and "编码" in probs[0].reason


def test_reimport_is_idempotent_and_updates_are_audited(county: Database, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", GOOD)
    import_file(county, path, scope_unit=COUNTY)
    again = import_file(county, path, scope_unit=COUNTY)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    changed = [GOOD[0], GOOD[1].replace(",12,12.3,", ",15,12.3,"), GOOD[2]]
    res = import_file(county, write_csv(tmp_path / "b.csv", changed), scope_unit=COUNTY)
    assert (res.created, res.updated, res.unchanged) == (0, 1, 1)
    got = sites(county)
    assert len(got) == 2 and got["S1"].threatened_people == 15 and got["S1"].version == 2
    with county.read() as s:
        entries = s.scalars(
            select(AuditEntry).where(AuditEntry.action == "update", AuditEntry.entity == "hazard_site")
        ).all()
    assert len(entries) == 1 and entries[0].changes["threatened_people"] == [12, 15]
    assert entries[0].changes["import_batch"] == res.batch_id


def test_xlsx_with_title_row_and_formula_cell(county: Database, tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["古田县地质灾害隐患点台账"])
    for line in GOOD:
        ws.append([float(c) if c.replace(".", "").isdigit() and "." in c else c for c in line.split(",")])
    path = tmp_path / "a.xlsx"
    wb.save(path)
    res = import_file(county, path, scope_unit=COUNTY)
    assert res.created == 2 and sites(county)["S1"].threatened_property_yuan == 123_000
    ws.append(["S3", "=A2&A3", "滑坡", 118.71, 26.51])
    wb.save(path)
    probs = reject(county, path)
    assert {(p.row, p.field) for p in probs} == {(3, "名称")} and any("公式" in p.reason for p in probs)


@pytest.mark.parametrize(
    ("line", "field", "reason"),
    [
        ("S3,a,滑坡,26.55,118.75,城东街道,,,,,,,", "经度", "经纬度可能颠倒"),
        ("S3,a,滑坡,118.95,26.55,,,,,,,,", "经度", "不在本单位"),
        ("S3,a,滑坡,40500000,2900000,,,,,,,,", "经度", "高斯-克吕格"),
        ("S3,a,泥巴,118.75,26.55,,,,,,,,", "灾害类型", "可选：滑坡、崩塌、泥石流"),
        ("S3,,滑坡,118.75,26.55,,,,,,,,", "名称", "必填"),
        ("S3,a,滑坡,118.75,26.55,,x,,,,,,", "威胁户数", "整数"),
        ("S3,a,滑坡,118.75,26.55,,-2,,,,,,", "威胁户数", "负数"),
        ("S3,a,滑坡,118.75,26.55,,,,abc,,,,", "威胁财产（万元）", "金额"),
        ("S3,a,滑坡,118.75,26.55,,,,,张三,12345,,", "责任人电话", "电话号码"),
        ("S3,a,滑坡,118.75,26.55,东山镇,,,,,,,", "乡镇", "没有名为“东山镇”"),
        ("S3,a\x07b,滑坡,118.75,26.55,,,,,,,,", "名称", "控制字符"),
        ("S3," + "长" * 201 + ",滑坡,118.75,26.55,,,,,,,,", "名称", "长度超过上限 200"),
        ("S3,a,滑坡,,,,,,,,,,", "经度", "缺少坐标"),
    ],
)
def test_row_problems(county: Database, tmp_path: Path, line: str, field: str, reason: str) -> None:
    probs = reject(county, write_csv(tmp_path / "a.csv", [*GOOD, line]))
    assert [(p.row, p.field) for p in probs] == [(3, field)], probs
    assert reason in probs[0].reason
    assert sites(county) == {}  # nothing written


def test_duplicates_name_the_first_row(county: Database, tmp_path: Path) -> None:
    probs = reject(county, write_csv(tmp_path / "a.csv", [*GOOD, GOOD[1], GOOD[1]]))
    assert [(p.row, p.field) for p in probs] == [(3, "统一编号"), (4, "统一编号")]
    assert all("第 1 行" in p.reason for p in probs)


def test_whole_file_problems(county: Database, tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert reject(county, empty)[0].reason == "文件为空"
    assert reject(county, write_csv(tmp_path / "h.csv", [HEADER]))[0].reason == "文件为空"
    probs = reject(county, write_csv(tmp_path / "nocoord.csv", ["统一编号,名称,灾害类型", "S1,a,滑坡"]))
    assert probs[0].row == 0 and "没有坐标" in probs[0].reason
    assert "未知的坐标系" in reject(county, write_csv(tmp_path / "a.csv", GOOD), source_crs="EPSG:99999")[0].reason
    (tmp_path / "a.xls").write_bytes(b"x")
    assert "不支持" in reject(county, tmp_path / "a.xls")[0].reason
    assert "缺少必填列" in reject(county, write_csv(tmp_path / "m.csv", ["名称,经度,纬度", "a,118.7,26.5"]))[0].reason
    with county.read() as s:
        assert all(b.status == "rejected" for b in s.scalars(select(ImportBatch)))


def test_rejected_file_keeps_batch_and_raw_rows(county: Database, tmp_path: Path) -> None:
    bad = "S3,a,泥巴,118.75,26.55,,,,,,,,"
    with pytest.raises(FileRejected) as exc:
        import_file(county, write_csv(tmp_path / "a.csv", [*GOOD, bad]), scope_unit=COUNTY)
    with county.read() as s:
        batch = s.get(ImportBatch, exc.value.extra["batch_id"])
        assert batch is not None and batch.status == "rejected" and batch.rows_rejected == 1
        rej = s.scalars(select(ImportRejection).where(ImportRejection.batch_id == batch.id)).one()
    assert rej.row == 3 and rej.field == "灾害类型" and rej.raw["灾害类型"] == "泥巴" and rej.raw["统一编号"] == "S3"


def test_skip_bad_commits_good_rows_and_writes_reject_file(county: Database, tmp_path: Path) -> None:
    lines = [*GOOD, "S3,a,泥巴,118.75,26.55,,,,,,,,", "=1+1,b,滑坡,26.55,118.75,,,,,,,,"]
    out = tmp_path / "rejects.csv"
    res = import_file(county, write_csv(tmp_path / "a.csv", lines), scope_unit=COUNTY, skip_bad=True, reject_path=out)
    assert (res.created, res.rejected, res.reject_path) == (2, 2, out)
    with out.open(encoding="utf-8-sig") as fh:
        rows = list(csv.reader(fh))
    assert rows[0][:4] == ["行号", "字段", "原因", "统一编号"]
    assert [r[:2] for r in rows[1:]] == [["3", "灾害类型"], ["4", "经度"]]
    assert rows[2][3] == "'=1+1"  # raw values are neutralised for Excel too
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")
    with county.read() as s:
        batch = s.get(ImportBatch, res.batch_id)
        assert batch is not None and batch.status == "partial" and batch.rows_rejected == 2
        assert len(s.scalars(select(ImportRejection).where(ImportRejection.batch_id == res.batch_id)).all()) == 2


def test_township_user_cannot_import_rows_of_another_township(county: Database, tmp_path: Path) -> None:
    probs = reject(county, write_csv(tmp_path / "a.csv", GOOD), scope_unit=EAST)
    assert {(p.row, p.field) for p in probs} == {(2, "乡镇"), (2, "经度")}
    assert any("城西街道" in p.reason and "不属于本单位" in p.reason for p in probs)
    res = import_file(county, write_csv(tmp_path / "b.csv", GOOD[:2]), scope_unit=EAST)
    assert res.created == 1


def test_point_in_polygon_assigns_townships_and_village_names(county: Database, tmp_path: Path) -> None:
    lines = ["统一编号,名称,灾害类型,经度,纬度,村", "S1,a,滑坡,118.75,26.55,溪山村", "S2,b,滑坡,118.65,26.55,"]
    import_file(county, write_csv(tmp_path / "a.csv", lines), scope_unit=COUNTY)
    got = sites(county)
    assert got["S1"].unit_code == "350922100201" and got["S1"].township_code == EAST
    assert got["S2"].unit_code == WEST


def _gk(lon: float, lat: float, epsg: int) -> tuple[float, float]:
    return Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True).transform(lon, lat)


def test_gauss_kruger_zone_40_with_prefix_in_survey_order(county: Database, tmp_path: Path) -> None:
    e, n = _gk(118.75, 26.55, 4528)
    assert 40_000_000 < e < 41_000_000
    lines = ["统一编号,名称,灾害类型,X,Y", f"S1,a,滑坡,{n:.3f},{e:.3f}"]  # survey order: X is the northing
    res = import_file(county, write_csv(tmp_path / "a.csv", lines), scope_unit=COUNTY)
    assert res.source_crs == "EPSG:4528"
    s1 = sites(county)["S1"]
    assert abs(s1.lon - 118.75) < 1e-7 and abs(s1.lat - 26.55) < 1e-7 and s1.unit_code == EAST
    wrong = ["统一编号,名称,灾害类型,X,Y", f"S2,a,滑坡,{e - 1_000_000:.3f},{n:.3f}"]
    probs = reject(county, write_csv(tmp_path / "b.csv", wrong), source_crs="EPSG:4528")
    assert "带号 39" in probs[0].reason and "带号 40" in probs[0].reason


def test_gauss_kruger_without_prefix_epsg_4539(db: Database, tmp_path: Path) -> None:
    import shapely

    from geowarn.admin.models import AdminUnit

    with db.write("t") as s:  # 城关区, Lhasa: central meridian 90°E is zone 30 = EPSG:4539
        s.add(
            AdminUnit(
                code="540102",
                name="城关区",
                level="county",
                geom=shapely.MultiPolygon([shapely.box(90.9, 29.5, 91.4, 29.8)]),
            )
        )
    e, n = _gk(91.1, 29.65, 4539)
    lines = ["编号,名称,类型,X,Y", f"L1,a,崩塌,{e:.3f},{n:.3f}"]
    import_file(db, write_csv(tmp_path / "a.csv", lines), scope_unit="540102", source_crs="EPSG:4539")
    s1 = sites(db)["L1"]
    assert abs(s1.lon - 91.1) < 1e-7 and abs(s1.lat - 29.65) < 1e-7
    prefixed = ["编号,名称,类型,X,Y", f"L2,a,崩塌,{e + 30_000_000:.3f},{n:.3f}"]
    probs = reject(db, write_csv(tmp_path / "b.csv", prefixed), scope_unit="540102", source_crs="EPSG:4539")
    assert "带号 30" in probs[0].reason and "EPSG:4518" in probs[0].reason


def test_user_mapping_overrides_headers(county: Database, tmp_path: Path) -> None:
    lines = ["点号,叫法,灾种,E,N", "S1,a,滑坡,118.75,26.55"]
    mapping = {"点号": "code", "叫法": "name", "灾种": "hazard_type", "E": "lon", "N": "lat"}
    assert import_file(county, write_csv(tmp_path / "a.csv", lines), scope_unit=COUNTY, mapping=mapping).created == 1


def test_hundred_thousand_rows(county: Database, tmp_path: Path) -> None:
    n = 100_000
    rng = np.random.default_rng(3)
    lon = rng.uniform(118.601, 118.799, n).round(6)
    lat = rng.uniform(26.501, 26.599, n).round(6)
    lines = ["统一编号,名称,灾害类型,经度,纬度,威胁人数,威胁财产（万元）,监测人,监测人电话"]
    lines += [
        f"C{i:06d},点{i},滑坡,{lon[i]},{lat[i]},{i % 50},{i % 100}.5,监测员{i % 300},137{i % 300:08d}" for i in range(n)
    ]
    path = write_csv(tmp_path / "big.csv", lines)
    res = import_file(county, path, scope_unit=COUNTY)
    assert (res.total, res.created, res.rejected) == (n, n, 0)
    with county.read() as s:
        assert s.query(HazardSite).count() == n
        assert s.query(Person).count() == 600  # 300 monitors, split by township
        one = s.scalars(select(HazardSite).where(HazardSite.code == "C000007")).one()
    assert one.threatened_property_yuan == 75_000 and one.township_code == (EAST if lon[7] >= 118.7 else WEST)
    again = import_file(county, path, scope_unit=COUNTY)
    assert (again.created, again.updated, again.unchanged) == (0, 0, n)
