"""Registering stations, devices and their sensors (the ORM path: audited like every register write)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import shapely
from sqlalchemy import select
from sqlalchemy.orm import Session

from geowarn.errors import Conflict, InvalidInput
from geowarn.monitoring.domain import CHANNELS, SensorType
from geowarn.monitoring.keys import hash_apikey, new_apikey
from geowarn.monitoring.models import Device, MonitoringStation, Sensor


@dataclass(frozen=True, slots=True)
class RegisteredDevice:
    device: Device
    apikey: str  # shown once; only its digest is stored


def register_station(
    session: Session,
    *,
    code: str,
    name: str,
    lon: float,
    lat: float,
    unit_code: str,
    site_id: int | None = None,
    installed_on: dt.date | None = None,
) -> MonitoringStation:
    if session.scalar(select(MonitoringStation.id).where(MonitoringStation.code == code)) is not None:
        raise Conflict(f"station {code} exists", message_zh=f"监测点编号 {code} 已存在")
    station = MonitoringStation(
        code=code,
        name=name,
        lon=lon,
        lat=lat,
        geom=shapely.Point(lon, lat),
        unit_code=unit_code,
        site_id=site_id,
        installed_on=installed_on,
    )
    session.add(station)
    session.flush()
    return station


def register_device(
    session: Session,
    station: MonitoringStation,
    *,
    device_type: str,
    device_code: str,
    apikey: str | None = None,
    reporting_interval_s: int = 600,
    vendor: str | None = None,
    model: str | None = None,
    serial: str | None = None,
    installed_at: dt.datetime | None = None,
) -> RegisteredDevice:
    """A device and one sensor per channel of its type (GNSS: X, Y, Z; rain gauge: value, totalValue…)."""
    try:
        kind = SensorType(device_type)
    except ValueError as exc:
        allowed = "、".join(t.value for t in SensorType)
        raise InvalidInput(
            f"unknown device type {device_type!r}", message_zh=f"未知设备类型 {device_type}，可选：{allowed}"
        ) from exc
    if not 1 <= reporting_interval_s <= 86_400:
        raise InvalidInput("reporting interval must be 1 s to 1 day", message_zh="上报间隔须在1秒至1天之间")
    if session.scalar(select(Device.id).where(Device.device_code == device_code)) is not None:
        raise Conflict(f"device {device_code} exists", message_zh=f"设备编号 {device_code} 已存在")
    key = apikey or new_apikey()
    device = Device(
        device_code=device_code, station_id=station.id, device_type=kind.value, vendor=vendor, model=model,
        serial=serial, apikey_hash=hash_apikey(device_code, key), reporting_interval_s=reporting_interval_s,
        installed_at=installed_at, unit_code=station.unit_code,
    )  # fmt: skip
    session.add(device)
    session.flush()
    for ch in CHANNELS[kind]:
        session.add(
            Sensor(code=f"{device_code}.{ch.name}", device_id=device.id, sensor_type=kind.value, channel=ch.name,
                   quantity=ch.quantity, unit=ch.unit, lon=station.lon, lat=station.lat, unit_code=station.unit_code)
        )  # fmt: skip
    session.flush()
    return RegisteredDevice(device, key)


def rotate_apikey(device: Device) -> str:
    key = new_apikey()
    device.apikey_hash = hash_apikey(device.device_code, key)
    return key
