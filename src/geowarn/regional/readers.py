"""Rainfall (and susceptibility) grid readers and writers behind one registry.

As in :mod:`geowarn.io.readers`, ``READERS`` maps a format name to a reader and ``_SUFFIX`` a file
extension to a format; :func:`register_reader` adds a plugin. The formats meteorological offices
send:

* ``geotiff`` — CMA and provincial products; read with rasterio (GDAL, bundled in its wheels).
* ``netcdf`` — model output and radar QPE (CF conventions); also rasterio/GDAL, which understands
  CF georeferencing (lat/lon or projected coordinate variables, ``grid_mapping``), south-up files
  and extra dimensions (time steps become bands). Written for tests with ``scipy.io.netcdf_file``
  (NetCDF-3), so reading is checked against an independent writer.
* ``ascii`` — ESRI ASCII grid from county GIS; our own parser (:mod:`.esri_ascii`).

Every reader returns a :class:`Grid` in millimetres with NaN for no data, after checking what a
rain grid must be: one band or variable chosen, a CRS that fits the coordinates (a Gauss–Krüger
grid without its zone prefix lies far outside its CRS's area of use), finite non-negative values
below ``MAX_DAILY_MM`` and not all missing, and no more cells than ``MAX_CELLS``. Every problem is
a :class:`GridRejected` naming the file, the band or variable, and the reason (also as the extras
``file``, ``part`` and ``reason`` of the RFC 9457 problem; ``row``/``column`` or ``line`` where known).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from affine import Affine
from pyproj import CRS, Transformer
from pyproj.enums import WktVersion

from geowarn.errors import GridRejected
from geowarn.regional.esri_ascii import read_esri_ascii, write_esri_ascii
from geowarn.regional.grid import WGS84, Grid, as_crs, require_aligned, same_crs

MAX_CELLS = 60_000_000  # a 5,000 × 4,000 national grid three times over
MAX_DAILY_MM = 2_000.0  # the world's 24-hour record is 1,825 mm (Foc-Foc, Réunion, 1966)
Kind = Literal["rain", "grades", "any"]
GridReader = Callable[..., Grid]
GridWriter = Callable[..., Path]

RAIN_NAMES = {"precip", "precipitation", "prcp", "pre", "pr", "rain", "rainfall", "tp", "apcp", "qpe", "r24", "rr"}
RAIN_STANDARD_NAMES = {"precipitation_amount", "lwe_thickness_of_precipitation_amount", "rainfall_amount"}
_UNITS_MM = {"", "mm", "millimeter", "millimeters", "millimetre", "millimetres", "kg m-2", "kg/m2", "kg m**-2",
             "kg.m-2", "kg/m^2", "mm/d", "mm/day", "mm d-1", "mm day-1", "mm/24h", "毫米"}  # fmt: skip
_UNITS_M = {"m", "meter", "meters", "metre", "metres"}  # ERA5 ``tp``


def _reject(path: Path, label: str, what: str, zh: str, **extra: Any) -> GridRejected:
    where = f"{path.name} ({label})" if label else path.name
    where_zh = f"{path.name}（{label}）" if label else path.name
    return GridRejected(f"{where}: {what}", message_zh=f"{where_zh}：{zh}", file=path.name, part=label or None,
                        reason=what, **extra)  # fmt: skip


# --------------------------------------------------------------------------- checks shared by all formats


def check_crs(path: Path, label: str, bounds: tuple[float, float, float, float], crs: CRS) -> None:
    """Refuse a CRS that does not fit the coordinates: longitudes/latitudes out of range for a
    geographic CRS, or a projected grid whose centre lies outside the CRS's area of use."""
    west, south, east, north = bounds
    if crs.is_geographic:
        if west < -180 or east > 360 or south < -90 or north > 90:
            raise _reject(path, label, f"coordinates ({west:g}…{east:g}, {south:g}…{north:g}) are not longitude/"
                          f"latitude although the CRS is {crs.name}: wrong CRS?",
                          f"坐标（{west:g}…{east:g}，{south:g}…{north:g}）不是经纬度，"
                          f"但坐标系为 {crs.name}，坐标系有误？")  # fmt: skip
        return
    area = crs.area_of_use
    if area is None:
        return
    lon, lat = Transformer.from_crs(crs, WGS84, always_xy=True).transform((west + east) / 2, (south + north) / 2)
    margin = 1.5  # degrees: a 3° Gauss–Krüger zone's grid may spill into the next zone
    inside = area.west - margin <= lon <= area.east + margin and area.south - margin <= lat <= area.north + margin
    if not (np.isfinite(lon) and np.isfinite(lat) and inside):
        raise _reject(path, label, f"the grid's centre ({lon:.3g}, {lat:.3g}) lies outside the area of use of "
                      f"{crs.name} ({area.west:g}…{area.east:g}E, {area.south:g}…{area.north:g}N): wrong CRS or "
                      "Gauss–Krüger zone prefix?",
                      f"栅格中心（{lon:.3g}，{lat:.3g}）不在坐标系 {crs.name} 的适用范围内："
                      "坐标系或高斯-克吕格带号有误？")  # fmt: skip


