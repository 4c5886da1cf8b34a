"""Validation of imported rows, column by column: the pure core of the importer.

A :class:`Validator` turns each :class:`~geowarn.io.readers.RawChunk` into a :class:`Part` of
parsed columns and a list of problems (row, the user's header, a Chinese reason, the value). It
never touches the database: what it needs from storage (the admin units of the scope, existing
records) comes in as a :class:`Scope` and a ``lookup`` callable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import shapely

from geowarn.admin.codes import contains, is_valid_code, level_of, parent_of
from geowarn.errors import RowProblem
from geowarn.io import crs as crsmod
from geowarn.io import parsers as P
from geowarn.io.readers import RawChunk, whole_file
from geowarn.io.schema import KindSpec
from geowarn.spatial.core import assign_points_to_polygons

ObjArray = npt.NDArray[np.object_]
BoolArray = npt.NDArray[np.bool_]
EXTRA_MAX_LEN = 1000
_LEVEL_RANK = {"village": 0, "township": 1, "county": 2, "city": 3, "province": 4}


@dataclass
class Scope:
    """The caller's unit and what is known of the units inside it."""

    code: str
    name: str
    units: dict[str, tuple[str, str]]  # code -> (name, level), inside the scope (scope included)
    nearby: dict[str, str]  # name -> code of units of the same county outside the scope (for messages)
    boundary: Any | None  # shapely geometry of the scope (its own, or its children's union)
    poly_codes: list[str] = field(default_factory=list)  # units inside the scope with a boundary
    poly_geoms: ObjArray = field(default_factory=lambda: np.empty(0, dtype=object))

    def townships(self) -> dict[str, str]:
        return {n: c for c, (n, lvl) in self.units.items() if lvl == "township"}

    def villages(self) -> dict[tuple[str, str], list[str]]:
        out: dict[tuple[str, str], list[str]] = {}
        for c, (n, lvl) in self.units.items():
            if lvl == "village":
                out.setdefault((c[:9], n), []).append(c)
                out.setdefault(("", n), []).append(c)
        return out


@dataclass
class Part:
    """Parsed columns of one chunk (all rows; ``bad`` marks rows with a problem)."""

    rows: npt.NDArray[np.int64]
    values: dict[str, Any]
    bad: BoolArray
    problems: list[RowProblem]
    raw: dict[int, dict[str, Any]]  # row number -> raw cells, for bad rows only


Lookup = Callable[[list[str]], dict[str, dict[str, Any]]]


