"""Regional warning end to end: rain files → effective rainfall → levels → polygons → exposure.

Province: 1,000 × 800 cells of 0.01° (about 1 km), 30,000 sites, 5,000 risk zones (goal < 1 s).
Nation: 5,000 × 4,000 cells, 300,000 sites, 50,000 risk zones (goal < 10 s), peak memory reported.

Synthetic and seeded: rain is a few smooth storm cells plus 10-km-scale showers (so level edges are
ragged, not circles), three days of it; susceptibility is a blotchy zoning (high / medium / low /
none) given as a raster and, for the province, also as polygons; risk zones are small polygons
(0.2-3 km across). "run" is ``run_regional`` on grids in memory; "read" reads the three rain days
from GeoTIFF files. Peak memory: tracemalloc's peak during one run (numpy and shapely allocations
beyond the inputs), and the process peak RSS at the end.

Run: .venv/bin/python -m bench.bench_regional [--small]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from rasterio import features
from scipy import ndimage

from bench.common import machine, peak_rss_mib, table
from geowarn.regional import Sites, Zones, Zoning, read_grid, run_regional, write_grid
from geowarn.regional.grid import Grid
from geowarn.regional.idw import idw

WEST, NORTH, CELL = 100.0, 40.0, 0.01


def smooth_noise(rows: int, cols: int, scale: int, rng: np.random.Generator) -> np.ndarray:
    """Noise with features about ``scale`` cells across, in [0, 1]."""
    small = ndimage.gaussian_filter(rng.standard_normal((rows // scale + 3, cols // scale + 3)), 1.0)
    field = ndimage.zoom(small.astype(np.float32), scale, order=1)[:rows, :cols]
    lo, hi = float(field.min()), float(field.max())
    return (field - lo) / (hi - lo)


def storm_day(rows: int, cols: int, peak: float, rng: np.random.Generator) -> np.ndarray:
    y = np.linspace(0, 1, rows, dtype=np.float32)[:, None]
    x = np.linspace(0, 1, cols, dtype=np.float32)[None, :]
    field = np.zeros((rows, cols), np.float32)
    for _ in range(5):
        cx, cy, sx, sy = rng.uniform(0, 1, 2).tolist() + rng.uniform(0.05, 0.2, 2).tolist()
        field += rng.uniform(0.3, 1.0) * np.exp(-((x - cx) ** 2) / (2 * sx * sx) - ((y - cy) ** 2) / (2 * sy * sy))
    field *= 0.4 + 1.2 * smooth_noise(rows, cols, 10, rng)  # showers about 10 km across
    return (peak * field / field.max()).astype(np.float32)


def world(rows: int, cols: int, n_sites: int, n_zones: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    days = [Grid.regular(WEST, NORTH, CELL, storm_day(rows, cols, p, rng), crs=4490) for p in (260.0, 90.0, 50.0)]
    s = 0.6 * smooth_noise(rows, cols, 30, rng) + 0.4 * smooth_noise(rows, cols, 6, rng)  # blotchy zoning
    grades = np.select([s > 0.6, s > 0.48, s > 0.36], [3, 2, 1], 0).astype(np.float32)
    susceptibility = Grid.regular(WEST, NORTH, CELL, grades, crs=4490)
    east, south = WEST + cols * CELL, NORTH - rows * CELL
    lon, lat = rng.uniform(WEST, east, n_sites), rng.uniform(south, NORTH, n_sites)
    towns = np.array([f"{i:09d}" for i in rng.integers(0, max(1, n_sites // 20), n_sites)], dtype=object)
    sites = Sites(np.arange(n_sites), lon, lat, towns, rng.integers(0, 50, n_sites), rng.integers(0, 12, n_sites),
                  crs=4490)  # fmt: skip
    zx, zy = rng.uniform(WEST, east, n_zones), rng.uniform(south, NORTH, n_zones)
    radius = rng.uniform(0.001, 0.015, n_zones)  # 0.2-3 km across
    geoms = shapely.buffer(shapely.points(zx, zy), radius, quad_segs=4)
    zones = Zones(np.arange(n_zones), geoms, rng.integers(0, 500, n_zones), rng.integers(0, 120, n_zones),
                  township=towns[rng.integers(0, n_sites, n_zones)], crs=4490)  # fmt: skip
    return {"days": days, "susceptibility": susceptibility, "sites": sites, "zones": zones}


def zoning_polygons(susceptibility: Grid) -> Zoning:
    geoms, grades = [], []
    values = susceptibility.values.astype(np.uint8)
    for geom, value in features.shapes(values, mask=values > 0, transform=susceptibility.transform):
        geoms.append(shapely.geometry.shape(geom))
        grades.append(int(value))
    return Zoning(geoms, grades, susceptibility.crs)


def case(
    name: str, rows: int, cols: int, n_sites: int, n_zones: int, *, repeat: int, polygons_zoning: bool
) -> list[Any]:
    w = world(rows, cols, n_sites, n_zones, seed=7)
    sus: Grid | Zoning = zoning_polygons(w["susceptibility"]) if polygons_zoning else w["susceptibility"]
    with tempfile.TemporaryDirectory() as tmp:
        paths = [write_grid(d, Path(tmp) / f"day{i}.tif") for i, d in enumerate(w["days"])]
        t0 = time.perf_counter()
        days = [read_grid(p) for p in paths]
        read_s = time.perf_counter() - t0

    def run() -> Any:
        return run_regional(days, susceptibility=sus, sites=w["sites"], zones=w["zones"])

    run()  # warm up imports and GDAL
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - t0)
    assert result is not None
    tracemalloc.start()
    run()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    t = result.timings_s
    n_polys = sum(len(g.geoms) for g in result.polygons.values())
    n_vertices = sum(int(shapely.get_num_coordinates(g)) for g in result.polygons.values())
    share = np.bincount(result.levels.ravel(), minlength=5)[1:] / result.levels.size * 100
    zoning = f"{len(sus.geoms):,} polygons" if isinstance(sus, Zoning) else "raster"
    return [name, f"{rows:,}×{cols:,}", f"{n_sites:,}", f"{n_zones:,}", zoning, f"{read_s:.2f}",
            f"{t['effective'] + t['levels']:.2f}", f"{t['polygons']:.2f}", f"{t['exposure']:.2f}",
            f"**{statistics.median(times):.2f} s**", f"{read_s + statistics.median(times):.2f} s",
            f"{n_polys:,} / {n_vertices:,}", "/".join(f"{x:.0f}" for x in share),
            f"{peak / 2**20:,.0f} MiB"]  # fmt: skip


def idw_case(name: str, rows: int, cols: int, n_gauges: int) -> list[Any]:
    rng = np.random.default_rng(3)
    like = Grid.regular(WEST, NORTH, CELL, np.zeros((rows, cols), np.float32), crs=4490)
    x = rng.uniform(WEST, WEST + cols * CELL, n_gauges)
    y = rng.uniform(NORTH - rows * CELL, NORTH, n_gauges)
    v = rng.gamma(2, 20, n_gauges)
    t0 = time.perf_counter()
    out = idw(x, y, v, like, k=8, max_km=50)
    return [name, f"{rows:,}×{cols:,}", f"{n_gauges:,}", f"{time.perf_counter() - t0:.2f} s",
            f"{int(np.isnan(out.values).sum()):,}"]  # fmt: skip


def main() -> None:
    small = "--small" in sys.argv
    rows = [
        case("province, zoning raster", 1000, 800, 30_000, 5_000, repeat=5, polygons_zoning=False),
        case("province, zoning polygons", 1000, 800, 30_000, 5_000, repeat=5, polygons_zoning=True),
    ]
    if not small:
        rows.append(case("nation, zoning raster", 5000, 4000, 300_000, 50_000, repeat=1, polygons_zoning=False))
    print(machine())
    print(table(["case", "cells", "sites", "zones", "zoning", "read 3 GeoTIFF s", "effective + levels s",
                 "polygons s", "exposure s", "run (median)", "read + run", "area polygons / vertices",
                 "cells blue/yellow/orange/red %", "peak traced memory"], rows))  # fmt: skip
    print()
    idw_rows = [idw_case("province", 1000, 800, 2_000)]
    if not small:
        idw_rows.append(idw_case("nation", 5000, 4000, 60_000))
    print(table(["IDW (k = 8, 50 km)", "cells", "gauges", "time", "cells without a gauge"], idw_rows))
    print(f"process peak RSS {peak_rss_mib():,.0f} MiB")


if __name__ == "__main__":
    main()