def check_values(path: Path, label: str, values: npt.NDArray[np.floating[Any]], kind: Kind, max_mm: float) -> None:
    """Rain must be finite, non-negative and below ``max_mm`` where present, and not all missing."""
    finite = np.isfinite(values)
    if not finite.any():
        raise _reject(path, label, "every cell is no data", "全部格点为缺测值（NoData）")
    if kind != "rain":
        return
    if np.isinf(values).any():
        raise _reject(path, label, "infinite values", "含无穷大值")
    with np.errstate(invalid="ignore"):
        negative = values < 0
        if negative.any():
            n = int(negative.sum())
            r, c = (int(v) for v in np.argwhere(negative)[0])
            low = float(np.nanmin(values))
            hint = " (an undeclared nodata value?)" if low <= -99 else ""
            raise _reject(path, label, f"{n:,} cell(s) with negative rainfall, first at row {r}, column {c}; "
                          f"min {low:g}{hint}", f"{n}个格点雨量为负值（首个在第{r}行第{c}列，最小值{low:g}）",
                          row=r, column=c)  # fmt: skip
        high = float(np.nanmax(values))
    if high > max_mm:
        raise _reject(path, label, f"rainfall of {high:g} mm in a cell exceeds {max_mm:g} mm: wrong units?",
                      f"格点雨量{high:g}毫米超过{max_mm:g}毫米，请检查单位")  # fmt: skip


def _mm_factor(path: Path, label: str, units: str, kind: Kind) -> float:
    u = units.strip().lower()
    if kind != "rain" or u in _UNITS_MM:
        return 1.0
    if u in _UNITS_M:
        return 1000.0
    raise _reject(path, label, f"units {units!r} are not a rainfall depth (need mm, kg m-2 or m; rates such as "
                  "mm/h must be summed to daily totals first)", f"单位“{units}”不是降雨量（应为毫米）")  # fmt: skip


def _authority(crs: CRS | None) -> CRS | None:
    """The EPSG CRS a file's WKT stands for (WKT1 and ESRI WKT drop its area of use and name it
    differently), or the CRS as given when it has no EPSG equivalent."""
    if crs is None:
        return None
    code = crs.to_epsg(min_confidence=70)
    if code is not None:
        return CRS.from_epsg(code)
    code = crs.to_epsg(min_confidence=20)  # e.g. easting/northing where EPSG says northing/easting
    if code is not None and same_crs(CRS.from_epsg(code), crs):
        return CRS.from_epsg(code)
    return crs


def _finish(
    path: Path, label: str, values: npt.NDArray[np.floating[Any]], transform: Affine, file_crs: CRS | None,
    *, crs: CRS | str | int | None, units: str, kind: Kind, max_mm: float,
) -> Grid:  # fmt: skip
    given = as_crs(crs) if crs is not None else None
    if file_crs is not None and given is not None and not same_crs(file_crs, given):
        raise _reject(path, label, f"the file's CRS {file_crs.name} differs from the expected {given.name}",
                      f"文件坐标系 {file_crs.name} 与指定的 {given.name} 不一致")  # fmt: skip
    chosen = _authority(file_crs) or given
    rows, cols = values.shape
    bounds = (transform.c, transform.f + rows * transform.e, transform.c + cols * transform.a, transform.f)
    if chosen is None:
        west, south, east, north = bounds
        if not (-180 <= west <= east <= 360 and -90 <= south <= north <= 90):
            raise _reject(path, label, "no coordinate reference system, and the extent is not longitude/latitude",
                          "缺少坐标系，且范围不是经纬度")  # fmt: skip
        chosen = WGS84  # documented assumption: a CRS-less lon/lat grid (WGS84 and CGCS2000 agree within 1 m)
    check_crs(path, label, bounds, chosen)
    factor = _mm_factor(path, label, units, kind)
    if factor != 1.0:
        values *= factor
    check_values(path, label, values, kind, max_mm)
    return Grid(values, transform, chosen, f"{path.name} ({label})" if label else path.name)


