"""Benchmark: register statistics (``compute_stats``) over 3,000 / 30,000 / 300,000 sites.

Run: ``.venv/bin/python bench/bench_stats.py [--sites 3000 30000 300000] [--repeat 7] [--skip-pg]
[--index] [--no-direct]``.

Sites are spread over 90 counties × 15 townships of one province with realistic shares of types,
scales, statuses and monitoring modes (the filler of ``bench_zoning.py``); statistics are computed
for the whole province (``35``, every site) and for one county. The filler writes with plain SQL,
so the script then fills ``register_summary`` with ``rebuild_summary`` (timed: it is also the cost
of the migration's back-fill). Statistics are read from the summary (``source = summary``, the
default path) and, for comparison, straight from ``hazard_site`` (``source = sites``). Each
measurement runs in a child process: the median of ``--repeat`` runs after one warm-up, and the
child's peak RSS. ``--index`` adds the covering index once suggested for the direct query.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench_zoning import UNITS, drop_pg, pg_database

COVERING_INDEX = (
    "CREATE INDEX ix_hazard_site_stats ON hazard_site (township_code, hazard_type, scale, status, "
    "monitoring_mode, threatened_households, threatened_people, threatened_property_yuan, unit_code)"
)


def child(url: str, scope: str, repeat: int, source: str) -> dict[str, Any]:
    import geowarn.models  # noqa: F401
    from geowarn.db import Database
    from geowarn.inventory.stats import compute_stats

    db = Database(url)
    use_summary = source == "summary"
    with db.read() as s:
        compute_stats(s, scope, use_summary=use_summary)  # warm-up: connection, statement cache, page cache
    times = []
    for _ in range(repeat):
        with db.read() as s:
            t = time.perf_counter()
            st = compute_stats(s, scope, use_summary=use_summary)
            times.append(time.perf_counter() - t)
    db.dispose()
    return {
        "seconds": float(np.median(times)),
        "sites": st["combined"]["sites"] + st["combined"]["not_counted"]["sites"],
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_child(url: str, scope: str, repeat: int, source: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", url, scope, str(repeat), source],
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sites", type=int, nargs="+", default=[3_000, 30_000, 300_000])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--skip-pg", action="store_true")
    ap.add_argument("--index", action="store_true")
    ap.add_argument("--no-direct", action="store_true", help="skip the direct hazard_site path")
    ap.add_argument("--child", nargs=4)
    ap.add_argument("--rebuild-child")
    args = ap.parse_args()
    if args.rebuild_child:
        print(json.dumps(rebuild_child(args.rebuild_child)))
        return
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], int(args.child[2]), args.child[3])))
        return
    sources = ["summary"] if args.no_direct else ["summary", "sites"]
    print("| sites in DB | scope | sites in scope | backend | source | covering index | median ms | peak RSS (MB) |")
    print("|---:|---|---:|---|---|---|---:|---:|")
    rebuilds: list[str] = []
    for n in args.sites:
        for backend in ["sqlite"] if args.skip_pg else ["sqlite", "postgresql"]:
            with tempfile.TemporaryDirectory() as tmp:
                url = f"sqlite:///{Path(tmp) / 'bench.db'}" if backend == "sqlite" else pg_database()
                try:
                    subprocess.run(
                        [sys.executable, str(Path(__file__).with_name("bench_zoning.py")), "--child", url, "fill",
                         str(n), "--zones", "10"], check=True,
                    )  # fmt: skip
                    seconds, cells = _rebuild(url)
                    rebuilds.append(f"| {n:,} | {backend} | {cells:,} | {seconds * 1000:.0f} |")
                    for indexed in [False, True] if args.index else [False]:
                        if indexed:
                            _index(url)
                        for scope in ("350000", UNITS[0]):
                            for source in sources if not indexed else ["sites"]:
                                r = run_child(url, scope, args.repeat, source)
                                print(
                                    f"| {n:,} | {scope} | {r['sites']:,} | {backend} | {source} "
                                    f"| {'yes' if indexed else 'no'} | {r['seconds'] * 1000:.1f} "
                                    f"| {r['peak_mb']:.0f} |",
                                    flush=True,
                                )
                finally:
                    if backend == "postgresql":
                        drop_pg(url)
    print("\n| sites in DB | backend | summary rows | rebuild_summary ms |")
    print("|---:|---|---:|---:|")
    print("\n".join(rebuilds))


def _rebuild(url: str) -> tuple[float, int]:
    """Fill ``register_summary`` from the plain-SQL sites, in a child process: (seconds, rows)."""
    out = subprocess.run([sys.executable, __file__, "--rebuild-child", url], check=True, capture_output=True, text=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    return float(got["seconds"]), int(got["rows"])


def rebuild_child(url: str) -> dict[str, Any]:
    import geowarn.models  # noqa: F401
    from geowarn.db import Database
    from geowarn.inventory.summary import rebuild_summary

    db = Database(url)
    with db.raw_writer() as conn:
        t = time.perf_counter()
        rows = rebuild_summary(conn)
        seconds = time.perf_counter() - t
        if db.is_postgres:
            conn.exec_driver_sql("ANALYZE register_summary")
    db.dispose()
    return {"seconds": seconds, "rows": rows}


def _index(url: str) -> None:
    from geowarn.db import Database

    db = Database(url)
    with db.raw_writer() as conn:
        conn.exec_driver_sql(COVERING_INDEX)
        conn.exec_driver_sql("ANALYZE")
    db.dispose()


if __name__ == "__main__":
    main()
