"""Benchmark: assigning hazard sites to risk zones (风险区) by point-in-polygon.

Run: ``.venv/bin/python bench/bench_zoning.py [--sites 3000 30000 300000] [--zones 10000] [--skip-pg]``.

A province-sized box (115.8–120.5°E, 23.5–28.3°N, about Fujian) holds 10,000 irregular risk-zone
polygons of 12 vertices, 0.4–2 km across; half of the sites cluster around zones (as real sites do),
half are spread uniformly. For each size the script reports:

* the pure core ``geowarn.spatial.core.points_in_polygons`` (best of 3);
* ``assign_sites_to_risk_zones`` end to end inside ``db.write`` (load ids and coordinates, load
  zone WKB, the core, delete old links, bulk-write new ones, commit), on SQLite and PostgreSQL;
* on PostgreSQL, the same work done by PostGIS alone: ``INSERT … SELECT … JOIN ON ST_Covers``.

Each database measurement runs in a child process; "peak RSS" is that child's ``ru_maxrss`` and
"Δ RSS" how much the peak grew during the timed call. Databases are filled with SQLAlchemy core
``executemany`` on SQLite and ``COPY`` on PostgreSQL (bbox columns filled by hand).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import shapely

BBOX = (115.8, 23.5, 120.5, 28.3)
PG_SERVER = os.environ.get("GEOWARN_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
UNITS = [f"35{c:02d}{k:02d}" for c in range(1, 10) for k in range(21, 31)]  # 90 county codes


def make_zones(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Zone centres and polygons: irregular 12-gons, 0.2–1 km radius."""
    rng = np.random.default_rng(seed)
    cx = rng.uniform(BBOX[0], BBOX[2], n)
    cy = rng.uniform(BBOX[1], BBOX[3], n)
    ang = np.sort(rng.uniform(0, 2 * np.pi, (n, 12)), axis=1)
    r = rng.uniform(0.002, 0.01, (n, 12))
    rings = np.stack([cx[:, None] + r * np.cos(ang) * 1.12, cy[:, None] + r * np.sin(ang)], axis=2)
    polys = shapely.polygons(np.concatenate([rings, rings[:, :1]], axis=1))
    return cx, cy, polys


def make_sites(n: int, cx: np.ndarray, cy: np.ndarray, seed: int = 2) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    k = rng.integers(0, len(cx), n)
    near = rng.random(n) < 0.5
    xs = np.where(near, cx[k] + rng.normal(0, 0.006, n), rng.uniform(BBOX[0], BBOX[2], n))
    ys = np.where(near, cy[k] + rng.normal(0, 0.006, n), rng.uniform(BBOX[1], BBOX[3], n))
    return np.round(xs, 6), np.round(ys, 6)