# --------------------------------------------------------------------------- GeoTIFF and NetCDF through GDAL


def _open(path: Path, target: str | Path | None = None) -> Any:
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioError

    try:
        with warnings.catch_warnings():  # a NetCDF container of several variables has no geotransform
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            return rasterio.open(target or path)
    except RasterioError as exc:
        reason = str(exc).splitlines()[0][:200]
        raise _reject(path, "", f"not a readable grid (corrupt or another format): {reason}",
                      "文件损坏或不是可识别的栅格") from None  # fmt: skip


def _read_band(
    ds: Any, path: Path, band: int, label: str, max_cells: int
) -> tuple[npt.NDArray[np.float32], Affine, CRS | None, str]:
    from rasterio.errors import RasterioError

    if ds.width * ds.height > max_cells:
        raise _reject(path, label, f"{ds.width:,}×{ds.height:,} cells exceed the limit of {max_cells:,}",
                      f"栅格过大（{ds.width}×{ds.height}，上限{max_cells}个格点）",
                      cells=ds.width * ds.height)  # fmt: skip
    if not 1 <= band <= ds.count:
        raise _reject(path, label, f"no band {band} (the file has {ds.count})", f"没有第{band}波段（共{ds.count}个）")
    transform = ds.transform
    if transform.is_identity and ds.crs is None:
        raise _reject(
            path, label, "not georeferenced (no geotransform and no CRS)", "缺少地理参考（无坐标变换与坐标系）"
        )
    if transform.b != 0 or transform.d != 0:
        raise _reject(path, label, "rotated grids are not supported", "不支持旋转的栅格")
    try:
        data = ds.read(band, masked=True)
    except RasterioError as exc:
        raise _reject(path, label, f"cannot read the data (file truncated or corrupt): {str(exc)[:200]}",
                      "无法读取数据（文件不完整或已损坏）") from None  # fmt: skip
    values = np.ma.filled(data.astype(np.float32), np.nan)
    scale, offset = ds.scales[band - 1], ds.offsets[band - 1]
    if scale not in (None, 1.0) or offset not in (None, 0.0):
        values = values * np.float32(scale or 1.0) + np.float32(offset or 0.0)
    if transform.e > 0:  # south-up: flip to north-up
        values = values[::-1].copy()
        transform = Affine(transform.a, 0.0, transform.c, 0.0, -transform.e, transform.f + transform.e * ds.height)
    crs = CRS.from_user_input(ds.crs.to_wkt()) if ds.crs else None
    units = (ds.units[band - 1] if ds.units else "") or ds.tags(band).get("units", "")
    return values, transform, crs, str(units)


def read_geotiff(
    path: Path, *, band: int = 1, crs: CRS | str | int | None = None, kind: Kind = "rain",
    max_cells: int = MAX_CELLS, max_mm: float = MAX_DAILY_MM,
) -> Grid:  # fmt: skip
    """One band of a GeoTIFF."""
    with _open(path) as ds:
        if ds.driver != "GTiff":
            raise _reject(path, "", f"not a GeoTIFF (GDAL reads it as {ds.driver})", "不是 GeoTIFF 文件")
        label = f"band {band}"
        values, transform, file_crs, units = _read_band(ds, path, band, label, max_cells)
    return _finish(path, label, values, transform, file_crs, crs=crs, units=units, kind=kind, max_mm=max_mm)


def _pick_variable(path: Path, names: list[str], variable: str | None) -> str:
    if variable is not None:
        if variable not in names:
            raise _reject(path, f"variable {variable}", f"no such variable (the file has {', '.join(names)})",
                          f"没有该变量（文件中有：{'、'.join(names)}）")  # fmt: skip
        return variable
    if len(names) == 1:
        return names[0]
    rain = [n for n in names if n.lower() in RAIN_NAMES]
    if len(rain) != 1:
        raise _reject(path, "", f"several variables ({', '.join(names)}): name the rainfall with variable=",
                      f"文件含多个变量（{'、'.join(names)}），请指定降雨变量名")  # fmt: skip
    return rain[0]


