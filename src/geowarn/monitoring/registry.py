"""An in-process cache of devices and sensors for the ingestion hot path.

Looking a device up costs a dictionary access. The devices of a batch that are not cached are loaded
together (two queries, however many: a worker's first batch meets thousands of devices at once), and
unknown devices are remembered for a short while so a flood of bogus ids cannot hammer the database.

A known device is read again once its entry is :data:`TTL_S` old. The process that changes a device
(a new key, retirement, QC overrides) drops its entry at once (``invalidate``); every other process
(MQTT workers, the other ``serve`` workers) sees the change within that time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from geowarn.monitoring.models import Device, Sensor

NEGATIVE_TTL_S = 30.0
#: Seconds a known device's entry is trusted before it is read again (a rotated key stops working
#: everywhere within this time).
TTL_S = 30.0


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
        self._devices: dict[str, tuple[DeviceInfo, float]] = {}  # code -> (device, when read)
        self._missing: dict[str, float] = {}
        self._lock = threading.Lock()

    def get(self, code: str) -> DeviceInfo | None:
        return self.get_many((code,))[code]

    def get_many(self, codes: Iterable[str]) -> dict[str, DeviceInfo | None]:
        """The devices of ``codes`` (None: not registered); those not cached are loaded in one go."""
        out: dict[str, DeviceInfo | None] = {}
        wanted: list[str] = []
        with self._lock:
            now = time.monotonic()
            for code in codes:
                if code in out:
                    continue
                hit = self._devices.get(code)
                info = hit[0] if hit is not None and now - hit[1] < TTL_S else None
                missed = self._missing.get(code) if hit is None else None
                if info is not None or (missed is not None and now - missed < NEGATIVE_TTL_S):
                    out[code] = info
                else:
                    out[code] = None
                    wanted.append(code)
        if not wanted:
            return out
        loaded = self._load_many(wanted)
        with self._lock:
            now = time.monotonic()
            if len(self._missing) > 100_000:
                self._missing.clear()
            for code in wanted:
                info = loaded.get(code)
                out[code] = info
                if info is None:
                    self._missing[code] = now
                else:
                    self._devices[code] = (info, now)
                    self._missing.pop(code, None)
        return out

    def invalidate(self, code: str | None = None) -> None:
        with self._lock:
            if code is None:
                self._devices.clear()
                self._missing.clear()
            else:
                self._devices.pop(code, None)
                self._missing.pop(code, None)

    def _load_many(self, codes: list[str]) -> dict[str, DeviceInfo]:
        out: dict[str, DeviceInfo] = {}
        with self.db.read() as s:
            for i in range(0, len(codes), 500):
                devices = s.execute(
                    select(Device.id, Device.device_code, Device.apikey_hash, Device.unit_code, Device.device_type,
                           Device.installed_at, Device.reporting_interval_s, Device.status)
                    .where(Device.device_code.in_(codes[i : i + 500]))
                ).all()  # fmt: skip
                if not devices:
                    continue
                sensors: dict[int, dict[str, SensorInfo]] = {d.id: {} for d in devices}
                for x in s.execute(
                    select(Sensor.id, Sensor.device_id, Sensor.sensor_type, Sensor.channel, Sensor.qc_overrides)
                    .where(Sensor.device_id.in_(list(sensors)), Sensor.active.is_(True))
                ):  # fmt: skip
                    overrides = dict(x.qc_overrides or {})
                    sensors[x.device_id][x.channel] = SensorInfo(x.id, x.sensor_type, x.channel, overrides)
                for d in devices:
                    out[d.device_code] = DeviceInfo(
                        id=d.id,
                        code=d.device_code,
                        apikey_hash=d.apikey_hash,
                        unit_code=d.unit_code,
                        device_type=d.device_type,
                        installed_ms=int(d.installed_at.timestamp() * 1000) if d.installed_at else None,
                        interval_s=d.reporting_interval_s,
                        status=d.status,
                        sensors=sensors[d.id],
                    )
        return out