def site_rows(xs: np.ndarray, ys: np.ndarray, seed: int = 3) -> list[dict[str, Any]]:
    """Plain rows for ``hazard_site`` with realistic dimension values (also used by bench_stats)."""
    rng = np.random.default_rng(seed)
    n = len(xs)
    unit = rng.integers(0, len(UNITS), n)
    town = rng.integers(0, 15, n)
    types = rng.choice(["landslide", "rockfall", "debris_flow", "unstable_slope", "steep_cut_slope"], n,
                       p=[0.5, 0.3, 0.05, 0.05, 0.1])  # fmt: skip
    scale = rng.choice(["small", "medium", "large"], n, p=[0.85, 0.13, 0.02])
    status = rng.choice(["registered", "under_treatment", "treated", "relocated", "written_off"], n,
                        p=[0.85, 0.04, 0.04, 0.02, 0.05])  # fmt: skip
    mode = rng.choice(["community", "instrumented", "both"], n, p=[0.85, 0.05, 0.10])
    people = rng.integers(1, 120, n)
    hh = np.maximum(1, people // 3)
    prop = rng.integers(1, 5000, n) * 1000
    now = "2026-11-22T00:00:00+00:00"
    rows = []
    for i in range(n):
        tc = f"{UNITS[unit[i]]}{100 + town[i]:03d}"
        rows.append(
            {
                "code": f"B{i:08d}",
                "name": f"site {i}",
                "hazard_type": str(types[i]),
                "lon": float(xs[i]),
                "lat": float(ys[i]),
                "geom": f"SRID=4326;POINT({float(xs[i])!r} {float(ys[i])!r})",
                "wkb": shapely.to_wkb(shapely.Point(xs[i], ys[i])),
                "scale": str(scale[i]),
                "threatened_households": int(hh[i]),
                "threatened_people": int(people[i]),
                "threatened_property_yuan": int(prop[i]),
                "unit_code": f"{tc}201",
                "township_code": tc,
                "monitoring_mode": str(mode[i]),
                "status": str(status[i]),
                "version": 1,
                "extra": "{}",
                "created_at": now,
                "updated_at": now,
                "minx": float(xs[i]),
                "miny": float(ys[i]),
                "maxx": float(xs[i]),
                "maxy": float(ys[i]),
            }
        )
    return rows


SITE_COLS = [
    "code", "name", "hazard_type", "lon", "lat", "geom", "scale", "threatened_households", "threatened_people",
    "threatened_property_yuan", "unit_code", "township_code", "monitoring_mode", "status", "version", "extra",
    "created_at", "updated_at", "minx", "miny", "maxx", "maxy",
]  # fmt: skip


def _copy(raw: Any, table: str, cols: list[str], rows: list[dict[str, Any]]) -> None:
    with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as cp:
        for r in rows:
            cp.write_row([r[c] for c in cols])


def fill(url: str, n_sites: int, n_zones: int) -> None:
    """A fresh migrated database holding ``n_zones`` zones and ``n_sites`` sites."""
    import geowarn.models  # noqa: F401
    from geowarn.db import Database
    from geowarn.db.migrate import upgrade

    upgrade(url)
    cx, cy, polys = make_zones(n_zones)
    xs, ys = make_sites(n_sites, cx, cy)
    rows = site_rows(xs, ys)
    b = shapely.bounds(polys)
    zone_rows = [
        {
            "code": f"Z{i:06d}",
            "name": f"zone {i}",
            "grade": ("high", "medium", "low")[i % 3],
            "geom": "SRID=4326;" + shapely.to_wkt(shapely.multipolygons([p]), rounding_precision=-1),
            "wkb": shapely.to_wkb(shapely.multipolygons([p])),
            "households": 0,
            "people": 0,
            "unit_code": f"{UNITS[i % len(UNITS)]}",
            "created_at": "2026-11-22T00:00:00+00:00",
            "updated_at": "2026-11-22T00:00:00+00:00",
            "minx": float(b[i, 0]),
            "miny": float(b[i, 1]),
            "maxx": float(b[i, 2]),
            "maxy": float(b[i, 3]),
        }
        for i, p in enumerate(polys)
    ]
    zcols = ["code", "name", "grade", "geom", "households", "people", "unit_code", "created_at", "updated_at",
             "minx", "miny", "maxx", "maxy"]  # fmt: skip
    db = Database(url)
    with db.raw_writer() as conn:
        if db.is_postgres:
            raw = conn.connection.driver_connection
            _copy(raw, "risk_zone", zcols, zone_rows)
            _copy(raw, "hazard_site", SITE_COLS, rows)
        else:
            for table, cols, data in (("risk_zone", zcols, zone_rows), ("hazard_site", SITE_COLS, rows)):
                names = ", ".join(cols)
                marks = ", ".join("?" for _ in cols)
                conn.exec_driver_sql(
                    f"INSERT INTO {table} ({names}) VALUES ({marks})",
                    [tuple(r["wkb"] if c == "geom" else r[c] for c in cols) for r in data],
                )
    if db.is_postgres:
        with db.engine.connect() as c:
            c.exec_driver_sql("ANALYZE")
            c.commit()
    db.dispose()


def pg_database() -> str:
    import psycopg

    name = f"geowarn_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{PG_SERVER}/{name}"


def drop_pg(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(url: str, what: str, repeat: int) -> dict[str, Any]:
    """Runs in a child process: time one operation on a filled database."""
    import geowarn.models  # noqa: F401
    from geowarn.db import Database
    from geowarn.inventory.zoning import assign_sites_to_risk_zones

    db = Database(url)
    with db.write("bench") as s:
        s.execute(__import__("sqlalchemy").text("DELETE FROM risk_zone_site"))
    before = _maxrss_mb()
    times, links = [], 0
    for _ in range(repeat + 1):
        t = time.perf_counter()
        if what == "postgis":
            with db.write("bench") as s:
                s.execute(__import__("sqlalchemy").text("DELETE FROM risk_zone_site"))
                res = s.execute(
                    __import__("sqlalchemy").text(
                        "INSERT INTO risk_zone_site (zone_id, site_id) SELECT z.id, h.id FROM risk_zone z "
                        "JOIN hazard_site h ON ST_Covers(z.geom, h.geom)"
                    )
                )
                links = res.rowcount
        else:
            with db.write("bench") as s:
                links = assign_sites_to_risk_zones(s)
        times.append(time.perf_counter() - t)
    db.dispose()
    return {
        "first": times[0],
        "seconds": float(np.median(times[1:])),
        "links": links,
        "peak_mb": _maxrss_mb(),
        "delta_mb": _maxrss_mb() - before,
    }


def core(n_sites: int, n_zones: int) -> dict[str, Any]:
    import tracemalloc

    from geowarn.spatial.core import points_in_polygons

    cx, cy, polys = make_zones(n_zones)
    xs, ys = make_sites(n_sites, cx, cy)
    best = min(_timed(lambda: points_in_polygons(xs, ys, polys)) for _ in range(3))
    tracemalloc.start()
    a, _ = points_in_polygons(xs, ys, polys)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return {"seconds": best, "links": len(a), "traced_mb": peak}


def _timed(fn: Any) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def run_child(url: str, what: str, repeat: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", url, what, str(repeat)], check=True, capture_output=True, text=True
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sites", type=int, nargs="+", default=[3_000, 30_000, 300_000])
    ap.add_argument("--zones", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-pg", action="store_true")
    ap.add_argument("--child", nargs=3)
    args = ap.parse_args()
    if args.child:
        if args.child[1] == "fill":
            fill(args.child[0], int(args.child[2]), args.zones)
            return
        print(json.dumps(child(args.child[0], args.child[1], int(args.child[2]))))
        return
    print("| sites | zones | links | what | backend | first run s (empty links) | re-run s (median) "
          "| peak RSS (MB) | Δ RSS (MB) / traced (MB) |")  # fmt: skip
    print("|---:|---:|---:|---|---|---:|---:|---:|---:|")
    for n in args.sites:
        c = core(n, args.zones)
        print(f"| {n:,} | {args.zones:,} | {c['links']:,} | core points_in_polygons | — | — | {c['seconds']:.3f} | — "
              f"| {c['traced_mb']:.0f} traced |", flush=True)  # fmt: skip
        backends = ["sqlite"] if args.skip_pg else ["sqlite", "postgresql"]
        for backend in backends:
            with tempfile.TemporaryDirectory() as tmp:
                url = f"sqlite:///{Path(tmp) / 'bench.db'}" if backend == "sqlite" else pg_database()
                try:
                    # filled by a child too, so that no process measured inherits the filler's peak RSS
                    filler = [sys.executable, __file__, "--child", url, "fill", str(n), "--zones", str(args.zones)]
                    subprocess.run(filler, check=True)
                    whats = ["assign"] + (["postgis"] if backend == "postgresql" else [])
                    for what in whats:
                        r = run_child(url, what, args.repeat)
                        label = "assign_sites_to_risk_zones" if what == "assign" else "PostGIS INSERT…SELECT ST_Covers"
                        print(f"| {n:,} | {args.zones:,} | {r['links']:,} | {label} | {backend} | {r['first']:.3f} "
                              f"| {r['seconds']:.3f} | {r['peak_mb']:.0f} | {r['delta_mb']:.0f} |",
                              flush=True)  # fmt: skip
                finally:
                    if backend == "postgresql":
                        drop_pg(url)


if __name__ == "__main__":
    main()
