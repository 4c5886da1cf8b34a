"""Import throughput: GeoJSON files of 3,000 / 30,000 / 300,000 hazard sites into fresh databases.

Each import runs in a child process (so ``ru_maxrss`` is that import's peak memory) against a new
SQLite file and a new PostgreSQL database (created and dropped per run). A file of 16 MB or more is
read by a process the import forks (``geowarn.io.pipeline``): its peak is reported beside the
writer's. Prints a markdown table.

    .venv/bin/python bench/bench_import.py [--sizes 3000,30000,300000] [--pg postgresql://postgres@127.0.0.1:5432]
        [--backends sqlite,postgresql] [--repeat 5 --pause 20]

``--repeat`` imports each size several times per backend and prints the median; ``--pause`` rests
before each import (this machine slows when imports run back to back: see docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing as mp
import os
import resource
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import orjson

COUNTY = "350922"
TOWNSHIPS = [f"{COUNTY}{i:03d}" for i in range(100, 114)]
BOX = (118.6, 26.4, 119.3, 27.0)
TYPES = ["滑坡", "崩塌", "泥石流", "地面塌陷", "不稳定斜坡"]
SCALES = ["小型", "中型", "大型"]


def make_geojson(path: Path, n: int, seed: int = 1) -> None:
    """``n`` sites spread over the county box, with persons, counts and 万元 amounts."""
    rng = np.random.default_rng(seed)
    lon = rng.uniform(BOX[0] + 0.001, BOX[2] - 0.001, n).round(6)
    lat = rng.uniform(BOX[1] + 0.001, BOX[3] - 0.001, n).round(6)
    feats = []
    for i in range(n):
        t = TOWNSHIPS[i % len(TOWNSHIPS)]
        feats.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [float(lon[i]), float(lat[i])]},
                "properties": {
                    "统一编号": f"{COUNTY}{i:08d}",
                    "名称": f"隐患点{i}",
                    "灾害类型": TYPES[i % 5],
                    "行政区划代码": t,
                    "规模等级": SCALES[i % 3],
                    "威胁户数": int(i % 17),
                    "威胁人数": int(i % 61),
                    "威胁财产（万元）": round(float(i % 997) / 10, 1),
                    "防灾责任人": f"责任人{i % 200}",
                    "责任人电话": f"139{i % 200:08d}",
                    "监测人": f"监测员{i}",
                    "监测人电话": f"137{i:08d}",
                    "位置": f"某村某组{i % 50}号",
                },
            }
        )
    path.write_bytes(orjson.dumps({"type": "FeatureCollection", "features": feats}))


def _child(url: str, path: str, queue: Any) -> None:
    import shapely

    import geowarn.models  # noqa: F401
    from geowarn.admin.models import AdminUnit
    from geowarn.db import Database
    from geowarn.db.migrate import upgrade
    from geowarn.io.importer import import_file

    upgrade(url)
    db = Database(url)
    with db.write("bench") as s:
        s.add(AdminUnit(code=COUNTY, name="古田县", level="county", geom=shapely.MultiPolygon([shapely.box(*BOX)])))
        for i, t in enumerate(TOWNSHIPS):
            s.add(AdminUnit(code=t, name=f"乡镇{i}", level="township", parent_code=COUNTY))
    t0 = time.perf_counter()
    res = import_file(db, Path(path), scope_unit=COUNTY, actor="bench")
    dt = time.perf_counter() - t0
    assert res.created == res.total, res
    db.dispose()
    reader = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the forked reader, if any
    queue.put((dt, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, reader))


def run_one(url: str, path: Path) -> tuple[float, float, float]:
    # Each import starts with no writeback pending from the one before (a previous run's 200 MB
    # database still being flushed slowed the next one's checkpoint fsync by a second).
    os.sync()
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(url, str(path), q))
    p.start()
    out = q.get()
    p.join()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="3000,30000,300000")
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--repeat", type=int, default=1, help="imports of each size per backend (a median is printed)")
    ap.add_argument("--pause", type=float, default=0.0, help="seconds of rest before each import")
    args = ap.parse_args()
    import psycopg

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(s) for s in args.sizes.split(",")):
            src = Path(tmp) / f"sites_{n}.geojson"
            make_geojson(src, n)
            mb = src.stat().st_size / 1e6
            for backend, run in itertools.product(args.backends.split(","), range(args.repeat)):
                time.sleep(args.pause)
                if backend == "sqlite":
                    db_path = Path(tmp) / f"bench_{n}_{run}.db"
                    dt, rss, reader = run_one(f"sqlite:///{db_path}", src)
                    for f in Path(tmp).glob(f"{db_path.name}*"):
                        f.unlink()
                else:
                    name = f"geowarn_bench_{uuid.uuid4().hex[:8]}"
                    with psycopg.connect(f"{args.pg}/postgres", autocommit=True) as c:
                        c.execute(f'CREATE DATABASE "{name}"')
                    try:
                        dt, rss, reader = run_one(f"{args.pg}/{name}", src)
                    finally:
                        with psycopg.connect(f"{args.pg}/postgres", autocommit=True) as c:
                            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                rows.append((n, backend, mb, dt, n / dt, rss, reader))
    print("| sites | backend | file MB | seconds | sites/s | peak RSS MB, writer | peak RSS MB, forked reader |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for n, b, mb, dt, rate, rss, reader in rows:
        shown = f"{reader:,.0f}" if reader else "—"
        print(f"| {n:,} | {b} | {mb:.1f} | {dt:.2f} | {rate:,.0f} | {rss:,.0f} | {shown} |")
    if args.repeat > 1:
        print()
        for (n, b), group in itertools.groupby(sorted(rows, key=lambda r: (r[0], r[1])), key=lambda r: (r[0], r[1])):
            rates = sorted(r[4] for r in group)
            print(
                f"median of {len(rates)}: {n:,} sites, {b}: {statistics.median(rates):,.0f} sites/s "
                f"(lowest {rates[0]:,.0f}, highest {rates[-1]:,.0f})"
            )


if __name__ == "__main__":
    main()
