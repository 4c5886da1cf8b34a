"""Schemas of the monitoring network: stations (监测点), devices (设备), sensors (传感器) and their data.

Times are ISO 8601 with the China Standard Time offset (``+08:00``) on output.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field

from geowarn.api.schemas.common import Input, Latitude, Longitude, Public, Timestamps, UnitCode
from geowarn.monitoring.domain import SensorType

CST = dt.timezone(dt.timedelta(hours=8))


def to_cst(value: dt.datetime | None) -> dt.datetime | None:
    """A stored time (naive means UTC, as SQLite hands it back) in China Standard Time."""
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(CST)


def iso_ms(ms: int | None) -> str | None:
    """Epoch milliseconds as ISO 8601 in China Standard Time."""
    if ms is None:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, tz=CST).isoformat(timespec="milliseconds" if ms % 1000 else "seconds")


CstDatetime = Annotated[dt.datetime, AfterValidator(to_cst)]
Code = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[\w\-.]+$")]
DeviceCode = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9\-_.]+$")]
DeviceStatus = Literal["active", "maintenance", "retired"]

# --- stations ---------------------------------------------------------------------------------


class StationFields(Input):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    lon: Longitude | None = None
    lat: Latitude | None = None
    site_id: int | None = Field(default=None, description="hazard site (隐患点) in scope")
    unit_code: UnitCode | None = Field(default=None, description="default: the site's unit")
    installed_on: dt.date | None = None
    status: Literal["active", "inactive"] | None = None


class StationCreate(StationFields):
    code: Code
    name: str = Field(min_length=1, max_length=200)
    lon: Longitude
    lat: Latitude


class StationUpdate(StationFields):
    pass


class StationPublic(Public, Timestamps):
    id: int
    code: str
    name: str
    site_id: int | None = None
    lon: float
    lat: float
    unit_code: str
    installed_on: dt.date | None = None
    status: str


# --- devices and sensors ----------------------------------------------------------------------


class DeviceCreate(Input):
    station_id: int
    device_code: DeviceCode = Field(description="the platform's deviceId")
    device_type: SensorType
    apikey: str | None = Field(
        default=None, min_length=8, max_length=64, description="a national-platform key; generated when omitted"
    )
    reporting_interval_s: int = Field(default=600, ge=1, le=86_400)
    vendor: str | None = Field(default=None, max_length=100)
    model: str | None = Field(default=None, max_length=100)
    serial: str | None = Field(default=None, max_length=100)
    installed_at: dt.datetime | None = None


class DeviceUpdate(Input):
    status: DeviceStatus | None = None
    reporting_interval_s: int | None = Field(default=None, ge=1, le=86_400)
    vendor: str | None = Field(default=None, max_length=100)
    model: str | None = Field(default=None, max_length=100)
    serial: str | None = Field(default=None, max_length=100)
    installed_at: dt.datetime | None = None


class OpenEvent(BaseModel):
    id: int
    kind: str
    started: str | None


class SensorPublic(Public, Timestamps):
    id: int
    code: str
    device_id: int
    sensor_type: str
    channel: str
    quantity: str
    unit: str
    lon: float | None = None
    lat: float | None = None
    depth_m: float | None = None
    qc_overrides: dict[str, Any] = Field(default_factory=dict)
    unit_code: str
    active: bool


class SensorUpdate(Input):
    qc_overrides: dict[str, Any] | None = Field(default=None, description="merged over the type's QC defaults")
    active: bool | None = None
    depth_m: float | None = Field(default=None, ge=0, le=2000)


class DevicePublic(Public, Timestamps):
    id: int
    device_code: str
    station_id: int
    device_type: str
    vendor: str | None = None
    model: str | None = None
    serial: str | None = None
    reporting_interval_s: int
    installed_at: CstDatetime | None = None
    status: str
    last_seen: str | None = None
    battery: float | None = None
    signal: float | None = None
    unit_code: str
    open_event: OpenEvent | None = None
    sensors: list[SensorPublic] | None = None


class DeviceWithKey(DevicePublic):
    apikey: str = Field(description="shown once: only its digest is stored")


class ApiKeyPublic(BaseModel):
    device_code: str
    apikey: str = Field(description="shown once: only its digest is stored")


class DeviceImportPublic(BaseModel):
    total: int
    created: int
    updated: int
    rejected: int
    stations_created: int
    problems: list[dict[str, Any]]
    apikeys: list[ApiKeyPublic] = Field(description="generated keys, shown once")
