"""The one ingestion path for MQTT, HTTP and files.

``Ingestor.ingest`` takes raw payloads, and in one transaction stores every valid reading once
(idempotent on sensor and time), with its quality flags, moves each sensor's latest value and each
device's last-seen time forward, and writes everything it could not store to the dead-letter table
with the raw payload and the reason. Callers acknowledge their source (MQTT ack, HTTP response)
only after ``ingest`` returns, so a crash before the commit loses nothing: the source sends again
and the idempotent write stores it once.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import insert, text

from geowarn.monitoring.keys import verify_apikey
from geowarn.monitoring.payloads import NO_TIME, Message, parse_payload
from geowarn.monitoring.quality import assess
from geowarn.monitoring.registry import DeviceCache, DeviceInfo, SensorInfo
from geowarn.monitoring.store import (
    ObservationBatch,
    dedupe_in_batch,
    recompute_hourly,
    update_hourly,
    update_latest,
    write_observations,
)

log = logging.getLogger(__name__)

#: Readings stamped further ahead than this are refused (device clocks drift; 5 min is generous).
MAX_FUTURE_MS = 5 * 60 * 1000
#: Dead letters keep at most this much of a payload (the size is kept too).
DEAD_LETTER_KEEP = 1_048_576


@dataclass(slots=True)
class RawPayload:
    body: bytes
    source: str  # mqtt / http / file
    channel: str | None = None  # topic, path or file name
    received_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    #: Set by HTTP, where the device key comes in a header rather than in the body.
    apikey: str | None = None
    #: Set only by the operator's file import (``monitoring.files``), never by a device path: the
    #: apikey is not checked, but the device must still be registered and not retired.
    trusted: bool = False


@dataclass(slots=True)
class IngestReport:
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    #: (sensor_id, t_ms) of the readings newly stored, for the warning engine.
    stored_sensor_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    stored_t_ms: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicate": self.duplicate,
            "rejected": self.rejected,
            "reasons": dict(self.reasons),
        }


@dataclass(slots=True)
class _Dead:
    payload: RawPayload
    reason: str
    detail: str
    device_code: str | None
    unit_code: str | None


class Ingestor:
    def __init__(self, db: Any, cache: DeviceCache | None = None) -> None:
        self.db = db
        self.cache = cache or DeviceCache(db)
        self._listeners: list[Callable[[IngestReport], None]] = []

    def add_listener(self, listener: Callable[[IngestReport], None]) -> None:
        """Call ``listener(report)`` after each committed batch that stored new readings (the warning
        engine's intake). A failing listener is logged and never undoes or blocks ingestion."""
        self._listeners.append(listener)

    def ingest(self, payloads: list[RawPayload], *, now_ms: int | None = None) -> IngestReport:
        now = now_ms if now_ms is not None else int(time.time() * 1000)
        report = IngestReport()
        dead: list[_Dead] = []
        id_parts: list[np.ndarray] = []
        t_parts: list[np.ndarray] = []
        v_parts: list[np.ndarray] = []
        seen: dict[int, tuple[int, dict[str, float]]] = {}  # device id -> (last time, health)
        meta: dict[int, tuple[SensorInfo, DeviceInfo]] = {}  # sensor id -> its info and device
        for p in payloads:
            msg = parse_payload(p.body)
            if p.apikey is not None and msg.apikey is None and msg.device_code is not None:
                msg.apikey = p.apikey
            device = self._authorise(msg, p, dead)
            if device is None:
                report.rejected += max(len(msg), 1)
                continue
            problems = [f"{r.reason}: {r.detail}" for r in msg.rejections]
            first_reason = msg.rejections[0].reason if msg.rejections else None
            n_bad = len(msg.rejections)
            channels, t, v = msg.columns()
            if len(channels):
                infos = [device.sensors.get(c) for c in channels]
                ids = np.fromiter((-1 if x is None else x.id for x in infos), dtype=np.int64, count=len(infos))
                t = np.where(t == NO_TIME, p.received_ms, t)
                checks = (
                    ("unknown_channel", ids < 0),
                    ("future_time", t > now + MAX_FUTURE_MS),
                    ("before_install", t < (device.installed_ms if device.installed_ms is not None else -(2**62))),
                )
                bad = np.zeros(len(ids), dtype=bool)
                for reason, mask in checks:
                    mask = mask & ~bad
                    if mask.any():
                        first_reason = first_reason or reason
                        shown = np.flatnonzero(mask)[:20]
                        more = int(mask.sum()) - len(shown)
                        problems.append(
                            f"{reason}: "
                            + ", ".join(f"{channels[k]} at {int(t[k])}" for k in shown)
                            + (f" and {more} more" if more > 0 else "")
                        )
                        bad |= mask
                n_bad += int(bad.sum())
                ok = ~bad
                if ok.any():
                    id_parts.append(ids[ok])
                    t_parts.append(t[ok])
                    v_parts.append(v[ok])
                    for x in infos:
                        if x is not None and x.id not in meta:
                            meta[x.id] = (x, device)
                    last, health = seen.get(device.id, (0, {}))
                    seen[device.id] = (max(last, int(min(t[ok].max(), now))), health)
            if msg.health:
                last, health = seen.get(device.id, (p.received_ms, {}))
                health.update(msg.health)
                seen[device.id] = (last, health)
            if problems:
                dead.append(
                    _Dead(p, first_reason or "invalid", "; ".join(problems)[:4000], device.code, device.unit_code)
                )
                report.rejected += n_bad
        for d in dead:
            report.reasons[d.reason] += 1
        n = sum(len(x) for x in id_parts)
        batch = ObservationBatch(
            np.concatenate(id_parts) if id_parts else np.zeros(0, dtype=np.int64),
            np.concatenate(t_parts) if t_parts else np.zeros(0, dtype=np.int64),
            np.concatenate(v_parts) if v_parts else np.zeros(0, dtype=np.float64),
            np.zeros(n, dtype=np.int16),
            np.zeros(n, dtype=np.int32),
            now,
        )
        batch, in_batch_dupes = dedupe_in_batch(batch)
        report.duplicate += in_batch_dupes
        with self.db.writer_engine.begin() as conn:
            if len(batch):
                stale_hours = assess(conn, batch, meta, now_ms=now)
                new = write_observations(conn, batch)
                stored = batch.take(new)
                update_latest(conn, stored, {sid: m[1].unit_code for sid, m in meta.items()})
                update_hourly(conn, stored)
                if stale_hours:
                    recompute_hourly(conn, stale_hours)
                report.accepted += int(new.sum())
                report.duplicate += int((~new).sum())
                report.stored_sensor_ids = stored.sensor_id
                report.stored_t_ms = stored.t_ms
            self._touch_devices(conn, seen)
            self._write_dead(conn, dead)
        if self._listeners and report.accepted:
            for listener in self._listeners:
                try:
                    listener(report)
                except Exception:
                    log.exception("ingest listener failed")
        return report

    def _authorise(self, msg: Message, p: RawPayload, dead: list[_Dead]) -> DeviceInfo | None:
        if msg.device_code is None or (msg.apikey is None and not p.trusted):
            r = msg.rejections[0] if msg.rejections else None
            dead.append(
                _Dead(p, r.reason if r else "bad_identity", r.detail if r else "no deviceId/apikey", None, None)
            )
            return None
        device = self.cache.get(msg.device_code)
        if device is None:
            dead.append(
                _Dead(
                    p, "unknown_device", f"deviceId {msg.device_code!r} is not registered", msg.device_code[:64], None
                )
            )
            return None
        if not p.trusted and not verify_apikey(device.code, msg.apikey or "", device.apikey_hash):
            dead.append(_Dead(p, "unauthorised", "apikey does not match", device.code, device.unit_code))
            return None
        if device.status == "retired":
            dead.append(_Dead(p, "retired_device", "the device is retired", device.code, device.unit_code))
            return None
        return device

    @staticmethod
    def _touch_devices(conn: Any, seen: dict[int, tuple[int, dict[str, float]]]) -> None:
        if not seen:
            return
        conn.execute(  # one executemany for the whole batch
            text(
                "UPDATE device SET last_seen_ms = CASE WHEN last_seen_ms IS NULL OR last_seen_ms < :t "
                "THEN :t ELSE last_seen_ms END, battery = COALESCE(:b, battery), signal = COALESCE(:s, signal) "
                "WHERE id = :id"
            ),
            [
                {"t": last, "b": health.get("battery"), "s": health.get("signal"), "id": device_id}
                for device_id, (last, health) in sorted(seen.items())
            ],
        )

    @staticmethod
    def _write_dead(conn: Any, dead: list[_Dead]) -> None:
        if not dead:
            return
        from geowarn.db import utcnow
        from geowarn.monitoring.models import DeadLetter

        conn.execute(
            insert(DeadLetter),
            [
                {
                    "received_at": utcnow(),
                    "source": d.payload.source,
                    "channel": (d.payload.channel or "")[:300],
                    "device_code": d.device_code,
                    "unit_code": d.unit_code,
                    "reason": d.reason[:40],
                    "detail": d.detail,
                    "payload": d.payload.body[:DEAD_LETTER_KEEP],
                    "payload_size": len(d.payload.body),
                }
                for d in dead
            ],
        )
        for d in dead:
            log.info("dead letter", extra={"reason": d.reason, "device": d.device_code, "source": d.payload.source})