def read_netcdf(
    path: Path, *, variable: str | None = None, band: int = 1, crs: CRS | str | int | None = None,
    kind: Kind = "rain", max_cells: int = MAX_CELLS, max_mm: float = MAX_DAILY_MM,
) -> Grid:  # fmt: skip
    """One 2-D slice of a NetCDF variable: ``band`` counts the steps of its extra dimension (time)."""
    with _open(path) as top:
        if top.driver != "netCDF":
            raise _reject(path, "", f"not NetCDF (GDAL reads it as {top.driver})", "不是 NetCDF 文件")
        subsets = list(top.subdatasets or [])
        if not subsets:  # a file with a single 2-D/3-D variable opens as that variable
            name = top.tags(1).get("NETCDF_VARNAME", "") if top.count else ""
            if top.count == 0:
                raise _reject(path, "", "no gridded variable in the file", "文件中没有格点变量")
            _pick_variable(path, [name], variable)
            return _netcdf_variable(top, path, name, band, crs, kind, max_cells, max_mm)
    names = [s.rsplit(":", 1)[-1] for s in subsets]
    chosen = _pick_variable(path, names, variable)
    with _open(path, subsets[names.index(chosen)]) as ds:
        return _netcdf_variable(ds, path, chosen, band, crs, kind, max_cells, max_mm)


def _netcdf_variable(
    ds: Any, path: Path, name: str, band: int, crs: CRS | str | int | None, kind: Kind, max_cells: int,
    max_mm: float,
) -> Grid:  # fmt: skip
    label = f"variable {name}" + (f", step {band}" if ds.count > 1 else "")
    if 1 <= band <= ds.count:
        steps = {k[len("NETCDF_DIM_") :]: v for k, v in ds.tags(band).items() if k.startswith("NETCDF_DIM_")}
        if steps:
            label += " (" + ", ".join(f"{k}={v}" for k, v in steps.items()) + ")"
    values, transform, file_crs, units = _read_band(ds, path, band, label, max_cells)
    return _finish(path, label, values, transform, file_crs, crs=crs, units=units, kind=kind, max_mm=max_mm)


def read_ascii(
    path: Path, *, crs: CRS | str | int | None = None, kind: Kind = "rain", max_cells: int = MAX_CELLS,
    max_mm: float = MAX_DAILY_MM,
) -> Grid:  # fmt: skip
    """An ESRI ASCII grid; its CRS from the ``.prj`` beside it, or ``crs``."""
    g = read_esri_ascii(path, max_cells=max_cells)
    return _finish(path, "", g.values, g.transform, g.crs, crs=crs, units="", kind=kind, max_mm=max_mm)


# --------------------------------------------------------------------------- registry

#: Format name → reader ``(path, **options) -> Grid``.
READERS: dict[str, GridReader] = {"geotiff": read_geotiff, "netcdf": read_netcdf, "ascii": read_ascii}

_SUFFIX = {".tif": "geotiff", ".tiff": "geotiff", ".nc": "netcdf", ".nc4": "netcdf", ".asc": "ascii", ".txt": "ascii"}


def register_reader(name: str, reader: GridReader, *suffixes: str) -> None:
    """Add (or replace) a reader, and the file extensions that select it."""
    READERS[name] = reader
    for s in suffixes:
        _SUFFIX[s.lower()] = name


def detect_format(path: Path) -> str:
    fmt = _SUFFIX.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(_SUFFIX))
        raise _reject(path, "", f"unknown grid format {path.suffix or '(no extension)'} (known: {known})",
                      f"无法识别的栅格格式 {path.suffix or '（无扩展名）'}（支持：{known}）")  # fmt: skip
    return fmt


def read_grid(path: str | Path, format: str | None = None, **options: Any) -> Grid:
    """Read a grid with the reader named by ``format`` or chosen by the file's extension.

    Options go to the reader: ``band``, ``variable`` (NetCDF), ``crs`` (for files without one),
    ``kind`` ("rain" checks values as daily rainfall, "grades" and "any" do not), ``max_cells``.
    """
    p = Path(path)
    name = format or detect_format(p)
    if name not in READERS:
        raise _reject(
            p, "", f"unknown grid format {name!r} (known: {', '.join(sorted(READERS))})", "无法识别的栅格格式"
        )
    if not p.is_file():
        raise _reject(p, "", "no such file", "文件不存在")
    if p.stat().st_size == 0:
        raise _reject(p, "", "the file is empty", "文件为空")
    return READERS[name](p, **options)


