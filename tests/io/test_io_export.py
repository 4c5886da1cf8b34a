"""Export in every format, exact round trips, formula neutralisation, masking; GIS imports; other kinds."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import openpyxl
import orjson
import pytest
import shapely
from pyogrio.raw import read
from pyproj import Transformer
from sqlalchemy import select

from geowarn.admin.models import AdminUnit
from geowarn.db import Database
from geowarn.db.migrate import upgrade
from geowarn.errors import FileRejected
from geowarn.inventory.models import HazardSite, Household, RiskZone, Shelter
from geowarn.io.exporter import export_file
from geowarn.io.importer import import_file
from tests.io.ioworld import COUNTY, EAST, HEADER, WEST, add_units, write_csv

EVIL = '=HYPERLINK("http://evil","x")'
LEDGER = [
    HEADER + ",规模等级,体积,险情等级,稳定性,监测方式,位置,备注,巡查频次",
    f'S1,"{EVIL.replace(chr(34), chr(34) * 2)}",滑坡,118.75,26.55,城东街道,3,12,12.3456,'
    "张三,13800138000,王五,13900139000,"
    '中型,12000.5,小型,基本稳定,群专结合,"溪山村3组, 屋后","多行\n备注",每周',
    "S2,西坑崩塌,崩塌,118.651234567891,26.5512345,城西街道,1,4,0,李四,0591-1234567,,,小型,,,不稳定,,,,",
    "S3,+cmd,危岩,118.71,26.59,,0,0,1000000,,,,,,,,,,,,",
]
FORMATS = ["csv", "xlsx", "geojson", "shp", "gpkg"]


def _contents(path: Path, fmt: str) -> Any:
    if fmt in ("csv", "geojson"):
        return path.read_bytes()
    if fmt == "xlsx":
        wb = openpyxl.load_workbook(path)
        return [list(r) for r in wb.worksheets[0].iter_rows(values_only=True)]
    meta, _, wkb, fields = read(str(path))[:4]
    cols = [[None if isinstance(v, float) and v != v else v for v in f.tolist()] for f in fields]
    return meta["fields"].tolist(), cols, list(wkb), meta["crs"]


def _fresh(db: Database, tmp_path: Path) -> Database:
    """An empty database of the same backend, with the same units."""
    if db.is_postgres:
        import psycopg

        from geowarn.db.base import Base

        url = db.url.rsplit("/", 1)[0] + "/" + db.url.rsplit("/", 1)[1]
        # the fixture's PG database is shared: empty the register in place instead of a new database
        with db.engine.begin() as conn:
            tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
            conn.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
        add_units(db)
        assert psycopg and url
        return db
    path = tmp_path / "fresh.db"
    path.unlink(missing_ok=True)
    upgrade(f"sqlite:///{path}")
    fresh = Database(f"sqlite:///{path}")
    add_units(fresh)
    return fresh


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_is_exact(county: Database, tmp_path: Path, fmt: str) -> None:
    import_file(county, write_csv(tmp_path / "ledger.csv", LEDGER), scope_unit=COUNTY)
    first = tmp_path / f"first.{fmt}"
    assert export_file(county, first, scope_unit=COUNTY, personal_data=True) == 3
    before = _contents(first, fmt)
    with county.read() as s:
        stored = {
            h.code: (h.name, h.lon, h.lat, h.threatened_property_yuan, h.extra, h.remarks)
            for h in s.scalars(select(HazardSite))
        }
    target = _fresh(county, tmp_path)
    res = import_file(target, first, scope_unit=COUNTY)
    assert (res.created, res.rejected) == (3, 0), res.problems
    again = tmp_path / f"again.{fmt}"
    export_file(target, again, scope_unit=COUNTY, personal_data=True)
    assert _contents(again, fmt) == before
    with target.read() as s:
        got = {
            h.code: (h.name, h.lon, h.lat, h.threatened_property_yuan, h.extra, h.remarks)
            for h in s.scalars(select(HazardSite))
        }
    assert got == stored
    assert got["S1"][0] == EVIL and got["S1"][3] == 123_456 and got["S3"][0] == "+cmd"
    assert import_file(target, first, scope_unit=COUNTY).unchanged == 3


def test_csv_export_neutralises_formulas_and_masks_personal_data(county: Database, tmp_path: Path) -> None:
    import_file(county, write_csv(tmp_path / "ledger.csv", LEDGER), scope_unit=COUNTY)
    out = tmp_path / "out.csv"
    export_file(county, out, scope_unit=COUNTY, personal_data=False)
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = {r["统一编号"]: r for r in csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig")))}
    assert rows["S1"]["名称"] == "'" + EVIL and rows["S3"]["名称"] == "'+cmd"
    assert rows["S1"]["责任人电话"] == "138****8000" and "13800138000" not in raw.decode("utf-8-sig")
    assert rows["S1"]["威胁财产（万元）"] == "12.3456" and rows["S3"]["威胁财产（万元）"] == "1000000"
    assert rows["S1"]["乡镇"] == "城东街道" and rows["S1"]["灾害类型"] == "滑坡" and rows["S1"]["巡查频次"] == "每周"
    xlsx = tmp_path / "out.xlsx"
    export_file(county, xlsx, scope_unit=COUNTY, personal_data=False)
    cells = [list(r) for r in openpyxl.load_workbook(xlsx).worksheets[0].iter_rows(values_only=True)]
    assert cells[1][1] == "'" + EVIL and cells[1][3] == 118.75


def test_export_scope_where_and_reprojection(county: Database, tmp_path: Path) -> None:
    import_file(county, write_csv(tmp_path / "ledger.csv", LEDGER), scope_unit=COUNTY)
    out = tmp_path / "east.geojson"
    assert export_file(county, out, scope_unit=EAST, personal_data=True) == 2
    assert (
        export_file(county, out, scope_unit=COUNTY, personal_data=True, where=HazardSite.hazard_type == "rockfall") == 2
    )
    gk = tmp_path / "gk.geojson"
    export_file(county, gk, scope_unit=WEST, personal_data=True, target_crs="EPSG:4528")
    doc = orjson.loads(gk.read_bytes())
    assert doc["crs"]["properties"]["name"].endswith("4528")
    assert 40_000_000 < doc["features"][0]["geometry"]["coordinates"][0] < 41_000_000
    shp = tmp_path / "gk.shp"
    export_file(county, shp, scope_unit=COUNTY, personal_data=True, target_crs="EPSG:4528")
    assert (tmp_path / "gk.cpg").read_text().strip().upper() in ("UTF-8", "UTF8")
    target = _fresh(county, tmp_path)
    import_file(target, gk, scope_unit=COUNTY)
    with target.read() as s:
        s2 = s.scalars(select(HazardSite)).one()
    assert abs(s2.lon - 118.651234567891) < 1e-8 and abs(s2.lat - 26.5512345) < 1e-8
    res = import_file(target, shp, scope_unit=COUNTY)
    assert (res.created, res.updated) == (2, 0) and res.source_crs == "EPSG:4528"


def test_geojson_declared_wgs84_but_projected(county: Database, tmp_path: Path) -> None:
    e, n = Transformer.from_crs("EPSG:4326", "EPSG:4528", always_xy=True).transform(118.75, 26.55)
    doc = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [e, n]},
             "properties": {"编号": "G1", "名称": "a", "类型": "滑坡"}},
        ],
    }  # fmt: skip
    path = tmp_path / "p.geojson"
    path.write_bytes(orjson.dumps(doc))
    with pytest.raises(FileRejected) as exc:
        import_file(county, path, scope_unit=COUNTY)
    assert "投影坐标" in exc.value.problems[0].reason and "EPSG:4528" in exc.value.problems[0].reason
    assert import_file(county, path, scope_unit=COUNTY, source_crs="EPSG:4528").created == 1


def test_other_kinds(county: Database, tmp_path: Path) -> None:
    import_file(county, write_csv(tmp_path / "ledger.csv", LEDGER), scope_unit=COUNTY)
    shelters = write_csv(
        tmp_path / "sh.csv", ["编号,名称,容纳人数,地址,经纬度", 'B1,溪山小学,200,溪山村,"118.76,26.56"']
    )
    assert import_file(county, shelters, kind="shelters", scope_unit=COUNTY).created == 1
    hh = ["编号,户主姓名,电话,身份证号,人口,地址,经度,纬度,隐患点编号,避险点编号"]
    hh.append("H1,陈一,13700137000,11010519491231002X,4,溪山村3组,118.751,26.551,S1,B1")
    res = import_file(county, write_csv(tmp_path / "hh.csv", hh), kind="households", scope_unit=COUNTY)
    assert res.created == 1
    bad = [hh[0], "H2,陈二,137,110105194912310021,x,,118.751,26.551,S9,"]
    with pytest.raises(FileRejected) as exc:
        import_file(county, write_csv(tmp_path / "hh2.csv", bad), kind="households", scope_unit=COUNTY)
    fields = {p.field for p in exc.value.problems}
    assert fields == {"电话", "身份证号", "人口", "隐患点编号"}
    zone = shapely.Polygon([(118.71, 26.51), (118.74, 26.51), (118.74, 26.54)])
    zones = {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "geometry": orjson.loads(shapely.to_geojson(zone)),
                      "properties": {"编号": "Z1", "名称": "溪山风险区", "风险等级": "高", "户数": 3, "人数": 11}}],
    }  # fmt: skip
    zpath = tmp_path / "z.geojson"
    zpath.write_bytes(orjson.dumps(zones))
    assert import_file(county, zpath, kind="risk_zones", scope_unit=COUNTY).created == 1
    assert import_file(county, zpath, kind="risk_zones", scope_unit=COUNTY).unchanged == 1
    with county.read() as s:
        h = s.scalars(select(Household)).one()
        site = s.scalars(select(HazardSite).where(HazardSite.code == "S1")).one()
        shelter = s.scalars(select(Shelter)).one()
        z = s.scalars(select(RiskZone)).one()
    assert h.site_id == site.id and h.shelter_id == shelter.id and h.unit_code == EAST and h.size == 4
    assert shelter.lon == 118.76 and shelter.capacity == 200
    assert z.grade == "high" and z.geom.geom_type == "MultiPolygon" and z.unit_code == EAST and z.minx == 118.71
    out = tmp_path / "hh.csv"
    export_file(county, out, kind="households", scope_unit=COUNTY, personal_data=False)
    row = next(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert row["身份证号"] == "110105********002X" and row["电话"] == "137****7000" and row["隐患点编号"] == "S1"
    for fmt in ("gpkg", "geojson"):
        zout = tmp_path / f"zones.{fmt}"
        assert export_file(county, zout, kind="risk_zones", scope_unit=COUNTY, personal_data=True) == 1
        assert import_file(county, zout, kind="risk_zones", scope_unit=COUNTY).unchanged == 1


def test_units_import_from_geopackage(db: Database, tmp_path: Path) -> None:
    with db.write("t") as s:
        s.add(AdminUnit(code=COUNTY, name="古田县", level="county", parent_code="350900"))
    towns = tmp_path / "towns.geojson"
    feats = [
        {"type": "Feature", "geometry": orjson.loads(shapely.to_geojson(shapely.box(x, 26.5, x + 0.1, 26.6))),
         "properties": {"代码": f"350922{100 + i}", "名称": f"镇{i}"}}
        for i, x in enumerate((118.6, 118.7, 118.8))
    ]  # fmt: skip
    feats.append({"type": "Feature", "geometry": None, "properties": {"代码": "350923100", "名称": "邻县镇"}})
    towns.write_bytes(orjson.dumps({"type": "FeatureCollection", "features": feats}))
    res = import_file(db, towns, kind="units", scope_unit=COUNTY, skip_bad=True)
    assert (res.created, res.rejected) == (3, 1) and "不属于本单位" in res.problems[0].reason
    gpkg = tmp_path / "towns.gpkg"
    assert export_file(db, gpkg, kind="units", scope_unit=COUNTY, personal_data=True) == 4
    assert import_file(db, gpkg, kind="units", scope_unit=COUNTY).unchanged == 4
    with db.read() as s:
        t = s.get(AdminUnit, "350922101")
    assert t is not None and t.level == "township" and t.parent_code == COUNTY and t.geom.geom_type == "MultiPolygon"
