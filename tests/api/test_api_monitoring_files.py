"""Bulk device registration (CSV in UTF-8/BOM and GBK, XLSX) and history readings from files."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import openpyxl
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from geowarn.db import Database
from geowarn.monitoring.files import import_readings, read_device_rows
from geowarn.monitoring.ingest import Ingestor
from geowarn.monitoring.models import DeadLetter, Device, MonitoringStation, Observation, Sensor
from tests.api.apiworld import TOWN_A, World

HEADER = ["监测点编号", "监测点名称", "隐患点编号", "经度", "纬度", "设备编号", "设备类型", "厂商", "型号", "序列号",
          "上报间隔（秒）", "安装时间", "apikey"]  # fmt: skip
GOOD = [
    ["MS-1", "一号监测点", "ALPHA-S1", "119.05", "26.05", "LF-1", "裂缝计", "某厂", "X1", "SN1", "600",
     "2026-06-01 08:00", ""],
    ["MS-1", "一号监测点", "ALPHA-S1", "119.05", "26.05", "RG-1", "RAIN", "某厂", "R2", "SN2", "300", "", ""],
    ["MS-2", "二号监测点", "", "119.02", "26.03", "GN-1", "GP", "", "", "", "1800", "",
     "abcdef0123456789abcdef0123456789"],
]  # fmt: skip
BAD = [
    ["MS-3", "三号监测点", "", "东经119", "26.05", "LF-2", "LF", "", "", "", "600", "", ""],  # row 4: 经度
    ["MS-3", "三号监测点", "", "119.05", "26.05", "LF-3", "雷达", "", "", "", "0", "", ""],  # row 5: 类型, 间隔
    ["MS-4", "四号监测点", "NO-SUCH", "119.05", "26.05", "LF-4", "LF", "", "", "", "", "", ""],  # row 6: 隐患点
    ["MS-5", "五号监测点", "", "119.15", "26.05", "LF-5", "LF", "", "", "", "", "", ""],  # row 7: in B
    ["MS-1", "一号监测点", "", "119.05", "26.05", "LF-1", "LF", "", "", "", "", "", ""],  # row 8: duplicate
]  # fmt: skip


def csv_bytes(rows: list[list[str]], encoding: str) -> bytes:
    text = "\r\n".join(",".join(r) for r in [HEADER, *rows]) + "\r\n"
    return text.encode(encoding)


def xlsx_bytes(rows: list[list[object]]) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["监测设备台账"])  # a title line above the header
    ws.append(HEADER)
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def upload(client: TestClient, h: dict[str, str], name: str, data: bytes, skip_bad: bool = False) -> object:
    files = {"file": (name, data, "application/octet-stream")}
    return client.post("/api/monitoring/devices/import", headers=h, files=files, data={"skip_bad": str(skip_bad)})


@pytest.mark.parametrize(("name", "encoding"), [("台账.csv", "utf-8-sig"), ("台账.csv", "gbk"), ("台账.xlsx", "")])
def test_bad_rows_reject_the_file_with_row_and_field(
    db: Database, client: TestClient, world: World, as_a: dict[str, str], name: str, encoding: str
) -> None:
    data = xlsx_bytes(GOOD + BAD) if name.endswith("xlsx") else csv_bytes(GOOD + BAD, encoding)
    r = upload(client, as_a, name, data)
    assert r.status_code == 422, r.text  # type: ignore[attr-defined]
    problems = {(p["row"], p["field"]) for p in r.json()["problems"]}  # type: ignore[attr-defined]
    assert problems == {(4, "经度"), (5, "设备类型"), (5, "上报间隔（秒）"), (6, "隐患点编号"), (7, "经度"),
                        (8, "设备编号")}  # fmt: skip
    reasons = {p["row"]: p["reason"] for p in r.json()["problems"]}  # type: ignore[attr-defined]
    assert reasons[6] == "隐患点不存在或不在管辖范围内" and "重复" in reasons[8]
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Device)) == 2  # the world's two; nothing written


def test_good_rows_register_and_reimport_updates(
    db: Database, client: TestClient, world: World, as_a: dict[str, str]
) -> None:
    r = upload(client, as_a, "d.csv", csv_bytes(GOOD + BAD, "gbk"), skip_bad=True)
    assert r.status_code == 200, r.text  # type: ignore[attr-defined]
    body = r.json()  # type: ignore[attr-defined]
    assert (body["total"], body["created"], body["updated"], body["rejected"], body["stations_created"]) == (
        8, 3, 0, 5, 2,
    )  # fmt: skip
    keys = {k["device_code"]: k["apikey"] for k in body["apikeys"]}
    assert set(keys) == {"LF-1", "RG-1"}  # GN-1 came with its national-platform key
    with db.read() as s:
        st = s.scalars(select(MonitoringStation).where(MonitoringStation.code == "MS-1")).one()
        assert (st.site_id, st.unit_code) == (world.a.site, TOWN_A)
        lf = s.scalars(select(Device).where(Device.device_code == "LF-1")).one()
        assert lf.installed_at is not None
        assert lf.installed_at.replace(tzinfo=dt.UTC) == dt.datetime(2026, 6, 1, 0, 0, tzinfo=dt.UTC)
        assert s.scalar(select(func.count()).select_from(Sensor).where(Sensor.device_id == lf.id)) == 1
    t = "2026-07-02T08:00:00+08:00"
    for code, key, data in (
        ("GN-1", GOOD[2][12], {"gpsTotalX": 1, "gpsTotalY": 1, "gpsTotalZ": 1}),
        ("LF-1", keys["LF-1"], {"value": 0.2}),
    ):
        rep = client.post("/api/ingest", json={"deviceId": code, "apikey": key, "data": {**data, "time": t}})
        assert rep.status_code == 200, rep.text
    # Re-import: same deviceIds are updated (vendor, interval), nothing is duplicated, no key is reissued.
    changed = [[*row[:7], "新厂", "X9", "SN9", "900", "", ""] for row in GOOD]
    r = upload(client, as_a, "d.xlsx", xlsx_bytes(changed))  # type: ignore[arg-type]
    assert r.status_code == 200, r.text  # type: ignore[attr-defined]
    body = r.json()  # type: ignore[attr-defined]
    assert (body["created"], body["updated"], body["apikeys"]) == (0, 3, [])
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Device)) == 5
        lf = s.scalars(select(Device).where(Device.device_code == "LF-1")).one()
        assert (lf.vendor, lf.reporting_interval_s) == ("新厂", 900)
    rep = client.post("/api/ingest", json={"deviceId": "LF-1", "apikey": keys["LF-1"], "data": {"value": 0.3}})
    assert rep.status_code == 200  # the key survived the update


def test_reading_rows_is_pure(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(
        csv_bytes([*GOOD[:1], ["MS-9", "", "", "200", "26", "", "LF", "", "", "", "", "x", "short"]], "gbk")
    )
    rows, problems, total = read_device_rows(path)
    assert total == 2 and [r.device_code for r in rows] == ["LF-1"]
    assert {(p.row, p.field) for p in problems} == {(2, "监测点名称"), (2, "设备编号"), (2, "经度"), (2, "安装时间"),
                                                    (2, "apikey")}  # fmt: skip


def test_history_file_goes_through_the_ingestor(db: Database, world: World, tmp_path: Path) -> None:
    lines = [
        "设备编号,通道,时间,数值",
        "ALPHA-D1,value,2026-07-02 08:00,0.5",
        "ALPHA-D1,value,2026-07-02 08:10:00,1.5",
        "ALPHA-D1,totalValue,1782951000000,12",
        "ALPHA-D1,value,yesterday,1",  # bad time
        "ALPHA-D1,value,2026-07-02T08:30:00+08:00,lots",  # bad value
        "ALPHA-D1,humidity,2026-07-02 08:40,1",  # unknown channel
        "NOBODY-1,value,2026-07-02 08:00,1",  # unknown device
        "ALPHA-D1,value,2026-07-02 08:00,0.5",  # duplicate of the first
    ]
    path = tmp_path / "history.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    seen: list[int] = []
    report = import_readings(Ingestor(db), path, progress=lambda done, _total: seen.append(done))
    assert (report.accepted, report.duplicate, report.rejected) == (3, 1, 4)
    assert seen == [8]
    with db.read() as s:
        letters = s.scalars(select(DeadLetter).where(DeadLetter.source == "file").order_by(DeadLetter.id)).all()
        assert {d.reason for d in letters} == {"bad_time", "unknown_device"}  # one letter per payload
        assert all(d.channel == "history.csv" for d in letters)
        assert s.scalar(select(func.count()).select_from(Observation)) == 2 + 3
    # The trusted path does not open the door to retired devices.
    with db.write("test") as s:
        s.scalars(select(Device).where(Device.device_code == "ALPHA-D1")).one().status = "retired"
    path.write_text("设备编号,时间,数值\nALPHA-D1,2026-07-03 08:00,1\n", encoding="utf-8")
    report = import_readings(Ingestor(db), path)
    assert (report.accepted, dict(report.reasons)) == (0, {"retired_device": 1})


def test_single_channel_devices_need_no_channel(db: Database, client: TestClient, world: World, tmp_path: Path) -> None:
    from tests.api.apiworld import login

    upload(client, login(client, "alpha_administrator"), "d.csv", csv_bytes(GOOD[:1], "utf-8"))
    path = tmp_path / "h.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["deviceId", "time", "value"])
    ws.append(["LF-1", dt.datetime(2026, 7, 2, 8, 0), 3.25])  # a spreadsheet time: China time
    ws.append(["ALPHA-D1", dt.datetime(2026, 7, 2, 8, 0), 1])  # two channels: the channel is needed
    wb.save(path)
    report = import_readings(Ingestor(db), path)
    assert (report.accepted, report.rejected) == (1, 1)
    with db.read() as s:
        t = s.scalar(select(Observation.t_ms).where(Observation.value == 3.25))
    assert t == 1_782_950_400_000
