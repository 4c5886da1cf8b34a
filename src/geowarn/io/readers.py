"""Readers of register files, one per format, behind one registry (``READERS``).

Every reader yields :class:`RawChunk` objects: the file's own headers, one object column per
header with the cells as found (str, int, float or None), the 1-based data row numbers, optional
geometries (shapely) and the CRS the file declares. CSV and XLSX are streamed in chunks of
``CHUNK_ROWS`` rows, so a 1 GB ledger is never held in memory as text; GIS formats are read by
GDAL through pyogrio (C), GeoJSON with orjson.
"""

from __future__ import annotations

import codecs
import csv
import functools
import itertools
import operator
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import shapely

from geowarn.errors import FileRejected, RowProblem
from geowarn.io.geojson_pieces import Pieces, PiecesDisagree, split_features
from geowarn.io.parsers import obj

ObjArray = npt.NDArray[np.object_]
CHUNK_ROWS = 50_000
_BLOCK = 1 << 20


@dataclass
class RawChunk:
    headers: list[str]
    columns: dict[str, ObjArray]
    rows: npt.NDArray[np.int64]
    geoms: ObjArray | None = None
    crs: str | None = None
    #: Cell problems the reader itself saw (formula cells): (index in chunk, header, reason, value).
    cell_problems: list[tuple[int, str, str, str]] = field(default_factory=list)
    #: Data rows in the whole file, when the format tells before the end (GeoJSON, GIS layers).
    total: int | None = None
    #: Otherwise, for a file parsed in pieces: about how many rows it has.
    estimated_total: int | None = None
    #: For the first chunk of a file held in memory: the cells of one header in the chunks still to
    #: come, without building them (the importer looks every code up before validating).
    peek_rest: Callable[[str], list[Any]] | None = None

    def __len__(self) -> int:
        return len(self.rows)


def whole_file(reason: str, value: str | None = None) -> FileRejected:
    return FileRejected(problems=[RowProblem(0, "", reason, value)], summary=reason)


# --------------------------------------------------------------------------- text tables (CSV, XLSX)


def detect_encoding(path: Path) -> str:
    """``utf-8-sig`` (UTF-8 with or without BOM) if the whole file decodes strictly, else ``gb18030``.

    GB18030 is the superset of GBK and GB2312 that Excel on Chinese Windows writes. A file that is
    neither is refused rather than decoded wrongly.
    """
    for enc in ("utf-8-sig", "gb18030"):
        dec = codecs.getincrementaldecoder(enc)(errors="strict")
        try:
            with path.open("rb") as fh:
                while block := fh.read(_BLOCK):
                    dec.decode(block)
                dec.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        return enc
    raise whole_file("无法识别文件编码（应为 UTF-8 或 GBK/GB18030）")


def _is_header(cells: list[Any]) -> bool:
    """A title line above the table (one merged cell) is not the header: the header has >= 2 cells."""
    return sum(1 for c in cells if c is not None and str(c).strip()) >= 2


def _clean_headers(cells: list[Any]) -> list[str]:
    out: list[str] = []
    for i, c in enumerate(cells):
        h = str(c).strip() if c is not None else ""
        h = h or f"列{i + 1}"
        while h in out:
            h += "_"
        out.append(h)
    return out


def _chunk_of(headers: list[str], rows: list[list[Any]], numbers: list[int]) -> RawChunk:
    width = len(headers)
    cols: dict[str, ObjArray] = {}
    padded = [r[:width] + [None] * (width - len(r)) if len(r) != width else r for r in rows]
    transposed = list(zip(*padded, strict=True)) if padded else [() for _ in headers]
    for h, col in zip(headers, transposed, strict=True):
        cols[h] = obj(list(col))
    return RawChunk(headers, cols, np.asarray(numbers, dtype=np.int64))


