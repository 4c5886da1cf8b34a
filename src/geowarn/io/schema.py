"""What each kind of register file holds: fields, the Chinese headers ledgers use, and parsing rules.

The first header of each field is the one exports write (so an export re-imports unchanged); the
others are spellings found in county ledgers (隐患点台账) and the English field name itself. The
``short`` name is used in Shapefiles, whose DBF field names hold at most 10 bytes.
See ``docs/import-formats.md`` for the user-facing table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from geowarn.inventory.domain import (
    DANGER_GRADE_ZH,
    HAZARD_TYPE_ALIASES,
    HAZARD_TYPE_ZH,
    MONITORING_MODE_ZH,
    RISK_GRADE_ZH,
    SCALE_ZH,
    SITE_STATUS_ZH,
    STABILITY_ALIASES,
    STABILITY_ZH,
)


def _labels(table: Mapping[Any, str], aliases: Mapping[str, Any] | None = None) -> dict[str, str]:
    """label → code, accepting the Chinese label, its aliases and the English code itself."""
    out = {str(code): str(code) for code in table}
    out.update({zh: str(code) for code, zh in table.items()})
    out.update({k: str(v) for k, v in (aliases or {}).items()})
    return out


HAZARD_TYPES = _labels(HAZARD_TYPE_ZH, HAZARD_TYPE_ALIASES)
SCALES = _labels(SCALE_ZH)
DANGER_GRADES = _labels(DANGER_GRADE_ZH)
STABILITIES = _labels(STABILITY_ZH, STABILITY_ALIASES)
MONITORING_MODES = _labels(MONITORING_MODE_ZH)
STATUSES = _labels(SITE_STATUS_ZH)
RISK_GRADES = _labels(RISK_GRADE_ZH, {"高风险": "high", "中风险": "medium", "低风险": "low"})

#: Code → Chinese label, for exports.
LABEL_ZH: dict[str, dict[str, str]] = {
    "hazard_type": {str(k): v for k, v in HAZARD_TYPE_ZH.items()},
    "scale": {str(k): v for k, v in SCALE_ZH.items()},
    "danger_grade": {str(k): v for k, v in DANGER_GRADE_ZH.items()},
    "stability": {str(k): v for k, v in STABILITY_ZH.items()},
    "monitoring_mode": {str(k): v for k, v in MONITORING_MODE_ZH.items()},
    "status": {str(k): v for k, v in SITE_STATUS_ZH.items()},
    "grade": {str(k): v for k, v in RISK_GRADE_ZH.items()},
}


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field of a kind. ``parse`` is one of: text, float, count, wanyuan, phone, id_number, label."""

    name: str
    headers: tuple[str, ...]
    parse: str = "text"
    required: bool = False
    max_len: int | None = None
    labels: dict[str, str] | None = None
    multiline: bool = False
    short: str | None = None  # Shapefile field name (<= 10 bytes)

    @property
    def header(self) -> str:
        return self.headers[0]

    @property
    def shp_name(self) -> str:
        return self.short or self.name


@dataclass(frozen=True, slots=True)
class KindSpec:
    name: str
    table: str
    fields: tuple[FieldSpec, ...]
    geometry: str | None  # "point", "polygon" or None
    geometry_required: bool = True
    keeps_extra: bool = False
    by_name: dict[str, FieldSpec] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_name.update({f.name: f for f in self.fields})


def F(name: str, *headers: str, **kw: object) -> FieldSpec:
    return FieldSpec(name, (*headers, name), **kw)  # type: ignore[arg-type]


_CODE = F("code", "统一编号", "编号", "隐患点编号", "野外编号", required=True, max_len=40)
_LON = F("lon", "经度", "东经", "longitude", "LON", "lng", parse="float")
_LAT = F("lat", "纬度", "北纬", "latitude", "LAT", parse="float")
_X = F("x", "X", "X坐标", "横坐标", parse="float")
_Y = F("y", "Y", "Y坐标", "纵坐标", parse="float")
_LONLAT = F("lonlat", "经纬度", "坐标", max_len=80)
_TOWNSHIP = F("township", "乡镇", "乡镇（街道）", "乡镇(街道)", "乡（镇）", "街道", max_len=100)
_VILLAGE = F("village", "村", "行政村", "村（居）", "村(居)", "村（社区）", max_len=100)
_UNIT = F("unit_code", "行政区划代码", "区划代码", short="unit_code", max_len=12)
_REMARKS = F("remarks", "备注", max_len=4000, multiline=True)
_PLACE = (_TOWNSHIP, _VILLAGE, _UNIT)

