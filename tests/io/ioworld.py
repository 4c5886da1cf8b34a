"""The world of the import/export tests: a county (350922) with two townships that have boundaries."""

from __future__ import annotations

from pathlib import Path

import shapely

from geowarn.admin.models import AdminUnit
from geowarn.db import Database

COUNTY = "350922"
EAST, WEST = "350922100", "350922101"
EAST_BOX = (118.7, 26.5, 118.8, 26.6)
WEST_BOX = (118.6, 26.5, 118.7, 26.6)

HEADER = (
    "统一编号,名称,灾害类型,经度,纬度,乡镇,威胁户数,威胁人数,威胁财产（万元）,防灾责任人,责任人电话,监测人,监测人电话"
)


def add_units(db: Database) -> None:
    with db.write("test") as s:
        s.add(AdminUnit(code=COUNTY, name="古田县", level="county", parent_code="350900"))
        s.add(
            AdminUnit(
                code=EAST,
                name="城东街道",
                level="township",
                parent_code=COUNTY,
                geom=shapely.MultiPolygon([shapely.box(*EAST_BOX)]),
            )
        )
        s.add(
            AdminUnit(
                code=WEST,
                name="城西街道",
                level="township",
                parent_code=COUNTY,
                geom=shapely.MultiPolygon([shapely.box(*WEST_BOX)]),
            )
        )
        s.add(AdminUnit(code="350922100201", name="溪山村", level="village", parent_code=EAST))


def write_csv(path: Path, lines: list[str], encoding: str = "utf-8-sig") -> Path:
    path.write_text("\n".join(lines) + "\n", encoding=encoding)
    return path