def _table_chunks(rows: Iterator[tuple[list[Any], list[tuple[int, str]]]]) -> Iterator[RawChunk]:
    """Group rows (cells, formula cells) into chunks after finding the header line."""
    headers: list[str] | None = None
    buf: list[list[Any]] = []
    nums: list[int] = []
    formulas: list[tuple[int, str, str, str]] = []
    n = 0
    seen_data = False
    for cells, cell_formulas in rows:
        if headers is None:
            if _is_header(cells):
                headers = _clean_headers(cells)
            continue
        n += 1
        if not any(c is not None and str(c).strip() for c in cells):
            continue
        seen_data = True
        for col, text in cell_formulas:
            if col < len(headers):
                formulas.append((len(buf), headers[col], "单元格含公式，请改为数值或文本后再导入", text))
        buf.append(cells)
        nums.append(n)
        if len(buf) >= CHUNK_ROWS:
            chunk = _chunk_of(headers, buf, nums)
            chunk.cell_problems = formulas
            yield chunk
            buf, nums, formulas = [], [], []
    if headers is None or not seen_data:
        raise whole_file("文件为空")
    if buf:
        chunk = _chunk_of(headers, buf, nums)
        chunk.cell_problems = formulas
        yield chunk


def read_csv(path: Path) -> Iterator[RawChunk]:
    enc = detect_encoding(path)
    with path.open("r", encoding=enc, newline="") as fh:
        sample = fh.read(64 * 1024)
        fh.seek(0)
        delimiter = "\t" if sample.count("\t") > sample.count(",") else ","
        reader = csv.reader(fh, delimiter=delimiter)
        yield from _table_chunks(([c if c != "" else None for c in row], []) for row in reader)


def read_xlsx(path: Path) -> Iterator[RawChunk]:
    import openpyxl

    wb = openpyxl.load_workbook(path, read_only=True, data_only=False)
    try:
        ws = wb.worksheets[0]

        def rows() -> Iterator[tuple[list[Any], list[tuple[int, str]]]]:
            for row in ws.iter_rows():
                cells: list[Any] = []
                formulas: list[tuple[int, str]] = []
                for j, cell in enumerate(row):
                    v = getattr(cell, "value", None)
                    if getattr(cell, "data_type", None) == "f":
                        formulas.append((j, str(v)))
                        v = None
                    cells.append(v)
                yield cells, formulas

        yield from _table_chunks(rows())
    finally:
        wb.close()


# --------------------------------------------------------------------------- GIS formats


def read_gis(path: Path) -> Iterator[RawChunk]:
    """Shapefile (also zipped), GeoPackage (first layer) and anything else GDAL reads, via pyogrio."""
    from pyogrio.raw import read

    target = f"/vsizip/{path}" if path.suffix.lower() == ".zip" else str(path)
    meta, _fids, wkb, field_data = read(target)[:4]
    headers = [str(h) for h in meta["fields"]]
    n = len(wkb) if wkb is not None else (len(field_data[0]) if field_data else 0)
    if n == 0:
        raise whole_file("文件为空")
    cols = {h: np.asarray(arr).astype(object) for h, arr in zip(headers, field_data, strict=True)}
    for h, col in cols.items():  # GDAL gives NaN or None for nulls; make both None
        if col.dtype == object and len(col) and isinstance(col[0], float):
            cols[h] = obj([None if isinstance(v, float) and v != v else v for v in col])
    geoms = shapely.from_wkb(wkb) if wkb is not None else None
    yield RawChunk(headers, cols, np.arange(1, n + 1, dtype=np.int64), geoms=geoms, crs=meta.get("crs"), total=n)


def _geojson_crs(doc: dict[str, Any]) -> str | None:
    """The pre-RFC 7946 ``crs`` member, still written by Chinese GIS software for projected data."""
    name = ((doc.get("crs") or {}).get("properties") or {}).get("name")
    if not name:
        return None
    s = str(name)
    if "EPSG" in s.upper():
        code = s.replace("::", ":").rsplit(":", 1)[-1]
        return f"EPSG:{code}" if code.isdigit() else s
    if "CRS84" in s.upper():
        return "EPSG:4326"
    return s


def _property_columns(props: list[dict[str, Any]], headers: list[str]) -> dict[str, ObjArray]:
    """One column per header. When every feature has every property (the usual export), one
    ``itemgetter`` call per feature and a transpose replace a dictionary lookup per cell."""
    if len(headers) > 1:
        try:
            rows = list(map(operator.itemgetter(*headers), props))
        except KeyError:
            pass
        else:
            return {h: obj(list(col)) for h, col in zip(headers, zip(*rows, strict=True), strict=True)}
    return {h: obj([p.get(h) for p in props]) for h in headers}