# --------------------------------------------------------------------------- writers (tests, demo, exports)


def write_geotiff(
    grid: Grid, path: Path, *, nodata: float = -9999.0, units: str = "mm", compress: str = "deflate"
) -> Path:
    """A single-band float32 GeoTIFF (NaN written as ``nodata``)."""
    import rasterio
    from rasterio.crs import CRS as RioCRS

    rows, cols = grid.shape
    with rasterio.open(path, "w", driver="GTiff", height=rows, width=cols, count=1, dtype="float32",
                       crs=RioCRS.from_wkt(grid.crs.to_wkt()), transform=grid.transform, nodata=nodata,
                       compress=compress) as ds:  # fmt: skip
        ds.write(np.where(np.isnan(grid.values), nodata, grid.values).astype(np.float32), 1)
        if units:
            ds.update_tags(1, units=units)
            ds.units = (units,)
    return path


def write_netcdf(
    path: Path, variables: Mapping[str, Grid | Sequence[Grid]], *, units: str | Mapping[str, str] = "mm",
    nodata: float = -9999.0, south_up: bool = True,
) -> Path:  # fmt: skip
    """A CF-1.8 NetCDF-3 file: one variable per name, 2-D or with a ``time`` dimension when given a
    sequence of grids; rows stored south to north as most models do (``south_up``)."""
    from scipy.io import netcdf_file

    stacks = {n: [v] if isinstance(v, Grid) else list(v) for n, v in variables.items()}
    every = [g for gs in stacks.values() for g in gs]
    require_aligned(every, "netcdf")
    like = every[0]
    rows, cols = like.shape
    xs, ys = like.centres()
    geo = like.crs.is_geographic
    xdim, ydim = ("lon", "lat") if geo else ("x", "y")
    steps = max(len(gs) for gs in stacks.values())
    order = slice(None, None, -1) if south_up else slice(None)
    with netcdf_file(path, "w", version=2) as f:
        f.Conventions = "CF-1.8"
        f.createDimension(ydim, rows)
        f.createDimension(xdim, cols)
        if steps > 1:
            f.createDimension("time", steps)
            t = f.createVariable("time", "f8", ("time",))
            t[:] = np.arange(steps) * 24.0
            t.units = "hours since 2000-01-01 00:00:00"
        y = f.createVariable(ydim, "f8", (ydim,))
        y[:] = ys[order]
        x = f.createVariable(xdim, "f8", (xdim,))
        x[:] = xs
        if geo:
            y.units, y.standard_name, x.units, x.standard_name = (
                "degrees_north",
                "latitude",
                "degrees_east",
                "longitude",
            )
        else:
            y.units = x.units = "m"
            y.standard_name, x.standard_name = "projection_y_coordinate", "projection_x_coordinate"
        mapping = f.createVariable("crs", "i4", ())
        wkt = like.crs.to_wkt(WktVersion.WKT1_GDAL)  # NetCDF-3 attributes are ASCII (WKT2 has "°")
        mapping.crs_wkt = mapping.spatial_ref = wkt
        for name, grids in stacks.items():
            dims = ("time", ydim, xdim) if steps > 1 else (ydim, xdim)
            v = f.createVariable(name, "f4", dims)
            data = np.stack([np.where(np.isnan(g.values), nodata, g.values)[order] for g in grids]).astype(np.float32)
            v[:] = data if steps > 1 else data[0]
            v._FillValue = np.float32(nodata)
            v.units = units if isinstance(units, str) else units.get(name, "")
            v.grid_mapping = "crs"
    return path


def write_ascii(grid: Grid, path: Path, *, nodata: float = -9999.0, prj: bool = True) -> Path:
    return write_esri_ascii(grid.values, grid.transform, path, crs=grid.crs if prj else None, nodata=nodata)


def write_grid(
    grid: Grid, path: str | Path, format: str | None = None, *, variable: str = "precip", **options: Any
) -> Path:
    """Write ``grid`` as ``format`` (or by the extension): GeoTIFF, NetCDF (``variable``) or ESRI ASCII."""
    p = Path(path)
    fmt = format or detect_format(p)
    if fmt == "geotiff":
        return write_geotiff(grid, p, **options)
    if fmt == "netcdf":
        return write_netcdf(p, {variable: grid}, **options)
    if fmt == "ascii":
        return write_ascii(grid, p, **options)
    raise _reject(p, "", f"no writer for {fmt!r}", "不支持写出该格式")
