"""An in-process cache of devices and sensors for the ingestion hot path.

Looking a device up costs a dictionary access; a miss reloads that one device from the database,
and unknown devices are remembered for a short while so a flood of bogus ids cannot hammer it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from geowarn.monitoring.models import Device, Sensor

NEGATIVE_TTL_S = 30.0


@dataclass(frozen=True, slots=True)
class SensorInfo:
    id: int
    sensor_type: str
    channel: str
    qc_overrides: dict[str, Any]


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    id: int
    code: str
    apikey_hash: str
    unit_code: str
    device_type: str
    installed_ms: int | None
    interval_s: int
    status: str
    sensors: dict[str, SensorInfo] = field(default_factory=dict)


class DeviceCache:
    def __init__(self, db: Any) -> None:
        self.db = db
        self._devices: dict[str, DeviceInfo] = {}
        self._missing: dict[str, float] = {}
        self._lock = threading.Lock()

    def get(self, code: str) -> DeviceInfo | None:
        with self._lock:
            info = self._devices.get(code)
            if info is not None:
                return info
            missed = self._missing.get(code)
            if missed is not None and time.monotonic() - missed < NEGATIVE_TTL_S:
                return None
        info = self._load(code)
        with self._lock:
            if info is None:
                if len(self._missing) > 100_000:
                    self._missing.clear()
                self._missing[code] = time.monotonic()
            else:
                self._devices[code] = info
                self._missing.pop(code, None)
        return info

    def invalidate(self, code: str | None = None) -> None:
        with self._lock:
            if code is None:
                self._devices.clear()
                self._missing.clear()
            else:
                self._devices.pop(code, None)
                self._missing.pop(code, None)

    def _load(self, code: str) -> DeviceInfo | None:
        with self.db.read() as s:
            dev = s.scalars(select(Device).where(Device.device_code == code)).one_or_none()
            if dev is None:
                return None
            sensors = s.scalars(select(Sensor).where(Sensor.device_id == dev.id, Sensor.active.is_(True))).all()
            installed = int(dev.installed_at.timestamp() * 1000) if dev.installed_at else None
            return DeviceInfo(
                id=dev.id,
                code=dev.device_code,
                apikey_hash=dev.apikey_hash,
                unit_code=dev.unit_code,
                device_type=dev.device_type,
                installed_ms=installed,
                interval_s=dev.reporting_interval_s,
                status=dev.status,
                sensors={
                    x.channel: SensorInfo(x.id, x.sensor_type, x.channel, dict(x.qc_overrides or {})) for x in sensors
                },
            )
