"""A seeded simulator of the demo county's devices, feeding the real ingestion path.

It speaks the national device-platform payload style and either calls the ``Ingestor`` in-process
or publishes to an MQTT broker (then a ``geowarn worker`` stores the readings). Rain comes in
showers, GNSS and crack meters creep slowly with noise, and now and then a device falls silent for
a few hours (so online rates and offline events have something to show). Same seed, same readings.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import orjson
from sqlalchemy import select

from geowarn.inventory.models import HazardSite
from geowarn.monitoring.models import Device
from geowarn.monitoring.service import register_device, register_station

log = logging.getLogger(__name__)

MIN_MS = 60_000


class Sink(Protocol):
    def send(self, topic: str, payloads: list[bytes], now_ms: int) -> None: ...


@dataclass
class SimDevice:
    code: str
    apikey: str
    kind: str
    interval_ms: int
    next_ms: int = 0
    level: float = 0.0  # cumulative displacement (mm) or rain counter
    creep_mm_per_h: float = 0.0
    silent_until_ms: int = 0
    lon: float = 0.0
    lat: float = 0.0


def demo_apikey(seed: int, device_code: str) -> str:
    """Deterministic demo keys, so a rebuilt demo accepts the same simulator (never for real devices)."""
    return hashlib.sha256(f"geowarn-demo-{seed}-{device_code}".encode()).hexdigest()[:32]


def register_demo_network(db: Any, *, seed: int = 2021, installed_at: Any = None) -> list[SimDevice]:
    """Stations and devices on the instrumented sites of the register: a GNSS station on each, a
    crack meter on every second one, a rain gauge on every third. Returns the simulated devices."""
    rng = np.random.default_rng(seed + 17)
    devices: list[SimDevice] = []
    with db.write("demo") as s:
        sites = s.scalars(
            select(HazardSite).where(HazardSite.monitoring_mode.in_(("instrumented", "both"))).order_by(HazardSite.code)
        ).all()
        for i, site in enumerate(sites):
            station = register_station(s, code=f"JC{site.code}", name=f"{site.name}监测点", lon=site.lon, lat=site.lat,
                                       unit_code=site.unit_code, site_id=site.id)  # fmt: skip
            kinds = [("GP", 1_800)] + ([("LF", 600)] if i % 2 == 0 else []) + ([("RAIN", 600)] if i % 3 == 0 else [])
            for kind, interval in kinds:
                code = f"{kind}{site.code[-8:]}"
                key = demo_apikey(seed, code)
                register_device(s, station, device_type=kind, device_code=code, apikey=key,
                                reporting_interval_s=interval, vendor="示范厂商", model=f"{kind}-100",
                                serial=f"SN{seed}{i:04d}{kind}", installed_at=installed_at)  # fmt: skip
                creep = float(rng.lognormal(-4.5, 0.8)) if kind != "RAIN" else 0.0
                devices.append(
                    SimDevice(code, key, kind, interval * 1000, creep_mm_per_h=creep, lon=site.lon, lat=site.lat)
                )
    return devices


@dataclass
class Simulator:
    devices: list[SimDevice]
    seed: int = 2021
    #: Probability per report that a device then falls silent for 2-8 hours.
    outage_p: float = 0.002
    rng: np.random.Generator = field(init=False)
    #: Showers over the county as (start, end, mm per 10 minutes), drawn hour by hour in time order
    #: from their own generator, so every gauge sees the same showers whatever order it reports in.
    _showers: list[tuple[int, int, float]] = field(init=False, default_factory=list)
    _shower_rng: np.random.Generator = field(init=False)
    _showers_to_ms: int | None = field(init=False, default=None)
    #: An event played over the normal behaviour (``demo.replay.TyphoonScenario``): rain at a
    #: gauge for an interval, and extra displacement of a device, or None where it has no say.
    scenario: Any = None

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)
        self._shower_rng = np.random.default_rng([self.seed, 1])

    def start_at(self, t_ms: int) -> None:
        for d in self.devices:
            d.next_ms = t_ms - t_ms % d.interval_ms + int(self.rng.integers(0, d.interval_ms // MIN_MS)) * MIN_MS

    def step(self, until_ms: int) -> list[tuple[str, bytes]]:
        """Every report due up to ``until_ms``, as (topic, payload), in time order per device."""
        out: list[tuple[str, bytes]] = []
        for d in self.devices:
            while d.next_ms <= until_ms:
                t = d.next_ms
                d.next_ms += d.interval_ms
                if t < d.silent_until_ms:
                    continue
                outage = self.rng.random() < self.outage_p
                if outage and not (self.scenario is not None and d.code in self.scenario.accelerating):
                    d.silent_until_ms = t + int(self.rng.integers(2, 9)) * 3_600_000
                out.append((f"geowarn/{d.code}/up", orjson.dumps(self._payload(d, t))))
        return out

    def _shower_at(self, t: int) -> float:
        """mm per 10 minutes of the shower falling at ``t`` (0 when dry).

        About one shower every two days, 1-6 hours of light to moderate rain (about 3.6 mm/h on
        average): a quiet county's day stays below the blue threshold of 50 mm. (Each gauge used to
        draw showers as it went through its own reports, so a gauge reporting later in a batch rained
        for as long as another gauge's later shower lasted: 150-210 mm in a "quiet" day.)"""
        if self._showers_to_ms is None:
            self._showers_to_ms = t - t % 3_600_000 - 7 * 86_400_000
        while self._showers_to_ms <= t:
            hour = self._showers_to_ms
            self._showers_to_ms += 3_600_000
            if self._shower_rng.random() < 0.02:
                hours = int(self._shower_rng.integers(1, 7))
                self._showers.append((hour, hour + hours * 3_600_000, float(self._shower_rng.gamma(2.0, 0.3))))
        return next((mm for start, end, mm in reversed(self._showers) if start <= t < end), 0.0)

    def _rain_mm(self, t: int, interval_ms: int) -> float:
        mm = self._shower_at(t)
        if mm > 0:
            return round(max(mm * (interval_ms / 600_000) * self.rng.gamma(2, 0.5), 0.0), 1)
        return 0.0

    def _payload(self, d: SimDevice, t: int) -> dict[str, Any]:
        data: dict[str, Any] = {"ts": t, "battery": round(float(12.6 - self.rng.random() * 0.6), 2),
                                "rssi": int(-60 - self.rng.integers(0, 30))}  # fmt: skip
        hours = d.interval_ms / 3_600_000
        if d.kind == "RAIN":
            event_mm = self.scenario.rain_mm(d, t) if self.scenario is not None else None
            mm = self._rain_mm(t, d.interval_ms) if event_mm is None else event_mm
            d.level = round(d.level + mm, 1)
            data.update(value=mm, totalValue=d.level)
        elif d.kind == "GP":
            d.level += d.creep_mm_per_h * hours
            noise = self.rng.normal(0, 1.2, 3)
            x, y, z = (float(v) for v in noise)
            total = d.level + (self.scenario.extra_mm(d, t) if self.scenario is not None else 0.0)
            data.update(gpsTotalX=round(total * 0.8 + x, 2), gpsTotalY=round(total * 0.6 + y, 2),
                        gpsTotalZ=round(-total * 0.3 + z * 2, 2))  # fmt: skip
        elif d.kind == "LF":
            d.level += d.creep_mm_per_h * hours * 0.5
            extra = self.scenario.extra_mm(d, t) if self.scenario is not None else 0.0
            data.update(value=round(d.level + extra + float(self.rng.normal(0, 0.05)), 3))
        return {"deviceId": d.code, "apikey": d.apikey, "data": data}


class IngestSink:
    """Delivers payloads in-process through the ingestion path (no broker needed)."""

    def __init__(self, ingestor: Any) -> None:
        self.ingestor = ingestor

    def send(self, topic: str, payloads: list[bytes], now_ms: int) -> None:
        from geowarn.monitoring.ingest import RawPayload

        self.ingestor.ingest([RawPayload(p, "sim", topic, now_ms) for p in payloads], now_ms=now_ms)


def run_batch(sim: Simulator, sink: Any, until_ms: int, now_ms: int) -> int:
    """Generate everything due up to ``until_ms`` and send it; returns the number of messages."""
    messages = sim.step(until_ms)
    if not messages:
        return 0
    if isinstance(sink, IngestSink):
        sink.send("sim", [m for _, m in messages], now_ms)
    else:
        for topic, body in messages:
            sink.send(topic, [body], now_ms)
    return len(messages)


def known_device_codes(db: Any) -> list[str]:
    with db.read() as s:
        return list(s.scalars(select(Device.device_code).order_by(Device.device_code)))
