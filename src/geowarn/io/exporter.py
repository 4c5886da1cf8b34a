"""Export of the register in the import formats, with the import's Chinese headers (round-trip safe).

Text cells of CSV and XLSX that start with ``= + - @``, tab or CR get a leading quote (OWASP CSV
injection); the importer removes exactly that quote again. Personal data (phones, ID numbers) is
masked (GB/T 35273 de-identification, :mod:`geowarn.auth.masking`) unless ``personal_data``.
Shapefile DBF names hold 10 bytes, so Shapefiles use the short English names of
:mod:`geowarn.io.schema` and pack unmapped (``extra``) columns into one JSON field ``extra``.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import shapely
from pyproj import CRS
from sqlalchemy import select

from geowarn.admin.models import AdminUnit
from geowarn.auth.masking import mask_id_number, mask_phone
from geowarn.auth.scope import unit_filter
from geowarn.db import Database
from geowarn.errors import InvalidInput
from geowarn.inventory.models import HazardSite, Household, Person, RiskZone, Shelter
from geowarn.io import crs as crsmod
from geowarn.io.parsers import neutralise_formula, yuan_to_wanyuan
from geowarn.io.schema import LABEL_ZH, KindSpec, kind_spec

__all__ = ["WRITERS", "Table", "export_file"]

_MODELS: dict[str, Any] = {
    "sites": HazardSite,
    "risk_zones": RiskZone,
    "households": Household,
    "shelters": Shelter,
    "units": AdminUnit,
}
#: Fields written in each kind's export, in order (``lon``/``lat`` become X/Y or are dropped by format).
_EXPORT_FIELDS: dict[str, tuple[str, ...]] = {
    "sites": (
        "code", "name", "hazard_type", "lon", "lat", "township", "village", "unit_code", "scale", "volume_m3",
        "danger_grade", "stability", "threatened_households", "threatened_people", "threatened_property",
        "responsible_name", "responsible_phone", "monitor_name", "monitor_phone", "monitoring_mode", "status",
        "location_text", "remarks",
    ),
    "risk_zones": ("code", "name", "grade", "households", "people", "township", "village", "unit_code", "remarks"),
    "households": (
        "code", "head_name", "phone", "id_number", "size", "address", "lon", "lat", "site_code", "shelter_code",
        "township", "village", "unit_code",
    ),
    "shelters": ("code", "name", "capacity", "address", "lon", "lat", "township", "village", "unit_code"),
    "units": ("code", "name"),
}  # fmt: skip
_NUMERIC = frozenset({"float", "count", "wanyuan"})


@dataclass
class Table:
    """What a writer receives: named columns (header → values), geometries and their CRS."""

    fields: list[tuple[str, str]]  # (field name, header)
    columns: dict[str, list[Any]]  # header -> values
    numeric: set[str]  # headers of numeric columns
    geoms: np.ndarray | None
    geometry_type: str | None
    crs: CRS
    spec: KindSpec
    extra_headers: list[str]


def export_file(
    db: Database,
    path: Path,
    *,
    kind: str = "sites",
    scope_unit: str,
    personal_data: bool,
    fmt: str | None = None,
    target_crs: str = "EPSG:4326",
    where: Any = None,
) -> int:
    """Write the records of ``kind`` within ``scope_unit`` to ``path``; returns the number of rows written."""
    path = Path(path)
    fmt = fmt or _FORMAT_OF.get(path.suffix.lower())
    if fmt not in WRITERS:
        raise InvalidInput(
            f"unsupported export format {fmt or path.suffix!r}", message_zh=f"不支持的导出格式：{fmt or path.suffix}"
        )
    try:
        target = CRS.from_user_input(target_crs)
    except Exception as exc:
        raise InvalidInput(f"unknown CRS {target_crs!r}", message_zh=f"未知的坐标系：{target_crs}") from exc
    spec = kind_spec(kind)
    table = _collect(db, spec, scope_unit, personal_data, target, where, fmt)
    WRITERS[fmt](path, table)
    return len(next(iter(table.columns.values()), []))


def _collect(db: Database, spec: KindSpec, scope_unit: str, personal: bool, target: CRS, where: Any, fmt: str) -> Table:
    model = _MODELS[spec.name]
    key = model.code if spec.name == "units" else model.unit_code
    stmt = select(model.__table__).where(unit_filter(key, scope_unit)).order_by(model.code)
    if where is not None:
        stmt = stmt.where(where)
    with db.read() as s:
        rows = [dict(r._mapping) for r in s.execute(stmt)]
        names = dict(s.execute(select(AdminUnit.code, AdminUnit.name)).all())
        people: dict[int, tuple[str, str | None]] = {}
        refs: dict[str, dict[int, str]] = {}
        if spec.name == "sites":
            ids = {r[c] for r in rows for c in ("responsible_person_id", "monitor_id") if r[c] is not None}
            for chunk in _chunks(sorted(ids)):
                people.update(
                    {
                        i: (n, p)
                        for i, n, p in s.execute(
                            select(Person.id, Person.name, Person.phone).where(Person.id.in_(chunk))
                        )
                    }
                )
        if spec.name == "households":
            for col, m in (("site_id", HazardSite), ("shelter_id", Shelter)):
                wanted = sorted({r[col] for r in rows if r[col] is not None})
                refs[col] = {}
                for chunk in _chunks(wanted):
                    refs[col].update(dict(s.execute(select(m.id, m.code).where(m.id.in_(chunk))).all()))
    geographic = target.is_geographic
    gis = fmt in ("shp", "gpkg", "geojson")
    fields: list[tuple[str, str]] = []
    for f in _EXPORT_FIELDS[spec.name]:
        if f in ("lon", "lat"):
            if gis:
                continue
            header = spec.by_name[f].header if geographic else ("X" if f == "lon" else "Y")
        else:
            header = spec.by_name[f].header
        fields.append((f, spec.by_name[f].shp_name if fmt == "shp" else header))
    geoms = np.asarray([r["geom"] for r in rows], dtype=object) if rows else np.empty(0, dtype=object)
    if len(geoms) and not CRS.from_epsg(4326).equals(target):
        present = np.array([g is not None for g in geoms])
        geoms[present] = crsmod.reproject(geoms[present], "EPSG:4326", target)
    cols: dict[str, list[Any]] = {h: [] for _, h in fields}
    numeric = {h for f, h in fields if spec.by_name[f].parse in _NUMERIC}
    for i, r in enumerate(rows):
        for f, h in fields:
            cols[h].append(_value(spec, f, r, names, people, refs, personal, geoms[i] if f in ("lon", "lat") else None))
    extra_headers: list[str] = []
    if spec.keeps_extra:
        extra_headers = list(dict.fromkeys(k for r in rows for k in (r.get("extra") or {})))
        if fmt == "shp":
            cols["extra"] = [orjson.dumps(r.get("extra") or {}).decode() if r.get("extra") else None for r in rows]
        else:
            for k in extra_headers:
                cols[k] = [(r.get("extra") or {}).get(k) for r in rows]
    gtype = "Point" if spec.geometry == "point" else "MultiPolygon"
    return Table(fields, cols, numeric, geoms, gtype, target, spec, extra_headers)


def _chunks(items: list[Any], size: int = 900) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _value(
    spec: KindSpec,
    f: str,
    r: dict[str, Any],
    names: dict[str, str],
    people: dict[int, tuple[str, str | None]],
    refs: dict[str, dict[int, str]],
    personal: bool,
    geom: Any,
) -> Any:
    if f in ("lon", "lat"):
        if geom is None:
            return None
        return float(shapely.get_x(geom)) if f == "lon" else float(shapely.get_y(geom))
    if f == "township":
        u = r.get("unit_code") or ""
        return names.get(u[:9]) if len(u) >= 9 else None
    if f == "village":
        u = r.get("unit_code") or ""
        return names.get(u) if len(u) == 12 else None
    if f == "threatened_property":
        return yuan_to_wanyuan(r["threatened_property_yuan"] or 0)
    if f in ("responsible_name", "responsible_phone", "monitor_name", "monitor_phone"):
        pid = r["responsible_person_id"] if f.startswith("responsible") else r["monitor_id"]
        person = people.get(pid) if pid is not None else None
        if person is None:
            return None
        return person[0] if f.endswith("name") else (person[1] if personal else mask_phone(person[1]))
    if f in ("site_code", "shelter_code"):
        col = "site_id" if f == "site_code" else "shelter_id"
        return refs.get(col, {}).get(r[col]) if r[col] is not None else None
    v = r.get(f)
    if f in LABEL_ZH and v is not None:
        return LABEL_ZH[f].get(v, v)
    if not personal and f == "phone":
        return mask_phone(v)
    if not personal and f == "id_number":
        return mask_id_number(v)
    return v


# --------------------------------------------------------------------------- writers


def _cell(v: Any, numeric: bool, *, text_numbers: bool) -> Any:
    if v is None:
        return None
    if numeric:
        return str(v) if text_numbers else (float(v) if not isinstance(v, int) else v)
    return neutralise_formula(str(v))


def write_csv(path: Path, t: Table) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        headers = list(t.columns)
        w.writerow([neutralise_formula(h) for h in headers])
        n = len(next(iter(t.columns.values()), []))
        for i in range(n):
            w.writerow(
                ["" if (c := _cell(t.columns[h][i], h in t.numeric, text_numbers=True)) is None else c for h in headers]
            )


def write_xlsx(path: Path, t: Table) -> None:
    import openpyxl

    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet(t.spec.name)
    headers = list(t.columns)
    ws.append([neutralise_formula(h) for h in headers])
    n = len(next(iter(t.columns.values()), []))
    for i in range(n):
        ws.append([_cell(t.columns[h][i], h in t.numeric, text_numbers=False) for h in headers])
    wb.save(path)


def _geojson_geometry(g: Any) -> Any:
    if g is None:
        return None
    if g.geom_type == "Point":
        return {"type": "Point", "coordinates": [float(g.x), float(g.y)]}
    return orjson.loads(shapely.to_geojson(g))


def write_geojson(path: Path, t: Table) -> None:
    headers = list(t.columns)
    n = len(next(iter(t.columns.values()), [])) if headers else 0
    feats = []
    for i in range(n):
        props = {h: _json_value(t.columns[h][i], h in t.numeric) for h in headers}
        geom = _geojson_geometry(t.geoms[i]) if t.geoms is not None else None
        feats.append({"type": "Feature", "geometry": geom, "properties": props})
    doc: dict[str, Any] = {"type": "FeatureCollection", "features": feats}
    epsg = t.crs.to_epsg()
    if epsg != 4326:  # RFC 7946 allows only WGS84; projected exports name their CRS the pre-2016 way
        doc["crs"] = {"type": "name", "properties": {"name": f"urn:ogc:def:crs:EPSG::{epsg}"}}
    path.write_bytes(orjson.dumps(doc))


def _json_value(v: Any, numeric: bool) -> Any:
    if v is None:
        return None
    if numeric:
        return v if isinstance(v, int) else float(v)
    return v


def write_gis(path: Path, t: Table) -> None:
    """Shapefile or GeoPackage through GDAL (pyogrio); text and numbers as strings in DBF (exact)."""
    from pyogrio.raw import write

    shp = path.suffix.lower() == ".shp"
    headers = list(t.columns)
    field_data = []
    for h in headers:
        vals = t.columns[h]
        if h in t.numeric and not shp:
            arr = np.asarray([np.nan if v is None else float(v) for v in vals], dtype=np.float64)
        else:
            arr = np.empty(len(vals), dtype=object)
            arr[:] = [None if v is None else (repr(v) if isinstance(v, float) else str(v)) for v in vals]
        field_data.append(arr)
    geoms = t.geoms if t.geoms is not None else np.empty(0, dtype=object)
    wkb = np.asarray(shapely.to_wkb(geoms, output_dimension=2), dtype=object)
    kw: dict[str, Any] = {"encoding": "UTF-8"} if shp else {}
    for suffix in (".shp", ".shx", ".dbf", ".prj", ".cpg") if shp else (path.suffix,):
        path.with_suffix(suffix).unlink(missing_ok=True)
    write(
        str(path),
        wkb,
        field_data,
        headers,
        crs=t.crs.to_wkt(),
        driver="ESRI Shapefile" if shp else "GPKG",
        geometry_type=t.geometry_type,
        layer=t.spec.name if not shp else None,
        **kw,
    )


Writer = Callable[[Path, Table], None]

#: Format name → writer.
WRITERS: dict[str, Writer] = {
    "csv": write_csv,
    "xlsx": write_xlsx,
    "geojson": write_geojson,
    "shp": write_gis,
    "gpkg": write_gis,
}
_FORMAT_OF = {".geojson": "geojson", ".json": "geojson", ".csv": "csv", ".xlsx": "xlsx", ".shp": "shp", ".gpkg": "gpkg"}