class Validator:
    """Validates the chunks of one file of one kind, keeping cross-chunk state (CRS, seen codes)."""

    def __init__(
        self,
        spec: KindSpec,
        hmap: dict[str, str],
        scope: Scope,
        *,
        declared_crs: str | None,
        quoted_formulas: bool,
        lookup: Lookup | None = None,
        refs: dict[str, Lookup] | None = None,
    ) -> None:
        self.spec = spec
        self.hmap = hmap
        self.header_of = {f: h for h, f in hmap.items()}
        self.scope = scope
        self.quoted = quoted_formulas
        self.lookup = lookup
        self.refs = refs or {}
        self.source: crsmod.SourceCrs | None = None
        self.survey_order: bool | None = None
        if declared_crs:
            try:
                self.source = crsmod.parse_crs(declared_crs)
            except ValueError as exc:
                raise whole_file("未知的坐标系", declared_crs) from exc
        self.declared = self.source is not None
        self.seen: dict[str, int] = {}
        self.existing: dict[str, dict[str, Any]] = {}
        #: The stored records found for the last chunk's codes.
        self.found: dict[str, dict[str, Any]] = {}
        self.present: set[str] = set(hmap.values())
        self._townships = scope.townships()
        self._villages = scope.villages()

    # ------------------------------------------------------------------ helpers

    def h(self, name: str) -> str:
        return self.header_of.get(name, name)

    def _flag(self, part: Part, mask: BoolArray, field_name: str, reason: Callable[[int], str] | str, col: Any) -> None:
        idx = np.flatnonzero(mask)
        if len(idx) == 0:
            return
        part.bad[idx] = True
        header = self.h(field_name)
        for i in idx.tolist():
            v = col[i] if col is not None else None
            text = None if v is None or (isinstance(v, float) and v != v) else str(v)[:200]
            r = reason(i) if callable(reason) else reason
            part.problems.append(RowProblem(int(part.rows[i]), header, r, text))

    # ------------------------------------------------------------------ one chunk

    def chunk(self, raw: RawChunk) -> Part:
        n = len(raw)
        part = Part(raw.rows, {}, np.zeros(n, dtype=bool), [], {})
        self.found = {}
        for i, header, reason, value in raw.cell_problems:
            part.bad[i] = True
            part.problems.append(RowProblem(int(raw.rows[i]), header, reason, value[:200]))
        cols = {self.hmap[h]: raw.columns[h] for h in raw.headers if h in self.hmap}
        for f in self.spec.fields:
            if f.name in cols:
                self._parse_field(part, f.name, cols[f.name])
            elif f.required:
                raise whole_file(f"缺少必填列“{f.header}”")
        if self.spec.keeps_extra:
            part.values["extra"] = self._extra(part, raw)
        if self.spec.geometry == "point":
            self._points(part, raw)
        elif self.spec.geometry == "polygon":
            self._polygons(part, raw)
        if self.spec.name == "units":
            self._unit_codes(part)
        else:
            self._place(part)
        self._duplicates(part)
        self._against_storage(part)
        for i in np.flatnonzero(part.bad).tolist():
            part.raw[int(raw.rows[i])] = {h: _plain(raw.columns[h][i]) for h in raw.headers}
        return part

    def _parse_field(self, part: Part, name: str, col: ObjArray) -> None:
        f = self.spec.by_name[name]
        if f.parse in ("float", "count", "wanyuan"):
            self._parse_number(part, name, col)
            return
        text = P.as_text(col)
        if self.quoted:
            text = P.unquote_formula(text)
        ctrl, long_ = P.text_problems(text, f.max_len, multiline=f.multiline)
        self._flag(part, ctrl, name, "含有不允许的控制字符", text)
        self._flag(part, long_, name, f"长度超过上限 {f.max_len} 个字符", text)
        if f.required:
            self._flag(part, ~P.present(text), name, "必填字段为空", text)
        if f.parse == "phone":
            clean = P.clean_mobiles(text)
            self._flag(part, ~P.phone_ok(text, clean), name, "电话号码格式错误（应为 11 位手机号或区号-座机号）", text)
            text = P.normalise_phone(text, clean)
        elif f.parse == "id_number":
            text = P.obj([v.upper() if v else v for v in text])
            self._flag(part, ~P.id_number_ok(text), name, "身份证号码校验位错误（GB 11643）", text)
        elif f.parse == "label":
            assert f.labels is not None
            codes, unknown = P.map_labels(text, f.labels)
            allowed = "、".join(dict.fromkeys(k for k in f.labels if not k.isascii()))
            self._flag(part, unknown, name, f"取值无效，可选：{allowed}", text)
            text = codes
        part.values[name] = text

    def _parse_number(self, part: Part, name: str, col: ObjArray) -> None:
        f = self.spec.by_name[name]
        if f.parse == "float":
            vals, bad = P.parse_float(col)
            self._flag(part, bad, name, "不是有效数字", col)
            if name not in ("lon", "lat", "x", "y"):
                self._flag(part, ~bad & (vals < 0), name, "不能为负数", col)
            part.values[name] = vals
        elif f.parse == "count":
            ints, missing, not_whole, negative = P.parse_count(col)
            self._flag(part, not_whole, name, "不是有效的整数", col)
            self._flag(part, negative, name, "不能为负数", col)
            if f.required:
                self._flag(part, missing, name, "必填字段为空", col)
            part.values[name] = ints
        else:
            yuan, bad, frac = P.parse_wanyuan(col)
            self._flag(part, bad, name, "不是有效的非负金额（万元）", col)
            self._flag(part, frac, name, "金额精度超过 1 元（万元最多 4 位小数）", col)
            part.values[name] = yuan

    def _extra(self, part: Part, raw: RawChunk) -> ObjArray:
        others = [h for h in raw.headers if h not in self.hmap]
        texts = {h: P.as_text(raw.columns[h]) for h in others}
        for h, t in texts.items():
            ctrl, long_ = P.text_problems(t, EXTRA_MAX_LEN, multiline=True)
            for mask, reason in ((ctrl, "含有不允许的控制字符"), (long_, f"长度超过上限 {EXTRA_MAX_LEN} 个字符")):
                for i in np.flatnonzero(mask).tolist():
                    part.bad[i] = True
                    part.problems.append(RowProblem(int(raw.rows[i]), h, reason, str(t[i])[:200]))
        n = len(raw)
        packed = [h for h in raw.headers if self.hmap.get(h) == "extra"]
        if not others and not packed:
            return P.obj([{} for _ in range(n)])
        extra = [{h: t[i] for h, t in texts.items() if t[i] is not None} for i in range(n)]
        for h in packed:  # the Shapefile writer packs extra columns as one JSON field
            for i, v in enumerate(P.as_text(raw.columns[h])):
                if not v:
                    continue
                try:
                    d = orjson.loads(v)
                except orjson.JSONDecodeError:
                    d = None
                if not isinstance(d, dict):
                    part.bad[i] = True
                    part.problems.append(RowProblem(int(raw.rows[i]), h, "附加字段不是有效的 JSON 对象", v[:200]))
                    continue
                extra[i].update({str(k): str(x) for k, x in d.items() if x is not None})
        return P.obj(extra)

    # ------------------------------------------------------------------ coordinates

    def _xy_source(self, part: Part, raw: RawChunk) -> tuple[Any, Any, str, crsmod.SourceCrs]:
        """Raw x, y arrays, the field to name in problems, and the CRS they are in."""
        v = part.values
        n = len(raw)
        if "lon" in v and "lat" in v:
            return v["lon"], v["lat"], "lon", self.source or crsmod.parse_crs("EPSG:4326")
        if "lonlat" in v:
            xs, ys = np.full(n, np.nan), np.full(n, np.nan)
            bad = np.zeros(n, dtype=bool)
            for i, t in enumerate(v["lonlat"]):
                if t is None:
                    continue
                parts = t.replace("，", ",").replace(" ", ",").split(",")
                parts = [p for p in parts if p]
                try:
                    xs[i], ys[i] = float(parts[0]), float(parts[1])
                except (ValueError, IndexError):
                    bad[i] = True
            self._flag(part, bad, "lonlat", "经纬度格式错误（应为“经度,纬度”）", v["lonlat"])
            return xs, ys, "lonlat", self.source or crsmod.parse_crs("EPSG:4326")
        if "x" in v and "y" in v:
            if self.survey_order is None:
                _, _, self.survey_order = crsmod.easting_northing(v["x"], v["y"])
            east, north = (v["y"], v["x"]) if self.survey_order else (v["x"], v["y"])
            if self.source is None:
                self.source = crsmod.guess_gk(east)
                if self.source is None:
                    raise whole_file("无法确定投影坐标的坐标系，请指定坐标系（如 EPSG:4528 或 EPSG:4539）")
            return east, north, "y" if self.survey_order else "x", self.source
        if raw.geoms is not None:
            g = np.asarray(raw.geoms, dtype=object)
            xs, ys = shapely.get_x(g), shapely.get_y(g)
            kinds = shapely.get_type_id(g)
            self._flag(part, (kinds != 0) & (kinds != -1), "geometry", "几何类型应为点", None)
            if self.source is None and raw.crs:
                self.source = crsmod.parse_crs(raw.crs)
            return xs, ys, "geometry", self.source or crsmod.parse_crs("EPSG:4326")
        raise whole_file("文件中没有坐标（经度/纬度、X/Y 或几何）")

    def _points(self, part: Part, raw: RawChunk) -> None:
        x, y, fld, found = self._xy_source(part, raw)
        src: crsmod.SourceCrs = found
        self.source = src
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        missing = ~(np.isfinite(x) & np.isfinite(y))
        already = part.bad.copy()
        self._flag(part, missing & ~already, fld, "缺少坐标", None)
        ok = ~missing
        xcol = _Coordinates(x, y)
        if src.geographic:
            swapped = ok & crsmod.looks_swapped(x, y)
            self._flag(part, swapped, fld, "经纬度可能颠倒", xcol)
            ok &= ~swapped
            proj = ok & crsmod.looks_projected(x, y)
            zone = crsmod.zone_prefix(x)
            self._flag(
                part,
                proj,
                fld,
                lambda i: (
                    f"坐标看起来是投影坐标而不是经纬度（声明为 {src.name}），请选择 CGCS2000 高斯-克吕格坐标系"
                    + (
                        f"（横坐标带号 {zone[i]} → EPSG:{crsmod.gk_epsg(int(zone[i]), prefixed=True)}）"
                        if zone[i]
                        else ""
                    )
                ),
                xcol,
            )
            ok &= ~proj
        else:
            wrong, prefix = crsmod.zone_mismatch(x, src)
            wrong &= ok

            def reason(i: int) -> str:
                if src.gk_prefixed and prefix[i]:
                    return f"横坐标带号 {prefix[i]} 与所选坐标系 {src.name} 的带号 {src.gk_zone} 不一致"
                if src.gk_prefixed:
                    return f"横坐标缺少带号，所选坐标系 {src.name} 要求带号 {src.gk_zone}"
                if prefix[i]:
                    return (
                        f"横坐标含带号 {prefix[i]}，而所选坐标系 {src.name}（{src.gk_zone} 带）不带带号；"
                        f"请选择 EPSG:{crsmod.gk_epsg(int(prefix[i]), prefixed=True)}"
                    )
                return f"横坐标超出 {src.name} 的范围"

            self._flag(part, wrong, fld, reason, xcol)
            ok &= ~wrong
        lon, lat = np.full(len(x), np.nan), np.full(len(x), np.nan)
        if ok.any():
            lon[ok], lat[ok] = crsmod.to_lonlat(x[ok], y[ok], src)
        self._in_scope(part, ok, lon, lat, fld, xcol)
        part.values["lon"], part.values["lat"] = lon, lat

    def _in_scope(self, part: Part, ok: BoolArray, lon: Any, lat: Any, fld: str, shown: Any) -> None:
        if self.scope.boundary is not None:
            shapely.prepare(self.scope.boundary)
            # intersects_xy = covers for points, without building point objects
            inside = shapely.intersects_xy(self.scope.boundary, np.where(ok, lon, 0.0), np.where(ok, lat, 0.0))
            why = f"坐标不在本单位（{self.scope.name}）辖区范围内"
        else:
            x0, y0, x1, y1 = crsmod.CHINA_BBOX
            inside = (lon >= x0) & (lon <= x1) & (lat >= y0) & (lat <= y1)
            why = "坐标不在中国范围内（东经 73–135°，北纬 3–54°）"
        self._flag(part, ok & ~inside, fld, why, shown)

    def _polygons(self, part: Part, raw: RawChunk) -> None:
        n = len(raw)
        if raw.geoms is None:
            if self.spec.geometry_required:
                raise whole_file("文件中没有面要素几何")
            part.values["geom"] = P.obj([None] * n)
            return
        g = np.asarray(raw.geoms, dtype=object)
        tid = shapely.get_type_id(g)
        missing = tid == -1
        if self.spec.geometry_required:
            self._flag(part, missing, "geometry", "缺少面要素几何", None)
        self._flag(part, ~missing & (tid != 3) & (tid != 6), "geometry", "几何类型应为面（Polygon/MultiPolygon）", None)
        good = (tid == 3) | (tid == 6)
        invalid = good & ~np.asarray(shapely.is_valid(np.where(good, g, np.array(None, dtype=object))), dtype=bool)
        self._flag(part, invalid, "geometry", "面要素几何无效（如自相交）", None)
        good &= ~invalid
        src = self.source or (crsmod.parse_crs(raw.crs) if raw.crs else crsmod.parse_crs("EPSG:4326"))
        self.source = src
        out = P.obj([None] * n)
        part.values["_rep_lon"], part.values["_rep_lat"] = np.full(n, np.nan), np.full(n, np.nan)
        if good.any():
            moved = crsmod.reproject(g[good], src.crs, "EPSG:4326")
            multi = np.asarray([p if p.geom_type == "MultiPolygon" else shapely.MultiPolygon([p]) for p in moved])
            out[good] = multi
            if src.geographic:
                b = shapely.bounds(out[good])
                proj = np.zeros(n, dtype=bool)
                proj[good] = (np.abs(b) > 180).any(axis=1)
                self._flag(part, proj, "geometry", f"坐标看起来是投影坐标而不是经纬度（声明为 {src.name}）", None)
                good &= ~proj
            rp = P.obj([None] * n)
            rp[good] = shapely.point_on_surface(out[good])
            lon = np.where(good, shapely.get_x(rp), np.nan)
            lat = np.where(good, shapely.get_y(rp), np.nan)
            if self.spec.name != "units":
                self._in_scope(part, good, lon, lat, "geometry", None)
            part.values["_rep_lon"], part.values["_rep_lat"] = lon, lat
        part.values["geom"] = out

    # ------------------------------------------------------------------ administrative units

    def _place(self, part: Part) -> None:
        v = part.values
        n = len(part.rows)
        unit = P.obj([None] * n)
        sc = self.scope
        if "unit_code" in v:
            codes = v["unit_code"]
            has = P.present(codes)
            wrong = has & _by_unique(codes, lambda c: not is_valid_code(c))
            self._flag(part, wrong, "unit_code", "行政区划代码格式错误", codes)
            outside = has & ~wrong & _by_unique(codes, lambda c: not contains(sc.code, c))
            self._flag(part, outside, "unit_code", f"行政区划代码不属于本单位（{sc.name} {sc.code}）", codes)
            keep = has & ~wrong & ~outside
            unit[keep] = codes[keep]
        town = P.obj([None] * n)
        if "township" in v:
            names = v["township"]
            t_codes, unknown = P.map_labels(names, self._townships)
            if sc.units.get(sc.code, ("", ""))[1] == "township":
                # a township user's ledger may name its own township
                own = np.fromiter((x == sc.name for x in names), bool, n)
                t_codes[own], unknown = sc.code, unknown & ~own
            self._flag(part, unknown, "township", self._unknown_unit_of(names), names)
            town = t_codes
        if "village" in v:
            names = v["village"]
            vc = P.obj([None] * n)
            bad = np.zeros(n, dtype=bool)
            ambiguous = np.zeros(n, dtype=bool)
            for i, name in enumerate(names):
                if name is None:
                    continue
                hits = self._villages.get((town[i] or "", name), [])
                if len(hits) == 1:
                    vc[i] = hits[0]
                elif len(hits) > 1:
                    ambiguous[i] = True
                else:
                    bad[i] = True
            self._flag(part, bad, "village", self._unknown_unit_of(names), names)
            self._flag(part, ambiguous, "village", "村名在多个乡镇重复，请填写乡镇", names)
            town = np.where(P.present(vc), vc, town)
        fill = ~P.present(unit) & P.present(town)
        unit[fill] = town[fill]
        todo = ~P.present(unit)
        xy = ("lon", "lat") if "lon" in v else ("_rep_lon", "_rep_lat")  # polygons: a point on their surface
        if todo.any() and len(sc.poly_codes) and xy[0] in v:
            lon, lat = v[xy[0]][todo], v[xy[1]][todo]
            rank = [_LEVEL_RANK.get(sc.units[c][1], 9) for c in sc.poly_codes]
            hit = assign_points_to_polygons(np.nan_to_num(lon), np.nan_to_num(lat), sc.poly_geoms, rank)
            codes = np.asarray([*sc.poly_codes, None], dtype=object)[hit]
            unit[todo] = codes
        todo = ~P.present(unit)
        unit[todo] = sc.code
        v["unit_code"] = unit
        v["township_code"] = P.obj([c[:9] if len(c) >= 9 else None for c in unit.tolist()])

    def _unknown_unit_of(self, names: ObjArray) -> Callable[[int], str]:
        def reason(i: int) -> str:
            name = names[i]
            elsewhere = self.scope.nearby.get(name)
            if elsewhere:
                return f"“{name}”（{elsewhere}）不属于本单位（{self.scope.name}），不能导入"
            return f"本单位（{self.scope.name}）下没有名为“{name}”的行政区"

        return reason

    def _unit_codes(self, part: Part) -> None:
        codes = part.values.get("code", P.obj([None] * len(part.rows)))
        n = len(codes)
        has = P.present(codes)
        wrong = has & ~np.fromiter((c is None or is_valid_code(c) for c in codes), bool, n)
        self._flag(part, wrong, "code", "行政区划代码格式错误（6、9 或 12 位）", codes)
        outside = has & ~wrong & ~np.fromiter((c is None or contains(self.scope.code, c) for c in codes), bool, n)
        self._flag(part, outside, "code", f"不属于本单位（{self.scope.name} {self.scope.code}）", codes)
        ok = has & ~wrong
        part.values["level"] = P.obj([str(level_of(c)) if o else None for c, o in zip(codes, ok, strict=True)])
        part.values["parent_code"] = P.obj([parent_of(c) if o else None for c, o in zip(codes, ok, strict=True)])
        part.values["unit_code"] = codes

    # ------------------------------------------------------------------ whole-file checks

    def _duplicates(self, part: Part) -> None:
        codes = part.values.get("code")
        if codes is None:
            return
        first: dict[int, int] = {}
        seen = self.seen
        for i, (c, r) in enumerate(zip(codes.tolist(), part.rows.tolist(), strict=True)):
            if c is None:
                continue
            prev = seen.setdefault(c, r)
            if prev != r:
                first[i] = prev
        if first:
            mask = np.zeros(len(codes), dtype=bool)
            mask[list(first)] = True
            self._flag(part, mask, "code", lambda i: f"编号重复（与第 {first[i]} 行相同）", codes)

    def _against_storage(self, part: Part) -> None:
        """Codes used by another unit's record, status edits, and references to other records."""
        v = part.values
        codes = v.get("code")
        if codes is None or self.lookup is None:
            return
        present = [c for c in codes.tolist() if c is not None]
        found = self.lookup(present)
        if not found and not self.refs:
            return
        self.existing.update(found)
        self.found = found
        n = len(codes)
        if self.spec.name != "units":
            other = np.fromiter(
                (c in found and not contains(self.scope.code, found[c]["unit_code"]) for c in codes), bool, n
            )
            self._flag(part, other, "code", "编号已被其他单位的记录使用", codes)
        if self.spec.name == "sites" and "status" in v:
            status = v["status"]
            changed = np.fromiter(
                (c in found and s is not None and s != found[c]["status"] for c, s in zip(codes, status, strict=True)),
                bool,
                n,
            )
            self._flag(part, changed, "status", "已登记隐患点的状态须通过状态变更办理，不能由导入修改", status)
        for fld, lookup in self.refs.items():
            if fld not in v:
                continue
            refs = v[fld]
            ids = lookup([r for r in refs.tolist() if r is not None])
            unknown = np.fromiter((r is not None and r not in ids for r in refs), bool, n)
            self._flag(part, unknown, fld, "引用的编号不存在", refs)
            v[fld + "_id"] = P.obj([ids[r]["id"] if r in ids else None for r in refs])


def _by_unique(values: ObjArray, test: Callable[[str], bool]) -> BoolArray:
    """``test`` applied once per distinct non-blank value (ledgers repeat a few unit codes many times)."""
    cells = values.tolist()
    verdict = {u: test(str(u)) for u in set(cells) if u is not None}
    return np.fromiter((v is not None and verdict[v] for v in cells), dtype=bool, count=len(cells))


class _Coordinates:
    """The "x,y" text of a row's coordinates, made only for the rows a problem is reported on."""

    def __init__(self, x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> None:
        self.x, self.y = x, y

    def __getitem__(self, i: int) -> str | None:
        a, b = float(self.x[i]), float(self.y[i])
        return None if a != a else f"{a!r},{b!r}"


def _plain(v: Any) -> Any:
    if v is None or isinstance(v, str | int | bool):
        return v
    if isinstance(v, float):
        return None if v != v else v
    return str(v)
