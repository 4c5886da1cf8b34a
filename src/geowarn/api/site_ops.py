"""Site operations shared by the site routes: filters, presentation, field changes, versions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

import shapely
from sqlalchemy import ColumnElement, Select, or_, select
from sqlalchemy.orm import Session, selectinload

from geowarn.admin.codes import township_of
from geowarn.api.deps import personal
from geowarn.api.geojson import feature, feature_collection, to_multipolygon
from geowarn.api.problems import PreconditionRequired
from geowarn.api.schemas.common import yuan_from_wan
from geowarn.api.schemas.sites import SiteDetail, SiteFields, SitePublic
from geowarn.api.scoping import apply_changes, check_ref, check_unit, scope_filter
from geowarn.auth.models import User
from geowarn.auth.scope import in_scope, unit_filter
from geowarn.errors import Conflict, InvalidInput
from geowarn.inventory.domain import HazardType, MonitoringMode, SiteStatus
from geowarn.inventory.models import HazardSite, Person

REQUIRED = frozenset(
    {
        "name",
        "hazard_type",
        "lon",
        "lat",
        "unit_code",
        "monitoring_mode",
        "threatened_households",
        "threatened_people",
        "threatened_property_yuan",
        "extra",
    }
)


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    """``lon0,lat0,lon1,lat1`` → floats, checked."""
    try:
        x0, y0, x1, y1 = (float(p) for p in text.split(","))
    except ValueError:
        raise InvalidInput(
            "bbox must be lon0,lat0,lon1,lat1", message_zh="bbox 格式应为 最小经度,最小纬度,最大经度,最大纬度"
        ) from None
    if not (-180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90):
        raise InvalidInput("bbox corners out of order or range", message_zh="bbox 范围无效")
    return x0, y0, x1, y1


def site_query(
    user: User,
    *,
    township: str | None = None,
    hazard_type: HazardType | None = None,
    status: SiteStatus | None = None,
    monitoring_mode: MonitoringMode | None = None,
    q: str | None = None,
    bbox: str | None = None,
) -> Select[Any]:
    """The caller's sites matching the filters, ordered by code."""
    conds: list[ColumnElement[bool]] = [scope_filter(HazardSite, user)]
    if township:
        if len(township) != 9 or not township.isdigit():
            raise InvalidInput("township must be a 9-digit code", message_zh="乡镇代码应为9位数字")
        conds.append(unit_filter(HazardSite.unit_code, township))
    if hazard_type:
        conds.append(HazardSite.hazard_type == hazard_type.value)
    if status:
        conds.append(HazardSite.status == status.value)
    if monitoring_mode:
        conds.append(HazardSite.monitoring_mode == monitoring_mode.value)
    if q:
        conds.append(
            or_(
                HazardSite.name.icontains(q, autoescape=True),
                HazardSite.code.icontains(q, autoescape=True),
                HazardSite.location_text.icontains(q, autoescape=True),
            )
        )
    if bbox:
        x0, y0, x1, y1 = parse_bbox(bbox)
        conds += [HazardSite.lon.between(x0, x1), HazardSite.lat.between(y0, y1)]
    return (
        select(HazardSite)
        .where(*conds)
        .options(selectinload(HazardSite.responsible_person), selectinload(HazardSite.monitor))
        .order_by(HazardSite.code, HazardSite.id)
    )


def _hide_out_of_scope_people(out: SitePublic, site: HazardSite, user: User) -> SitePublic:
    for attr in ("responsible_person", "monitor"):
        person: Person | None = getattr(site, attr)
        if person is not None and not in_scope(user.unit_code, person.unit_code):
            setattr(out, attr, None)
    return out


def present(site: HazardSite, user: User, *, detail: bool = False) -> SitePublic:
    cls = SiteDetail if detail else SitePublic
    return _hide_out_of_scope_people(cls.of(site, personal(user)), site, user)