#: A GeoJSON file at least this big is parsed a piece at a time when the caller streams it.
STREAM_MIN_BYTES = 8 << 20
#: About this much of such a file is parsed before its first chunk.
FIRST_PIECE_BYTES = 1 << 20
#: Features per later piece. Pieces of 10,000 kept the reader's working set in the CPU's caches: a
#: national register was read and validated in 3.6 s of CPU instead of 4.3 s with pieces of 50,000.
PIECE_FEATURES = 10_000


def read_geojson(path: Path, *, stream: bool = False) -> Iterator[RawChunk]:
    """A GeoJSON file's chunks; ``stream``: parse a large FeatureCollection a piece at a time.

    Whole, the file's total is known with its first chunk; in pieces
    (:mod:`geowarn.io.geojson_pieces`) the first chunk is ready at once and only an estimate is known.
    """
    data = path.read_bytes()
    if stream and len(data) >= STREAM_MIN_BYTES:
        pieces = split_features(data, FIRST_PIECE_BYTES)
        if pieces is not None and pieces.members.get("type") == "FeatureCollection":
            yield from _geojson_in_pieces(pieces)
            return
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise whole_file("GeoJSON 格式错误", str(exc)[:200]) from exc
    del data
    if not isinstance(doc, dict):
        raise whole_file("GeoJSON 格式错误")
    feats = doc.get("features") if doc.get("type") == "FeatureCollection" else [doc]
    if not feats:
        raise whole_file("文件为空")
    props = [f.get("properties") or {} for f in feats]
    if _kept is not None:
        _kept.append((doc, props))
    headers = _more_headers([], props, 1000)
    crs = _geojson_crs(doc)
    # Chunks, so that validation and writing can overlap; a small first one gets the writer going.
    bounds = [0, *range(max(1, CHUNK_ROWS // 5), len(feats), CHUNK_ROWS), len(feats)]
    for lo, hi in itertools.pairwise(bounds):
        chunk = _geojson_chunk(feats[lo:hi], props[lo:hi], headers)
        chunk.rows = np.arange(lo + 1, hi + 1, dtype=np.int64)
        chunk.crs, chunk.total = crs, len(feats)
        if lo == 0:
            chunk.peek_rest = lambda header, rest=props[hi:]: [p.get(header) for p in rest]
        yield chunk


def _more_headers(headers: list[str], props: list[dict[str, Any]], ordered: int) -> list[str]:
    """``headers`` and the property names new in ``props``: in order of appearance among the first
    ``ordered`` features (those among the file's first 1,000), then sorted."""
    ordered = max(0, ordered)
    out, seen = list(headers), set(headers)
    for p in props[:ordered]:
        for k in p:
            if k not in seen:
                seen.add(k)
                out.append(k)
    if len(props) > ordered:
        out.extend(sorted(set().union(*props[ordered:]) - seen))
    return out


#: Where parsed GeoJSON goes instead of being freed, in a process that ends without freeing
#: anything (the forked reader: see :func:`keep_parsed`); None: freed as the reading goes on.
_kept: list[Any] | None = None


def keep_parsed() -> None:
    """In this process, keep what a GeoJSON reader parses instead of freeing it.

    For a reading process that ends with ``os._exit``: freeing the 300,000 parsed features of a
    national register, piece by piece, took 0.8 s of its 4.2 s of CPU (and, parsed whole, delayed
    its last message to the writer), and its memory (1.2 GB) goes back to the system when it ends
    anyway.
    """
    global _kept
    _kept = []


def _geojson_in_pieces(pieces: Pieces) -> Iterator[RawChunk]:
    crs = _geojson_crs(pieces.members)
    estimate = pieces.estimated_total()
    headers: list[str] = []
    done = 0
    try:
        for feats in itertools.chain([pieces.first], pieces.rest(PIECE_FEATURES)):
            if not feats:
                continue
            if _kept is not None:
                _kept.append(feats)
            props = [f.get("properties") or {} for f in feats]
            headers = _more_headers(headers, props, 1000 - done)
            chunk = _geojson_chunk(feats, props, headers)
            chunk.rows = np.arange(done + 1, done + len(feats) + 1, dtype=np.int64)
            done += len(feats)
            chunk.crs, chunk.estimated_total = crs, max(estimate, done)
            yield chunk
    except orjson.JSONDecodeError:  # in the tail: the whole file's parse tells where
        try:
            orjson.loads(pieces.data)
        except orjson.JSONDecodeError as exc:
            raise whole_file("GeoJSON 格式错误", str(exc)[:200]) from exc
        raise PiecesDisagree("a piece failed to parse, the whole file did not") from None
    if pieces.members.get("type") != "FeatureCollection" or _geojson_crs(pieces.members) != crs:
        raise PiecesDisagree("the document's type or crs follows its features")


def _geojson_chunk(feats: list[Any], props: list[dict[str, Any]], headers: list[str]) -> RawChunk:
    cols = _property_columns(props, headers)
    for h, col in cols.items():  # nested values (lists, objects) are kept as JSON text
        kinds = set(map(type, col))
        if dict in kinds or list in kinds:
            cols[h] = obj([orjson.dumps(v).decode() if isinstance(v, dict | list) else v for v in col])
    gs = [f.get("geometry") for f in feats]
    geoms = _plain_points(gs) if all(g is not None and g.get("type") == "Point" for g in gs) else None
    if geoms is None:  # any other geometry, or a point whose position is not two or three numbers
        geoms = obj([shapely.from_geojson(orjson.dumps(g)) if g else None for g in gs])
        geoms[shapely.is_empty(geoms)] = None  # an empty geometry is no position, as a null one
    return RawChunk(headers, cols, np.empty(0, dtype=np.int64), geoms=geoms)


def _plain_points(gs: list[Any]) -> ObjArray | None:
    """Points built from x and y without GEOS parsing each one, when every position is two or three numbers.

    Any other position goes to ``shapely.from_geojson``, as it would in a chunk with other geometries:
    where a chunk's bounds fall must not change what a feature means.
    """
    try:
        coords = [g["coordinates"] for g in gs]
    except (TypeError, KeyError) as exc:
        raise whole_file("GeoJSON 点坐标格式错误") from exc
    if not all(c.__class__ is list for c in coords) or not set(map(len, coords)) <= {2, 3}:
        return None
    xs, ys = [c[0] for c in coords], [c[1] for c in coords]
    zs = [c[2] for c in coords if len(c) == 3]
    if not {*map(type, xs), *map(type, ys), *map(type, zs)} <= {int, float}:
        raise whole_file("GeoJSON 点坐标格式错误")  # numbers as text, say (RFC 7946 3.1.1)
    return shapely.points(np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64))


Reader = Callable[[Path], Iterator[RawChunk]]

#: Format name → reader. Formats are named by what ``detect_format`` returns.
READERS: dict[str, Reader] = {
    "csv": read_csv,
    "xlsx": read_xlsx,
    "geojson": read_geojson,
    "shp": read_gis,
    "gpkg": read_gis,
}

_SUFFIX = {
    ".csv": "csv",
    ".txt": "csv",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".geojson": "geojson",
    ".json": "geojson",
    ".shp": "shp",
    ".zip": "shp",
    ".gpkg": "gpkg",
}


def detect_format(path: Path) -> str:
    fmt = _SUFFIX.get(path.suffix.lower())
    if fmt is None:
        hint = "（旧版 .xls 请另存为 .xlsx）" if path.suffix.lower() == ".xls" else ""
        raise whole_file(f"不支持的文件格式 {path.suffix or '（无扩展名）'}{hint}", path.name)
    return fmt


#: Readers of formats that can be parsed a piece at a time, for a caller that streams.
STREAMING: dict[str, Reader] = {"geojson": functools.partial(read_geojson, stream=True)}


def read_chunks(path: Path, fmt: str, *, stream: bool = False) -> Generator[RawChunk, None, None]:
    """The chunks of a file; any failure to read it becomes a whole-file :class:`FileRejected`.

    ``stream``: a GeoJSON file is parsed a piece at a time (its total is then only estimated, and
    :class:`PiecesDisagree` may end the reading: read it again without ``stream``).
    """
    if not path.is_file() or path.stat().st_size == 0:
        raise whole_file("文件为空")
    reader = STREAMING.get(fmt, READERS[fmt]) if stream else READERS[fmt]
    try:
        yield from reader(path)
    except (FileRejected, PiecesDisagree):
        raise
    except Exception as exc:  # any library's failure to parse is the file's problem, said once
        raise whole_file("文件无法读取", f"{type(exc).__name__}: {exc}"[:300]) from exc
