"""ESRI ASCII grid (Arc/Info ASCII, ``.asc``): a small header, then the rows north to south.

The format (ESRI, *ArcGIS: ESRI ASCII raster format*)::

    ncols         4
    nrows         3
    xllcorner     118.0        (or xllcenter: the centre of the lower-left cell)
    yllcorner     26.7         (or yllcenter)
    cellsize      0.1          (GDAL also writes dx and dy for rectangular cells)
    NODATA_value  -9999        (optional)
    12.5 0 3.1 -9999
    ...

The CRS is not in the file; a ``.prj`` beside it (ESRI WKT) gives it. Parsing is our own: the header
is checked before the body is read (a file announcing too many cells is refused unread), the body
goes through numpy's C parser, and a bad value is reported with its line and text.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt
from affine import Affine
from pyproj import CRS
from pyproj.enums import WktVersion

from geowarn.errors import GridRejected

_KEYS = {"ncols", "nrows", "xllcorner", "yllcorner", "xllcenter", "yllcenter", "cellsize", "dx", "dy", "nodata_value"}
BYTES_PER_VALUE = 40  # generous: "-1234.567890123 " is 16; more means the header lies or the file is not a grid


@dataclass(slots=True)
class AsciiGrid:
    values: npt.NDArray[np.float32]  # NaN where the file has NODATA_value
    transform: Affine
    crs: CRS | None  # from the .prj beside the file, if any
    nodata: float | None


def _reject(path: Path, what: str, zh: str, **extra: Any) -> GridRejected:
    return GridRejected(f"{path.name}: {what}", message_zh=f"{path.name}：{zh}", file=path.name, reason=what, **extra)


def _header(path: Path, fh: IO[bytes]) -> tuple[dict[str, str], int]:
    """Keyword lines at the top of the file (any case, any spacing); returns them and their count."""
    header: dict[str, str] = {}
    lines = 0
    while True:
        pos = fh.tell()
        raw = fh.readline(4096)
        if not raw:
            break
        text = raw.decode("ascii", "replace").strip()
        if not text[:1].isalpha() or text[:3].lower() in ("nan", "inf"):
            fh.seek(pos)
            break
        lines += 1
        parts = text.split()
        key = parts[0].lower()
        if key not in _KEYS or len(parts) != 2:
            raise _reject(path, f"line {lines}: not an ESRI ASCII header line: {text[:60]!r}",
                          f"第{lines}行不是 ESRI ASCII 文件头：{text[:60]}", line=lines)  # fmt: skip
        if key in header:
            raise _reject(path, f"line {lines}: {parts[0]} given twice", f"第{lines}行：{parts[0]} 重复", line=lines)
        header[key] = parts[1]
    return header, lines


def _number(path: Path, header: dict[str, str], key: str, kind: type) -> Any:
    try:
        value = kind(header[key])
    except KeyError:
        raise _reject(path, f"header lacks {key}", f"文件头缺少 {key}") from None
    except ValueError:
        raise _reject(path, f"header {key} = {header[key]!r} is not a number", f"文件头 {key} 不是数字") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise _reject(path, f"header {key} is not finite", f"文件头 {key} 无效")
    return value


def _scan(path: Path, fh: IO[bytes], first_line: int, expected: int) -> npt.NDArray[np.float64]:
    """Token by token (slow path, used when rows are wrapped or a value is bad): name the line."""
    out = np.empty(expected, np.float64)
    n = 0
    for lineno, raw in enumerate(fh, start=first_line):
        for token in raw.split():
            try:
                value = float(token)
            except ValueError:
                text = token.decode("ascii", "replace")[:30]
                raise _reject(path, f"line {lineno}: {text!r} is not a number", f"第{lineno}行：“{text}”不是数字",
                              line=lineno) from None  # fmt: skip
            if n >= expected:
                raise _reject(path, f"more than the {expected:,} values the header announces (line {lineno})",
                              f"数据个数多于文件头的 {expected} 个（第{lineno}行）", line=lineno)  # fmt: skip
            out[n] = value
            n += 1
    if n != expected:
        raise _reject(path, f"{n:,} values for the {expected:,} cells the header announces (file truncated?)",
                      f"数据个数{n}少于文件头声明的{expected}个（文件不完整？）")  # fmt: skip
    return out


def read_esri_ascii(path: Path, *, max_cells: int) -> AsciiGrid:
    """Parse ``path``; every problem is a :class:`GridRejected` naming the file (and line)."""
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise _reject(path, f"cannot open: {exc.strerror}", "无法打开文件") from None
    with fh:
        header, n_header = _header(path, fh)
        if not header:
            raise _reject(path, "no ESRI ASCII header (ncols, nrows, ...)", "不是 ESRI ASCII 栅格（缺少文件头）")
        ncols, nrows = _number(path, header, "ncols", int), _number(path, header, "nrows", int)
        if ncols <= 0 or nrows <= 0:
            raise _reject(path, f"ncols {ncols} and nrows {nrows} must be positive", "行列数须为正数")
        if ncols * nrows > max_cells:
            raise _reject(path, f"{ncols:,}×{nrows:,} cells exceed the limit of {max_cells:,}",
                          f"栅格过大（{ncols}×{nrows}，上限{max_cells}个格点）", cells=ncols * nrows)  # fmt: skip
        size = path.stat().st_size
        if size > ncols * nrows * BYTES_PER_VALUE + 4096:
            raise _reject(path, f"{size:,} bytes is far more than {ncols}×{nrows} values need",
                          "文件大小与文件头声明的行列数不符")  # fmt: skip
        if "cellsize" in header:
            dx = dy = _number(path, header, "cellsize", float)
        elif "dx" in header and "dy" in header:
            dx, dy = _number(path, header, "dx", float), _number(path, header, "dy", float)
        else:
            raise _reject(path, "header lacks cellsize", "文件头缺少 cellsize")
        if dx <= 0 or dy <= 0:
            raise _reject(path, "cellsize must be positive", "cellsize 须为正数")
        if "xllcorner" in header:
            west = _number(path, header, "xllcorner", float)
        elif "xllcenter" in header:
            west = _number(path, header, "xllcenter", float) - dx / 2
        else:
            raise _reject(path, "header lacks xllcorner", "文件头缺少 xllcorner")
        if "yllcorner" in header:
            south = _number(path, header, "yllcorner", float)
        elif "yllcenter" in header:
            south = _number(path, header, "yllcenter", float) - dy / 2
        else:
            raise _reject(path, "header lacks yllcorner", "文件头缺少 yllcorner")
        nodata = _number(path, header, "nodata_value", float) if "nodata_value" in header else None
        body_start = fh.tell()
        try:  # the fast path: numpy's C parser, one line per row
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "input contained no data": counted below
                flat = np.loadtxt(fh, dtype=np.float64, ndmin=1, comments=None).ravel()
            if flat.size != ncols * nrows:
                raise ValueError("count")
        except ValueError:
            fh.seek(body_start)
            flat = _scan(path, fh, n_header + 1, ncols * nrows)
    values = flat.reshape(nrows, ncols)
    if nodata is not None:
        values[values == nodata] = np.nan
    transform = Affine(dx, 0.0, west, 0.0, -dy, south + nrows * dy)
    return AsciiGrid(values.astype(np.float32), transform, _prj(path), nodata)


def _prj(path: Path) -> CRS | None:
    prj = path.with_suffix(".prj")
    if not prj.is_file():
        return None
    text = prj.read_text("utf-8", "replace").strip()
    try:
        return CRS.from_user_input(text)
    except Exception:  # pyproj's CRSError: any unreadable .prj is the file's problem
        raise _reject(path, f"{prj.name} is not a readable coordinate system", f"{prj.name} 坐标系无法识别") from None


def write_esri_ascii(
    values: npt.NDArray[np.floating[Any]], transform: Affine, path: Path, *, crs: CRS | None = None,
    nodata: float = -9999.0,
) -> Path:  # fmt: skip
    """Write a grid (NaN as ``nodata``) and, with ``crs``, its ``.prj`` (ESRI WKT)."""
    rows, cols = values.shape
    dx, dy = transform.a, -transform.e
    size = f"cellsize     {dx!r}\n" if dx == dy else f"dx           {dx!r}\ndy           {dy!r}\n"
    with path.open("w", encoding="ascii", newline="\n") as fh:
        fh.write(f"ncols        {cols}\nnrows        {rows}\nxllcorner    {transform.c!r}\n"
                 f"yllcorner    {transform.f - rows * dy!r}\n{size}NODATA_value {nodata:g}\n")  # fmt: skip
        digits = 9 if values.dtype == np.float32 else 17  # enough to read back the same number
        np.savetxt(fh, np.where(np.isnan(values), nodata, values), fmt=f"%.{digits}g")
    if crs is not None:
        path.with_suffix(".prj").write_text(crs.to_wkt(WktVersion.WKT1_ESRI), encoding="ascii")
    return path