def present_many(sites: Iterable[HazardSite], user: User) -> list[SitePublic]:
    return [present(s, user) for s in sites]


def as_feature_collection(sites: Sequence[HazardSite], user: User, **members: Any) -> dict[str, Any]:
    feats = []
    for s in sites:
        props = present(s, user).model_dump(mode="json")
        feats.append(feature(shapely.Point(s.lon, s.lat), props, s.id))
    return feature_collection(feats, **members)


def load_in_order(session: Session, user: User, ids: Sequence[int]) -> list[HazardSite]:
    if not ids:
        return []
    rows = session.scalars(
        select(HazardSite)
        .where(HazardSite.id.in_(list(ids)), scope_filter(HazardSite, user))
        .options(selectinload(HazardSite.responsible_person), selectinload(HazardSite.monitor))
    ).all()
    by_id = {s.id: s for s in rows}
    return [by_id[i] for i in ids if i in by_id]


def check_code_free(session: Session, model: Any, code: str, kind_zh: str) -> None:
    if session.scalar(select(model.id).where(model.code == code)) is not None:
        raise Conflict(f"code {code!r} is already in use", message_zh=f"{kind_zh}编号“{code}”已存在")


def field_changes(session: Session, user: User, body: SiteFields, *, exclude: set[str]) -> dict[str, Any]:
    """Column values from a site body, after the scope and reference checks."""
    data = body.model_dump(exclude_unset=True, exclude=exclude)
    for enum_field in ("hazard_type", "scale", "danger_grade", "stability", "monitoring_mode"):
        if data.get(enum_field) is not None:
            data[enum_field] = str(data[enum_field])
    if "unit_code" in data and data["unit_code"] is not None:
        check_unit(session, user, data["unit_code"])
        data["township_code"] = township_of(data["unit_code"])
    check_ref(session, Person, data.get("responsible_person_id"), user, "responsible_person_id")
    check_ref(session, Person, data.get("monitor_id"), user, "monitor_id")
    if "threatened_property_wan" in data:
        wan = data.pop("threatened_property_wan")
        data["threatened_property_yuan"] = None if wan is None else yuan_from_wan(wan)
    if "body" in data:
        data["body_geom"] = to_multipolygon(data.pop("body"))
    if "danger_zone" in data:
        data["danger_zone_geom"] = to_multipolygon(data.pop("danger_zone"))
    return data


def apply_site_changes(site: HazardSite, data: dict[str, Any]) -> None:
    apply_changes(site, data, REQUIRED)
    if "lon" in data or "lat" in data:
        site.geom = shapely.Point(site.lon, site.lat)


def expected_version(if_match: str | None, body_version: int | None) -> int:
    """The version the client last read, from ``If-Match`` (an ETag) or the body (428 if neither)."""
    if if_match is not None:
        tag = if_match.strip().removeprefix("W/").strip('"')
        if not tag.isdigit():
            raise InvalidInput("If-Match must be an ETag given by this API", message_zh="If-Match 版本标记无效")
        header = int(tag)
        if body_version is not None and body_version != header:
            raise InvalidInput("If-Match and version disagree", message_zh="If-Match 与 version 不一致")
        return header
    if body_version is None:
        raise PreconditionRequired(
            "send the version last read (If-Match header or version field)",
            message_zh="请提供读取时的版本号（If-Match 或 version），以免覆盖他人的修改",
        )
    return body_version


def check_version(site: HazardSite, expected: int) -> None:
    if site.version != expected:
        raise Conflict(
            f"site {site.id} is at version {site.version}, not {expected}: reload it",
            message_zh="该隐患点已被他人修改，请刷新后重试",
            current_version=site.version,
        )


def etag(site: HazardSite) -> str:
    return f'"{site.version}"'


def today_china() -> dt.date:
    """Today's date in China (UTC+08:00), the date agencies write on documents."""
    return (dt.datetime.now(dt.UTC) + dt.timedelta(hours=8)).date()
