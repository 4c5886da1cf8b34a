"""Hazard sites (地质灾害隐患点) and their lifecycle."""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from geowarn.api.schemas.common import (
    GeoJSONOut,
    Input,
    Latitude,
    Longitude,
    Public,
    Timestamps,
    UnitCode,
    UtcDatetime,
    WanIn,
    WanOut,
)
from geowarn.auth.masking import mask_phone
from geowarn.inventory.domain import HazardType, MonitoringMode, Scale, SiteStatus, Stability


class PersonBrief(Public):
    """A responsible person or monitor as shown on a site (name and phone, as on the site card)."""

    masked: ClassVar = {"phone": mask_phone}
    id: int
    name: str
    phone: str | None = None


class SiteFields(Input):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    hazard_type: HazardType | None = None
    lon: Longitude | None = None
    lat: Latitude | None = None
    unit_code: UnitCode | None = None
    scale: Scale | None = None
    volume_m3: float | None = Field(default=None, ge=0)
    danger_grade: Scale | None = None
    stability: Stability | None = None
    threatened_households: int | None = Field(default=None, ge=0)
    threatened_people: int | None = Field(default=None, ge=0)
    threatened_property_wan: WanIn | None = Field(default=None, description="受威胁财产（万元）")
    location_text: str | None = Field(default=None, max_length=300)
    responsible_person_id: int | None = None
    monitor_id: int | None = None
    monitoring_mode: MonitoringMode | None = None
    registered_on: dt.date | None = None
    remarks: str | None = None
    extra: dict[str, Any] | None = None
    body: dict[str, Any] | None = Field(default=None, description="GeoJSON Polygon/MultiPolygon of the hazard body")
    danger_zone: dict[str, Any] | None = Field(default=None, description="GeoJSON Polygon/MultiPolygon 威胁范围")


class SiteCreate(SiteFields):
    code: str = Field(min_length=1, max_length=40, pattern=r"^[\w\-.]+$")
    name: str = Field(min_length=1, max_length=200)
    hazard_type: HazardType
    lon: Longitude
    lat: Latitude
    unit_code: UnitCode


class SiteUpdate(SiteFields):
    """Changes to a site; ``version`` (or an ``If-Match`` header) must be the version last read."""

    version: int | None = None


class SitePublic(Public, Timestamps):
    id: int
    code: str
    name: str
    hazard_type: str
    lon: float
    lat: float
    scale: str | None = None
    volume_m3: float | None = None
    danger_grade: str | None = None
    stability: str | None = None
    threatened_households: int
    threatened_people: int
    threatened_property_wan: WanOut = Field(validation_alias="threatened_property_yuan", description="万元")
    unit_code: str
    township_code: str | None = None
    location_text: str | None = None
    responsible_person_id: int | None = None
    monitor_id: int | None = None
    responsible_person: PersonBrief | None = None
    monitor: PersonBrief | None = None
    monitoring_mode: str
    status: str
    status_since: dt.date | None = None
    registered_on: dt.date | None = None
    remarks: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)
    version: int


class SiteDetail(SitePublic):
    body: GeoJSONOut = Field(default=None, validation_alias="body_geom")
    danger_zone: GeoJSONOut = Field(default=None, validation_alias="danger_zone_geom")


class SiteNear(BaseModel):
    site: SitePublic
    distance_m: float


class StatusChangeIn(Input):
    to_status: SiteStatus
    reason: str = Field(min_length=2, max_length=2000)
    effective_on: dt.date
    evidence: str | None = Field(default=None, max_length=4000)
    version: int | None = None


class StatusChangePublic(Public):
    id: int
    from_status: str | None
    to_status: str
    effective_on: dt.date
    at: UtcDatetime
    reason: str
    evidence: str | None = None
    by_user: str | None = None


class AuditEntryPublic(Public):
    id: int
    at: UtcDatetime
    actor: str
    actor_id: int | None = None
    action: str
    entity: str
    entity_id: str | None = None
    unit_code: str | None = None
    changes: dict[str, Any]


class SiteHistory(BaseModel):
    site_id: int
    status_changes: list[StatusChangePublic]
    audit: list[AuditEntryPublic]
