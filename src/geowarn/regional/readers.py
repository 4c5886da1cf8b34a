"""Rainfall grid readers and writers, one registry: GeoTIFF, NetCDF and ESRI ASCII grid.

All three go through GDAL (rasterio): it reads what meteorological offices actually send (GeoTIFF
from CMA products, NetCDF from models and radar QPE, ESRI ASCII from county GIS). Each reader checks
what a rain grid must be: one band or variable chosen, a known CRS (a grid without one is taken as
WGS84 longitude/latitude only when its extent says so), finite non-negative millimetres, a size
below ``MAX_CELLS``; problems name the file, band or variable and the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil as rio_shutil
from affine import Affine
from pyproj import CRS
from rasterio.errors import RasterioIOError

from geowarn.errors import GridRejected
from geowarn.regional.grid import WGS84, Grid

MAX_CELLS = 60_000_000  # a 5,000 × 4,000 national grid with room to spare
Reader = Callable[..., Grid]
READERS: dict[str, Reader] = {}
EXTENSIONS: dict[str, str] = {}
DRIVERS = {"geotiff": "GTiff", "netcdf": "netCDF", "ascii": "AAIGrid"}


def reader(name: str, *extensions: str) -> Callable[[Reader], Reader]:
    def register(fn: Reader) -> Reader:
        READERS[name] = fn
        for ext in extensions:
            EXTENSIONS[ext] = name
        return fn

    return register


def _reject(path: Path, what: str, zh: str) -> GridRejected:
    return GridRejected(f"{path.name}: {what}", message_zh=f"{path.name}：{zh}", file=path.name)


def _from_dataset(ds: Any, path: Path, band: int, label: str, *, allow_negative: bool = False) -> Grid:
    if ds.width * ds.height > MAX_CELLS:
        raise _reject(path, f"{ds.width}×{ds.height} cells exceed {MAX_CELLS:,}", f"栅格过大（{ds.width}×{ds.height}）")
    if band < 1 or band > ds.count:
        raise _reject(path, f"no band {band} (the file has {ds.count})", f"没有第{band}波段（共{ds.count}个）")
    values = ds.read(band, masked=True).astype(np.float64).filled(np.nan)
    transform = ds.transform
    if transform.e > 0:  # south-up (common in NetCDF): flip to north-up
        values = values[::-1]
        transform = Affine(transform.a, 0.0, transform.c, 0.0, -transform.e, transform.f + transform.e * ds.height)
    if transform.b != 0 or transform.d != 0:
        raise _reject(path, "rotated grids are not supported", "不支持旋转的栅格")
    crs = CRS.from_user_input(ds.crs.to_wkt()) if ds.crs else None
    if crs is None:
        west, south, east, north = ds.bounds
        if -180 <= west <= east <= 360 and -90 <= south <= north <= 90:
            crs = WGS84
        else:
            raise _reject(path, "no coordinate reference system and the extent is not longitude/latitude",
                          "缺少坐标系，且范围不是经纬度")  # fmt: skip
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        raise _reject(path, f"{label}: every cell is missing", f"{label}：全部为缺测值")
    if not allow_negative and (finite < 0).any():
        n = int((finite < 0).sum())
        raise _reject(path, f"{label}: {n} cell(s) with negative rainfall (min {finite.min():g})",
                      f"{label}：{n}个格点雨量为负值")  # fmt: skip
    if (finite > 2000).any():
        raise _reject(path, f"{label}: rainfall above 2,000 mm in a cell (max {finite.max():g}); wrong units?",
                      f"{label}：格点雨量超过2000毫米，请检查单位")  # fmt: skip
    return Grid(values, transform, crs)


def _open(path: Path, target: str | Path) -> Any:
    try:
        return rasterio.open(target)
    except RasterioIOError as exc:
        raise _reject(path, f"not a readable grid: {exc}", "无法读取该栅格文件") from None


@reader("geotiff", ".tif", ".tiff")
def read_geotiff(path: Path, *, band: int = 1, **_: Any) -> Grid:
    with _open(path, path) as ds:
        if ds.driver != "GTiff":
            raise _reject(path, f"not a GeoTIFF (GDAL sees {ds.driver})", "不是 GeoTIFF 文件")
        return _from_dataset(ds, path, band, f"band {band}")


def _check_ascii_cells(path: Path) -> None:
    """GDAL reads a truncated ESRI ASCII grid without complaint: count the values ourselves."""
    header: dict[str, str] = {}
    with path.open("rb") as fh:
        body = fh.read()
    lines = body.split(b"\n")
    i = 0
    while i < len(lines) and lines[i][:1].isalpha():
        key, _, value = lines[i].decode("ascii", "replace").strip().partition(" ")
        header[key.lower()] = value.strip()
        i += 1
    try:
        expected = int(header["ncols"]) * int(header["nrows"])
    except (KeyError, ValueError):
        raise _reject(path, "ESRI ASCII header needs ncols and nrows", "ESRI ASCII 文件头缺少 ncols/nrows") from None
    found = len(b"\n".join(lines[i:]).split())
    if found != expected:
        raise _reject(
            path, f"{found} values for {header['ncols']}×{header['nrows']} cells", f"数据个数{found}与行列数不符"
        )


@reader("ascii", ".asc", ".grd", ".txt")
def read_ascii(path: Path, *, crs: str | None = None, **_: Any) -> Grid:
    _check_ascii_cells(path)
    with _open(path, path) as ds:
        if ds.driver != "AAIGrid":
            raise _reject(path, f"not an ESRI ASCII grid (GDAL sees {ds.driver})", "不是 ESRI ASCII 栅格")
        grid = _from_dataset(ds, path, 1, "grid")
    if crs:
        grid.crs = CRS.from_user_input(crs)
    return grid


@reader("netcdf", ".nc", ".nc4")
def read_netcdf(path: Path, *, variable: str | None = None, band: int = 1, **_: Any) -> Grid:
    with _open(path, path) as ds:
        subsets = list(ds.subdatasets or [])
        if ds.driver != "netCDF":
            raise _reject(path, f"not NetCDF (GDAL sees {ds.driver})", "不是 NetCDF 文件")
        if subsets:
            names = [s.rsplit(":", 1)[-1] for s in subsets]
            if variable is None:
                rain_like = [
                    n for n in names if n.lower() in ("precip", "precipitation", "rain", "rainfall", "pre", "tp", "pr")
                ]
                if len(rain_like) != 1:
                    raise _reject(path, f"several variables ({', '.join(names)}): name one with variable=",
                                  f"文件含多个变量（{'、'.join(names)}），请指定变量名")  # fmt: skip
                variable = rain_like[0]
            if variable not in names:
                raise _reject(path, f"no variable {variable!r} (has {', '.join(names)})", f"没有变量“{variable}”")
            with _open(path, subsets[names.index(variable)]) as sub:
                return _from_dataset(sub, path, band, f"variable {variable}")
        return _from_dataset(ds, path, band, f"variable {variable or '(only)'}")


def read_grid(path: str | Path, format: str | None = None, **options: Any) -> Grid:
    """Read a rain grid with the reader named by ``format`` or the file's extension."""
    p = Path(path)
    name = format or EXTENSIONS.get(p.suffix.lower())
    if name is None or name not in READERS:
        raise _reject(p, f"unknown grid format (known: {', '.join(sorted(READERS))})", "无法识别的栅格格式")
    if not p.is_file():
        raise _reject(p, "no such file", "文件不存在")
    return READERS[name](p, **options)


def write_grid(grid: Grid, path: str | Path, format: str, *, variable: str = "precip") -> Path:
    """Write ``grid`` in ``format`` (for tests, the demo and exports)."""
    p = Path(path)
    driver = DRIVERS[format]
    rows, cols = grid.shape
    profile: dict[str, Any] = {"driver": driver, "height": rows, "width": cols, "count": 1, "dtype": "float32",
                               "crs": grid.crs.to_wkt(), "transform": grid.transform, "nodata": -9999.0}  # fmt: skip
    data = np.where(np.isfinite(grid.values), grid.values, -9999.0).astype(np.float32)
    if format == "ascii":
        profile["transform"] = grid.transform
        del profile["crs"]
    if format == "netcdf":  # GDAL writes netCDF only by copying a finished dataset (CreateCopy)
        tmp = p.with_suffix(".tmp.tif")
        profile["driver"] = "GTiff"
        with rasterio.open(tmp, "w", **profile) as ds:
            ds.write(data, 1)
        try:
            rio_shutil.copy(tmp, p, driver="netCDF")
        finally:
            tmp.unlink(missing_ok=True)
        return p
    with rasterio.open(p, "w", **profile) as ds:
        ds.write(data, 1)
    return p
