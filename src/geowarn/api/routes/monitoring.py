"""``/api/monitoring``: the register of the monitoring network (一张网) — stations, devices, sensors.

Scoped like the hazard register: records outside the caller's unit are not found; Reader to read,
Writer to change. A device's apikey is returned once, when it is issued, and never again. Every
change of a device or sensor drops it from the ingestion cache so the next message sees it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Query, status
from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from geowarn.api.deps import Reader, ReadSession, Writer, WriteSession
from geowarn.api.routes.monitoring_common import IngestorDep
from geowarn.api.schemas.common import Page
from geowarn.api.schemas.monitoring import (
    ApiKeyPublic,
    DeviceCreate,
    DevicePublic,
    DeviceStatus,
    DeviceUpdate,
    DeviceWithKey,
    OpenEvent,
    SensorPublic,
    SensorUpdate,
    StationCreate,
    StationPublic,
    StationUpdate,
    iso_ms,
)
from geowarn.api.scoping import apply_changes, check_ref, check_unit, get_scoped, page, scope_filter
from geowarn.errors import InvalidInput
from geowarn.inventory.models import HazardSite
from geowarn.monitoring.domain import SensorType
from geowarn.monitoring.files import relocate_station
from geowarn.monitoring.ingest import Ingestor
from geowarn.monitoring.models import Device, DeviceEvent, MonitoringStation, Sensor
from geowarn.monitoring.qc.config import qc_config_for
from geowarn.monitoring.service import register_device, register_station, rotate_apikey

router = APIRouter(prefix="/monitoring", tags=["monitoring: register"])


def forget(ingestor: Ingestor, background: BackgroundTasks, *codes: str) -> None:
    """Drop devices from the ingestion cache now and again after the commit (a message in between
    could reload the old row)."""
    for code in codes:
        ingestor.cache.invalidate(code)
        background.add_task(ingestor.cache.invalidate, code)


# --- stations ---------------------------------------------------------------------------------


@router.get("/stations", response_model=Page[StationPublic])
def list_stations(
    session: ReadSession,
    user: Reader,
    site_id: int | None = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[StationPublic]:
    stmt = select(MonitoringStation).where(scope_filter(MonitoringStation, user)).order_by(MonitoringStation.code)
    if site_id is not None:
        stmt = stmt.where(MonitoringStation.site_id == site_id)
    if q:
        stmt = stmt.where(
            MonitoringStation.name.icontains(q, autoescape=True) | MonitoringStation.code.icontains(q, autoescape=True)
        )
    rows, total = page(session, stmt, limit, offset)
    return Page[StationPublic](
        items=[StationPublic.model_validate(r) for r in rows], total=total, limit=limit, offset=offset
    )


@router.get("/stations/{station_id}", response_model=StationPublic)
def get_station(station_id: int, session: ReadSession, user: Reader) -> StationPublic:
    return StationPublic.model_validate(get_scoped(session, MonitoringStation, station_id, user))


def _site_unit(session: Session, user: Any, site_id: int | None) -> str | None:
    check_ref(session, HazardSite, site_id, user, "site_id")
    return None if site_id is None else session.scalar(select(HazardSite.unit_code).where(HazardSite.id == site_id))


@router.post("/stations", response_model=StationPublic, status_code=status.HTTP_201_CREATED)
def create_station(body: StationCreate, session: WriteSession, user: Writer) -> StationPublic:
    site_unit = _site_unit(session, user, body.site_id)
    unit = body.unit_code or site_unit or user.unit_code
    check_unit(session, user, unit)
    station = register_station(
        session, code=body.code, name=body.name, lon=body.lon, lat=body.lat, unit_code=unit,
        site_id=body.site_id, installed_on=body.installed_on,
    )  # fmt: skip
    if body.status:
        station.status = body.status
    return StationPublic.model_validate(station)


@router.patch("/stations/{station_id}", response_model=StationPublic)
def update_station(
    station_id: int,
    body: StationUpdate,
    session: WriteSession,
    user: Writer,
    ingestor: IngestorDep,
    background: BackgroundTasks,
) -> StationPublic:
    station = get_scoped(session, MonitoringStation, station_id, user, for_update=True)
    data = body.model_dump(exclude_unset=True)
    if "site_id" in data:
        _site_unit(session, user, data["site_id"])
    if data.get("unit_code") is not None:
        check_unit(session, user, data["unit_code"])
    place = {k: data.pop(k) for k in ("unit_code", "lon", "lat") if k in data}
    apply_changes(station, data, frozenset({"name", "status"}))
    if place:
        if any(v is None for v in place.values()):
            raise InvalidInput("unit_code, lon and lat may not be null", message_zh="位置和行政区不能为空")
        relocate_station(
            session, station, place.get("unit_code", station.unit_code), place.get("lon", station.lon),
            place.get("lat", station.lat),
        )  # fmt: skip
        forget(
            ingestor, background, *session.scalars(select(Device.device_code).where(Device.station_id == station.id))
        )
    session.flush()
    return StationPublic.model_validate(station)


# --- devices ----------------------------------------------------------------------------------


def device_public(device: Device, event: DeviceEvent | None, *, sensors: list[Sensor] | None = None) -> DevicePublic:
    out = DevicePublic.model_validate(device, from_attributes=True)
    out.last_seen = iso_ms(device.last_seen_ms)
    if event is not None:
        out.open_event = OpenEvent(id=event.id, kind=event.kind, started=iso_ms(event.started_ms))
    if sensors is not None:
        out.sensors = [SensorPublic.model_validate(x) for x in sensors]
    return out


_OPEN = and_(DeviceEvent.device_id == Device.id, DeviceEvent.kind == "offline", DeviceEvent.ended_ms.is_(None))


@router.get("/devices", response_model=Page[DevicePublic])
def list_devices(
    session: ReadSession,
    user: Reader,
    station_id: int | None = None,
    type: SensorType | None = None,
    status: DeviceStatus | None = None,
    online: Annotated[bool | None, Query(description="false: silent (open offline event) or never seen")] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[DevicePublic]:
    stmt = (
        select(Device, DeviceEvent)
        .outerjoin(DeviceEvent, _OPEN)
        .where(scope_filter(Device, user))
        .order_by(Device.device_code, Device.id)
    )
    if station_id is not None:
        stmt = stmt.where(Device.station_id == station_id)
    if type is not None:
        stmt = stmt.where(Device.device_type == type.value)
    if status is not None:
        stmt = stmt.where(Device.status == status)
    if online is True:
        stmt = stmt.where(DeviceEvent.id.is_(None), Device.last_seen_ms.is_not(None))
    elif online is False:
        stmt = stmt.where(DeviceEvent.id.is_not(None) | Device.last_seen_ms.is_(None))
    total = len(session.execute(stmt.with_only_columns(Device.id)).all())
    rows = session.execute(stmt.limit(limit).offset(offset)).all()
    return Page[DevicePublic](items=[device_public(d, e) for d, e in rows], total=total, limit=limit, offset=offset)


def _device_out(session: Session, device: Device) -> DevicePublic:
    event = session.scalars(
        select(DeviceEvent).where(
            DeviceEvent.device_id == device.id, DeviceEvent.kind == "offline", DeviceEvent.ended_ms.is_(None)
        )
    ).first()
    sensors = list(session.scalars(select(Sensor).where(Sensor.device_id == device.id).order_by(Sensor.id)))
    return device_public(device, event, sensors=sensors)


@router.get("/devices/{device_id}", response_model=DevicePublic)
def get_device(device_id: int, session: ReadSession, user: Reader) -> DevicePublic:
    return _device_out(session, get_scoped(session, Device, device_id, user))


@router.post("/devices", response_model=DeviceWithKey, status_code=status.HTTP_201_CREATED)
def create_device(
    body: DeviceCreate, session: WriteSession, user: Writer, ingestor: IngestorDep, background: BackgroundTasks
) -> DeviceWithKey:
    """Register a device and one sensor per channel of its type; the apikey is in this response only."""
    check_ref(session, MonitoringStation, body.station_id, user, "station_id")
    station = get_scoped(session, MonitoringStation, body.station_id, user)
    reg = register_device(
        session, station, device_type=body.device_type.value, device_code=body.device_code, apikey=body.apikey,
        reporting_interval_s=body.reporting_interval_s, vendor=body.vendor, model=body.model, serial=body.serial,
        installed_at=body.installed_at,
    )  # fmt: skip
    forget(ingestor, background, body.device_code)
    out = _device_out(session, reg.device)
    return DeviceWithKey(**out.model_dump(), apikey=reg.apikey)


@router.patch("/devices/{device_id}", response_model=DevicePublic)
def update_device(
    device_id: int,
    body: DeviceUpdate,
    session: WriteSession,
    user: Writer,
    ingestor: IngestorDep,
    background: BackgroundTasks,
) -> DevicePublic:
    device = get_scoped(session, Device, device_id, user, for_update=True)
    apply_changes(device, body.model_dump(exclude_unset=True), frozenset({"status", "reporting_interval_s"}))
    session.flush()
    forget(ingestor, background, device.device_code)
    return _device_out(session, device)


@router.post("/devices/{device_id}/apikey", response_model=ApiKeyPublic)
def rotate_device_key(
    device_id: int, session: WriteSession, user: Writer, ingestor: IngestorDep, background: BackgroundTasks
) -> ApiKeyPublic:
    """Issue a new apikey (the old one stops working at once); shown in this response only."""
    device = get_scoped(session, Device, device_id, user, for_update=True)
    key = rotate_apikey(device)
    session.flush()
    forget(ingestor, background, device.device_code)
    return ApiKeyPublic(device_code=device.device_code, apikey=key)


# --- sensors ----------------------------------------------------------------------------------


@router.get("/sensors/{sensor_id}", response_model=SensorPublic)
def get_sensor(sensor_id: int, session: ReadSession, user: Reader) -> SensorPublic:
    return SensorPublic.model_validate(get_scoped(session, Sensor, sensor_id, user))


@router.patch("/sensors/{sensor_id}", response_model=SensorPublic)
def update_sensor(
    sensor_id: int,
    body: SensorUpdate,
    session: WriteSession,
    user: Writer,
    ingestor: IngestorDep,
    background: BackgroundTasks,
) -> SensorPublic:
    """Change a sensor; ``qc_overrides`` must validate against its type's QC settings (422 with the reason)."""
    sensor = get_scoped(session, Sensor, sensor_id, user, for_update=True)
    data = body.model_dump(exclude_unset=True)
    if "qc_overrides" in data:
        data["qc_overrides"] = data["qc_overrides"] or {}
        qc_config_for(sensor.sensor_type, channel=sensor.channel, overrides=data["qc_overrides"])
    apply_changes(sensor, data, frozenset({"active", "qc_overrides"}))
    session.flush()
    code = session.scalar(select(Device.device_code).where(Device.id == sensor.device_id))
    if code:
        forget(ingestor, background, code)
    return SensorPublic.model_validate(sensor)