SITES = KindSpec(
    "sites",
    "hazard_site",
    (
        _CODE,
        F("name", "名称", "隐患点名称", "灾害点名称", required=True, max_len=200),
        F(
            "hazard_type",
            "灾害类型",
            "类型",
            "隐患类型",
            parse="label",
            required=True,
            labels=HAZARD_TYPES,
            short="type",
        ),
        _LON,
        _LAT,
        _X,
        _Y,
        *_PLACE,
        F("scale", "规模等级", "规模", parse="label", labels=SCALES),
        F("volume_m3", "体积", "体积（m³）", "体积(m3)", "规模（m³）", parse="float", short="volume"),
        F("danger_grade", "险情等级", parse="label", labels=DANGER_GRADES, short="danger"),
        F("stability", "稳定性", parse="label", labels=STABILITIES),
        F("threatened_households", "威胁户数", "受威胁户数", parse="count", short="households"),
        F("threatened_people", "威胁人数", "威胁人口", "受威胁人数", parse="count", short="people"),
        F(
            "threatened_property",
            "威胁财产（万元）",
            "威胁财产",
            "威胁财产(万元)",
            "潜在经济损失（万元）",
            parse="wanyuan",
            short="property",
        ),
        F("responsible_name", "防灾责任人", "责任人", max_len=50, short="resp"),
        F(
            "responsible_phone",
            "责任人电话",
            "联系电话",
            "防灾责任人电话",
            parse="phone",
            max_len=20,
            short="resp_phone",
        ),
        F("monitor_name", "监测人", "群测群防员", max_len=50, short="monitor"),
        F("monitor_phone", "监测人电话", parse="phone", max_len=20, short="mon_phone"),
        F("monitoring_mode", "监测方式", parse="label", labels=MONITORING_MODES, short="mode"),
        F("status", "状态", parse="label", labels=STATUSES),
        F("location_text", "位置", "地理位置", "详细位置", max_len=300, short="location"),
        _REMARKS,
    ),
    geometry="point",
    keeps_extra=True,
)

RISK_ZONES = KindSpec(
    "risk_zones",
    "risk_zone",
    (
        F("code", "编号", "风险区编号", "统一编号", required=True, max_len=40),
        F("name", "名称", "风险区名称", required=True, max_len=200),
        F("grade", "风险等级", "等级", parse="label", required=True, labels=RISK_GRADES),
        F("households", "户数", "威胁户数", parse="count"),
        F("people", "人数", "威胁人数", parse="count"),
        *_PLACE,
        _REMARKS,
    ),
    geometry="polygon",
)

HOUSEHOLDS = KindSpec(
    "households",
    "household",
    (
        F("code", "编号", "户编号", required=True, max_len=40),
        F("head_name", "户主姓名", "户主", required=True, max_len=50, short="head"),
        F("phone", "电话", "联系电话", parse="phone", max_len=20),
        F("id_number", "身份证号", "身份证号码", "公民身份号码", parse="id_number", max_len=18, short="id_number"),
        F("size", "人口", "家庭人口", "人数", parse="count"),
        F("address", "地址", "住址", max_len=300),
        _LON,
        _LAT,
        _X,
        _Y,
        _LONLAT,
        F("site_code", "隐患点编号", "所属隐患点", max_len=40),
        F("shelter_code", "避险点编号", "避险场所编号", max_len=40, short="shelter"),
        *_PLACE,
    ),
    geometry="point",
)

SHELTERS = KindSpec(
    "shelters",
    "shelter",
    (
        F("code", "编号", "避险点编号", required=True, max_len=40),
        F("name", "名称", "避险点名称", "避险场所名称", required=True, max_len=200),
        F("capacity", "容纳人数", "可容纳人数", parse="count"),
        F("address", "地址", max_len=300),
        _LON,
        _LAT,
        _X,
        _Y,
        _LONLAT,
        *_PLACE,
    ),
    geometry="point",
)

UNITS = KindSpec(
    "units",
    "admin_unit",
    (
        F("code", "代码", "行政区划代码", "区划代码", required=True, max_len=12),
        F("name", "名称", "行政区划名称", required=True, max_len=100),
    ),
    geometry="polygon",
    geometry_required=False,
)

KINDS: dict[str, KindSpec] = {k.name: k for k in (SITES, RISK_ZONES, HOUSEHOLDS, SHELTERS, UNITS)}


def kind_spec(kind: str) -> KindSpec:
    try:
        return KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}") from None


def header_map(spec: KindSpec, headers: list[str], mapping: dict[str, str] | None) -> dict[str, str]:
    """Map the file's headers to field names: the user's mapping first, then the defaults.

    Matching ignores surrounding spaces and letter case; the first header for a field wins.
    Unmapped headers are absent from the result (sites keep them in ``extra``).
    """
    aliases: dict[str, str] = {}
    for f in spec.fields:
        for h in (*f.headers, f.shp_name):
            aliases.setdefault(h.strip().lower(), f.name)
    if spec.keeps_extra:
        aliases.setdefault("extra", "extra")
    user = {k.strip().lower(): v for k, v in (mapping or {}).items()}
    valid = set(spec.by_name) | ({"extra"} if spec.keeps_extra else set())
    for target in user.values():
        if target not in valid:
            raise ValueError(f"mapping names unknown field {target!r} for {spec.name}")
    out: dict[str, str] = {}
    taken: set[str] = set()
    for h in headers:
        key = h.strip().lower()
        found = user.get(key) or aliases.get(key)
        if found and found not in taken:
            out[h] = found
            taken.add(found)
    return out
