"""The commands a county officer types: demo, stats, import, export (through the real CLI)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def geowarn(*args: str, db_url: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GEOWARN_DATABASE_URL": db_url, "GEOWARN_MODE": "test", "COLUMNS": "200"}
    done = subprocess.run([sys.executable, "-m", "geowarn", *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    if check and done.returncode != 0:
        raise AssertionError(done.stdout + done.stderr)
    return done


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    d = tmp_path_factory.mktemp("demo")
    url = f"sqlite:///{d}/demo.db"
    out = geowarn("demo", "--no-serve", db_url=url, cwd=d)
    assert "4789" in out.stdout.replace(",", "")
    return url, d


def test_stats_prints_the_seed_figures(demo_db: tuple[str, Path]) -> None:
    url, d = demo_db
    stats = json.loads(geowarn("stats", "--json", db_url=url, cwd=d).stdout)
    sites = stats["hazard_sites"]
    assert (sites["sites"], sites["people"], sites["property_wan"]) == (149, 4789, "7236.5")
    assert stats["steep_slopes"]["sites"] == 32
    assert stats["scope"]["name"] == "示范县"
    by_type = {r["hazard_type"]: r["sites"] for r in stats["hazard_sites"]["by_hazard_type"]}
    assert by_type == {"landslide": 81, "rockfall": 66, "debris_flow": 2}
    by_township = {r["label"]: r["sites"] for r in stats["hazard_sites"]["by_township"]}
    assert by_township == {
        "城东街道": 9, "城西街道": 25, "大甲镇": 9, "大桥镇": 21, "凤都镇": 12, "凤埔乡": 7, "鹤塘镇": 15,
        "黄田镇": 4, "吉巷乡": 5, "泮洋乡": 3, "平湖镇": 8, "杉洋镇": 12, "水口镇": 10, "卓洋乡": 9,
    }  # fmt: skip
    table = geowarn("stats", db_url=url, cwd=d).stdout
    assert "示范县" in table and "7236.5" in table and "4,789" in table


def test_export_then_reimport_changes_nothing(demo_db: tuple[str, Path]) -> None:
    url, d = demo_db
    out = d / "sites.xlsx"
    geowarn("export", str(out), "--personal-data", db_url=url, cwd=d)
    done = geowarn("import", str(out), db_url=url, cwd=d)
    assert "181 rows: 0 created, 0 updated, 181 unchanged, 0 rejected" in done.stdout


def test_bad_file_is_rejected_with_rows_and_reasons(demo_db: tuple[str, Path]) -> None:
    url, d = demo_db
    bad = d / "bad.csv"
    bad.write_text("统一编号,名称,灾害类型,经度,纬度,乡镇\nX1,甲,滑坡,26.6,118.9,城西街道\nX2,乙,火山,118.9,26.6,城西街道\n",
                   encoding="utf-8")  # fmt: skip
    done = geowarn("import", str(bad), db_url=url, cwd=d, check=False)
    assert done.returncode == 2
    assert "经纬度可能颠倒" in done.stderr and "火山" in done.stderr
    assert "nothing was written" in done.stderr


def test_devices_then_history_through_the_cli(demo_db: tuple[str, Path]) -> None:
    """A county registers a gauge from a ledger and loads its history from a spreadsheet export: the
    commands say what they did, the key goes to an owner-only file, and a bad row is counted, not lost."""
    import sqlite3

    url, d = demo_db
    ledger = d / "devices.csv"
    ledger.write_text(
        "监测点编号,监测点名称,经度,纬度,设备编号,设备类型,上报间隔（秒）,安装时间,行政区划代码\n"
        "CLI-ST1,命令行测试监测点,118.91,26.61,CLI-R1,雨量计,600,2026-06-01 00:00:00,350922100\n",
        encoding="utf-8-sig",
    )
    out = geowarn("devices", "import", str(ledger), db_url=url, cwd=d).stdout
    assert "1 devices created" in out and "1 stations created" in out
    keys = d / "devices.apikeys.csv"
    assert keys.stat().st_mode & 0o077 == 0 and "CLI-R1" in keys.read_text(encoding="utf-8-sig")
    history = d / "history.csv"
    rows = [f"CLI-R1,value,2026-07-01 08:{m:02d}:00,{0.5 + m / 100}" for m in range(0, 60, 10)]
    history.write_text("设备编号,通道,时间,数值\n" + "\n".join([*rows, "CLI-R1,value,not a time,1"]) + "\n",
                       encoding="utf-8")  # fmt: skip
    out = geowarn("readings", "import", str(history), db_url=url, cwd=d).stdout
    assert "6 readings stored, 0 duplicates, 1 rejected" in out and "rejected (bad_time): 1" in out
    again = geowarn("readings", "import", str(history), db_url=url, cwd=d).stdout
    assert "0 readings stored, 6 duplicates, 1 rejected" in again  # idempotent on (sensor, time)
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        stored = conn.execute(
            "SELECT count(*) FROM observation o JOIN sensor s ON s.id = o.sensor_id WHERE s.code = 'CLI-R1.value'"
        ).fetchone()[0]
    assert stored == 6


def test_a_large_file_is_read_in_a_forked_process(demo_db: tuple[str, Path], tmp_path: Path) -> None:
    """The import command starts no thread of its own, so a large file's reader is forked beside the writer."""
    import shutil

    url, _ = demo_db
    copy = tmp_path / "demo.db"
    shutil.copy(url.removeprefix("sqlite:///"), copy)
    feats = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [118.9 + 0.001 * i, 26.6 + 0.001 * i]},
            "properties": {"统一编号": f"BIG{i:03d}", "名称": f"大文件{i}", "灾害类型": "滑坡", "威胁人数": i},
        }
        for i in range(12)
    ]
    big = tmp_path / "big.geojson"
    # JSON allows whitespace anywhere between values: 17 MB of it make a file the size of a province's
    big.write_text(json.dumps({"type": "FeatureCollection", "features": feats}) + " " * (17 << 20), encoding="utf-8")
    done = geowarn("-v", "import", str(big), db_url=f"sqlite:///{copy}", cwd=tmp_path)
    assert "12 rows: 12 created" in done.stdout
    assert "reading in a forked process" in done.stderr
