"""Risk zones (风险区), shelters (避险点), threatened households (受威胁户) and their residents."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from geowarn.api.schemas.common import (
    NAME_PHONE_AND_ID,
    PHONE_AND_ID,
    GeoJSONOut,
    Input,
    Latitude,
    Longitude,
    Public,
    Timestamps,
    UnitCode,
)
from geowarn.auth.masking import mask_name
from geowarn.inventory.domain import RiskGrade

# --- risk zones -------------------------------------------------------------------------------


class RiskZoneFields(Input):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    grade: RiskGrade | None = None
    geometry: dict[str, Any] | None = Field(default=None, description="GeoJSON Polygon or MultiPolygon")
    households: int | None = Field(default=None, ge=0)
    people: int | None = Field(default=None, ge=0)
    unit_code: UnitCode | None = None
    remarks: str | None = None


class RiskZoneCreate(RiskZoneFields):
    code: str = Field(min_length=1, max_length=40, pattern=r"^[\w\-.]+$")
    name: str = Field(min_length=1, max_length=200)
    grade: RiskGrade
    geometry: dict[str, Any]
    unit_code: UnitCode


class RiskZoneUpdate(RiskZoneFields):
    pass


class RiskZonePublic(Public, Timestamps):
    id: int
    code: str
    name: str
    grade: str
    households: int
    people: int
    unit_code: str
    remarks: str | None = None
    geometry: GeoJSONOut = Field(default=None, validation_alias="geom")


# --- shelters ---------------------------------------------------------------------------------


class ShelterFields(Input):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    lon: Longitude | None = None
    lat: Latitude | None = None
    capacity: int | None = Field(default=None, ge=0)
    address: str | None = Field(default=None, max_length=300)
    unit_code: UnitCode | None = None
    contact_id: int | None = None


class ShelterCreate(ShelterFields):
    code: str = Field(min_length=1, max_length=40, pattern=r"^[\w\-.]+$")
    name: str = Field(min_length=1, max_length=200)
    lon: Longitude
    lat: Latitude
    unit_code: UnitCode


class ShelterUpdate(ShelterFields):
    pass


class ShelterPublic(Public, Timestamps):
    id: int
    code: str
    name: str
    lon: float
    lat: float
    capacity: int
    address: str | None = None
    unit_code: str
    contact_id: int | None = None


# --- households and residents -----------------------------------------------------------------


class ResidentFields(Input):
    name: str | None = Field(default=None, min_length=1, max_length=50)
    phone: str | None = Field(default=None, max_length=20)
    id_number: str | None = Field(default=None, max_length=18)
    relation: str | None = Field(default=None, max_length=20)
    vulnerable: bool | None = None


class ResidentCreate(ResidentFields):
    name: str = Field(min_length=1, max_length=50)


class ResidentUpdate(ResidentFields):
    pass


class ResidentPublic(Public, Timestamps):
    masked: ClassVar = NAME_PHONE_AND_ID
    id: int
    household_id: int
    name: str
    phone: str | None = None
    id_number: str | None = None
    relation: str | None = None
    vulnerable: bool
    unit_code: str


class HouseholdFields(Input):
    head_name: str | None = Field(default=None, min_length=1, max_length=50)
    phone: str | None = Field(default=None, max_length=20)
    id_number: str | None = Field(default=None, max_length=18)
    size: int | None = Field(default=None, ge=1)
    address: str | None = Field(default=None, max_length=300)
    lon: Longitude | None = None
    lat: Latitude | None = None
    unit_code: UnitCode | None = None
    site_id: int | None = None
    risk_zone_id: int | None = None
    shelter_id: int | None = None


class HouseholdCreate(HouseholdFields):
    code: str = Field(min_length=1, max_length=40, pattern=r"^[\w\-.]+$")
    head_name: str = Field(min_length=1, max_length=50)
    lon: Longitude
    lat: Latitude
    unit_code: UnitCode
    residents: list[ResidentCreate] = Field(default_factory=list)


class HouseholdUpdate(HouseholdFields):
    pass


class HouseholdPublic(Public, Timestamps):
    masked: ClassVar = {**PHONE_AND_ID, "head_name": mask_name}
    id: int
    code: str
    head_name: str
    phone: str | None = None
    id_number: str | None = None
    size: int
    address: str | None = None
    lon: float
    lat: float
    unit_code: str
    site_id: int | None = None
    risk_zone_id: int | None = None
    shelter_id: int | None = None
    residents: list[ResidentPublic] = Field(default_factory=list)
