"""Regional warning end to end: effective rainfall → levels → polygons → exposure.

Province: 1,000 × 800 cells of 1 km (0.01°), 30,000 sites, 5,000 risk zones (goal < 1 s).
Nation: 5,000 × 4,000 cells, 300,000 sites (goal < 10 s), peak memory reported.
Rain fields are smooth seeded storms (sums of Gaussian bands), so the polygons have realistic
shapes rather than salt-and-pepper noise. Run: .venv/bin/python -m bench.bench_regional
"""

from __future__ import annotations

import sys
import time
import tracemalloc

import numpy as np
import shapely

from bench.common import machine, peak_rss_mib, table
from geowarn.regional.exposure import Sites, Zones
from geowarn.regional.grid import Grid
from geowarn.regional.model import HIGH, LOW, MEDIUM
from geowarn.regional.pipeline import run_regional


def storm(rows: int, cols: int, seed: int, peak: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y = np.linspace(0, 1, rows, dtype=np.float32)[:, None]
    x = np.linspace(0, 1, cols, dtype=np.float32)[None, :]
    field = np.zeros((rows, cols), np.float32)
    for _ in range(6):
        cx, cy, sx, sy = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.2), rng.uniform(0.05, 0.2)
        field += rng.uniform(0.3, 1.0) * np.exp(-((x - cx) ** 2) / (2 * sx * sx) - ((y - cy) ** 2) / (2 * sy * sy))
    return (peak * field / field.max()).astype(np.float64)


def case(name: str, rows: int, cols: int, n_sites: int, n_zones: int, seed: int = 7) -> list[object]:
    rng = np.random.default_rng(seed)
    west, north, cell = 100.0, 40.0, 0.01
    days = [Grid.regular(west, north, cell, storm(rows, cols, seed + i, p)) for i, p in enumerate((180, 60, 30))]
    sus = np.where(
        storm(rows, cols, seed + 9, 1.0) > 0.5, HIGH, np.where(storm(rows, cols, seed + 10, 1.0) > 0.3, MEDIUM, LOW)
    )
    susceptibility = Grid.regular(west, north, cell, sus.astype(np.float64))
    lon = rng.uniform(west, west + cols * cell, n_sites)
    lat = rng.uniform(north - rows * cell, north, n_sites)
    towns = np.array([f"T{i:04d}" for i in rng.integers(0, max(1, n_sites // 100), n_sites)], dtype=object)
    sites = Sites(np.arange(n_sites, dtype=np.int64), lon, lat, towns, rng.integers(0, 50, n_sites),
                  rng.integers(0, 12, n_sites))  # fmt: skip
    zx = rng.uniform(west, west + cols * cell - 0.05, n_zones)
    zy = rng.uniform(north - rows * cell, north - 0.05, n_zones)
    zones = Zones(np.arange(n_zones, dtype=np.int64), list(shapely.box(zx, zy, zx + 0.03, zy + 0.02)),
                  rng.integers(0, 500, n_zones), rng.integers(0, 120, n_zones))  # fmt: skip
    run_regional(days[:1], polygons=False)  # warm up imports and GDAL
    tracemalloc.start()
    started = time.perf_counter()
    result = run_regional(days, susceptibility=susceptibility, sites=sites, zones=zones)
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    t = result.timings_s
    n_polys = sum(len(g.geoms) for g in result.polygons.values())
    return [name, f"{rows:,}×{cols:,}", f"{n_sites:,}", f"{n_zones:,}", f"{elapsed:.2f} s", f"{t['levels']:.2f}",
            f"{t['polygons']:.2f}", f"{t['exposure']:.2f}", f"{n_polys:,}", f"{peak / 2**20:,.0f} MiB",
            int(result.max_level)]  # fmt: skip


def main() -> None:
    rows = [case("province", 1000, 800, 30_000, 5_000)]
    if "--small" not in sys.argv:
        rows.append(case("nation", 5000, 4000, 300_000, 20_000))
    print(machine())
    print(table(["case", "cells", "sites", "zones", "end to end", "levels s", "polygons s", "exposure s",
                 "polygons", "peak traced memory", "max level"], rows))  # fmt: skip
    print(f"process peak RSS {peak_rss_mib():,.0f} MiB")


if __name__ == "__main__":
    main()
