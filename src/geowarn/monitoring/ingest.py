"""The one ingestion path for MQTT, HTTP and files.

``Ingestor.ingest`` takes raw payloads, and in one transaction stores every valid reading once
(idempotent on sensor and time), with its quality flags, moves each sensor's latest value and each
device's last-seen time forward, and writes everything it could not store to the dead-letter table
with the raw payload and the reason. Callers acknowledge their source (MQTT ack, HTTP response)
only after ``ingest`` returns, so a crash before the commit loses nothing: the source sends again
and the idempotent write stores it once. After the commit, listeners (the warning engine) receive
the readings newly stored (:class:`StoredBatch`).

Per-reading work is vectorised over the whole batch: the payloads are parsed one by one, then the
readings of all of them are checked, quality-controlled and written as columns.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import insert

from geowarn.monitoring.keys import ApikeyCheck
from geowarn.monitoring.payloads import NO_TIME, Message, parse_payload
from geowarn.monitoring.quality import assess
from geowarn.monitoring.registry import DeviceCache, DeviceInfo, SensorInfo
from geowarn.monitoring.store import (
    ObservationBatch,
    dedupe_in_batch,
    lock_devices,
    prepare_partitions,
    recompute_hourly,
    touch_devices,
    update_hourly,
    update_latest,
    write_observations,
)

log = logging.getLogger(__name__)

#: Readings stamped further ahead than this are refused (device clocks drift; 5 min is generous).
MAX_FUTURE_MS = 5 * 60 * 1000
#: Dead letters keep at most this much of a payload (the size is kept too).
DEAD_LETTER_KEEP = 1_048_576
#: Reading checks in the order they are reported (a reading failing several counts under the first).
_CHECKS = ("unknown_channel", "future_time", "before_install")


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


@dataclass(frozen=True, slots=True)
class StoredBatch:
    """The readings one committed batch stored, duplicates left out: what listeners receive.

    Columns of equal length; ``qc_flag`` is the aggregate QARTOD flag (1 good … 9 missing);
    ``committed_at`` the commit time in epoch seconds.
    """

    sensor_id: npt.NDArray[np.int64]
    t_ms: npt.NDArray[np.int64]
    value: npt.NDArray[np.float64]
    qc_flag: npt.NDArray[np.uint8]
    committed_at: float

    def __len__(self) -> int:
        return int(self.sensor_id.size)

    # The names the warning engine's first listeners read (they took an IngestReport).
    @property
    def stored_sensor_ids(self) -> npt.NDArray[np.int64]:
        return self.sensor_id

    @property
    def stored_t_ms(self) -> npt.NDArray[np.int64]:
        return self.t_ms


Listener = Callable[[StoredBatch], None]


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
    #: rejected readings by reason (the report's ``reasons`` add up to its ``rejected``)
    readings: Counter[str] = field(default_factory=Counter)


@dataclass(slots=True)
class _Readings:
    """The readings of the authorised messages as columns; ``message`` indexes the message of each."""

    channels: list[str]
    sensor_id: npt.NDArray[np.int64]
    t_ms: npt.NDArray[np.int64]
    value: npt.NDArray[np.float64]
    message: npt.NDArray[np.intp]

    @classmethod
    def of(cls, messages: list[tuple[RawPayload, Message, DeviceInfo]]) -> _Readings:
        # Small messages (one reading of each channel, the MQTT case) go through flat lists; big ones
        # (HTTP bulk, parsed straight into arrays) are kept as arrays.
        ch: list[str] = []
        times: list[int] = []
        values: list[float] = []
        ids: list[int] = []
        owner: list[int] = []
        big: list[tuple[int, list[str], Any, Any, Any]] = []
        for k, (_, msg, device) in enumerate(messages):
            sensors = device.sensors
            if msg.arrays is None:
                if msg.channels:
                    ch += msg.channels
                    times += msg.times
                    values += msg.values
                    ids += [-1 if (s := sensors.get(c)) is None else s.id for c in msg.channels]
                    owner += [k] * len(msg.channels)
                continue
            channels, t, v = msg.arrays
            if channels:
                lookup = {c: -1 if (s := sensors.get(c)) is None else s.id for c in set(channels)}
                if len(lookup) == 1:
                    sid = np.full(len(channels), next(iter(lookup.values())), dtype=np.int64)
                else:
                    sid = np.fromiter(map(lookup.__getitem__, channels), dtype=np.int64, count=len(channels))
                big.append((k, channels, t, v, sid))
        for _, channels, *_ in big:
            ch += channels
        return cls(
            ch,
            np.concatenate([np.array(ids, dtype=np.int64)] + [b[4] for b in big]),
            np.concatenate([np.array(times, dtype=np.int64)] + [b[2] for b in big]),
            np.concatenate([np.array(values, dtype=np.float64)] + [b[3] for b in big]),
            np.concatenate([np.array(owner, dtype=np.intp)] + [np.full(len(b[1]), b[0], np.intp) for b in big]),
        )


class Ingestor:
    def __init__(self, db: Any, cache: DeviceCache | None = None) -> None:
        self.db = db
        self.cache = cache or DeviceCache(db)
        self._listeners: list[Listener] = []
        self._keys = ApikeyCheck()

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(stored)`` after each committed batch that stored new readings, with a
        :class:`StoredBatch` of them (the warning engine's intake). A failing listener is logged and never
        undoes or blocks ingestion; with no listener registered nothing is built for them."""
        self._listeners.append(listener)

    def ingest(self, payloads: list[RawPayload], *, now_ms: int | None = None) -> IngestReport:
        now = now_ms if now_ms is not None else int(time.time() * 1000)
        report = IngestReport()
        dead: list[_Dead] = []
        parsed = [parse_payload(p.body) for p in payloads]
        for p, msg in zip(payloads, parsed, strict=True):
            if p.apikey is not None and msg.apikey is None and msg.device_code is not None:
                msg.apikey = p.apikey
        devices = self.cache.get_many({m.device_code for m in parsed if m.device_code is not None})
        messages: list[tuple[RawPayload, Message, DeviceInfo]] = []
        for p, msg in zip(payloads, parsed, strict=True):
            device = self._authorise(msg, p, devices, dead)
            if device is None:  # the whole message is refused, every reading in it for the one reason
                report.rejected += max(len(msg), 1)
                dead[-1].readings[dead[-1].reason] = max(len(msg), 1)
            else:
                messages.append((p, msg, device))
        batch, meta, seen = self._check(messages, now, report, dead)
        batch, in_batch_dupes = dedupe_in_batch(batch)
        report.duplicate += in_batch_dupes
        if len(batch) and self.db.backend == "postgresql":
            prepare_partitions(self.db.writer_engine, batch.t_ms)
        stored = None
        with self.db.writer_engine.begin() as conn:
            lock_devices(conn, list(seen))
            if len(batch):
                qa = assess(conn, batch, meta, now_ms=now)
                new = write_observations(conn, batch, qa.surely_new)
                qa.save_states(conn, batch, new)
                stored = batch.take(new)
                update_latest(conn, stored, {sid: m[1].unit_code for sid, m in meta.items()})
                update_hourly(conn, stored)
                if qa.stale_hours:
                    recompute_hourly(conn, qa.stale_hours)
                report.accepted += len(stored)
                report.duplicate += len(batch) - len(stored)
                report.stored_sensor_ids = stored.sensor_id
                report.stored_t_ms = stored.t_ms
            touch_devices(conn, seen)
            self._write_dead(conn, dead)
        if self._listeners and stored is not None and len(stored):
            self._notify(StoredBatch(stored.sensor_id, stored.t_ms, stored.value, stored.flag.astype(np.uint8),
                                     time.time()))  # fmt: skip
        return report

    def _notify(self, stored: StoredBatch) -> None:
        for listener in self._listeners:
            try:
                listener(stored)
            except Exception:
                log.exception("ingest listener failed", extra={"listener": getattr(listener, "__name__", "?")})

    def _check(
        self, messages: list[tuple[RawPayload, Message, DeviceInfo]], now: int, report: IngestReport, dead: list[_Dead]
    ) -> tuple[ObservationBatch, dict[int, tuple[SensorInfo, DeviceInfo]], dict[int, tuple[int, dict[str, float]]]]:
        """Check the readings of the authorised messages: the batch to store, its sensors, the devices seen."""
        r = _Readings.of(messages)
        received = np.array([p.received_ms for p, _, _ in messages], dtype=np.int64)
        installed = np.array([-(2**62) if d.installed_ms is None else d.installed_ms for _, _, d in messages], np.int64)
        t = np.where(r.t_ms == NO_TIME, received[r.message], r.t_ms)
        reason = np.zeros(t.size, dtype=np.int8)  # 0 ok, else 1 + index in _CHECKS
        for code, mask in enumerate((r.sensor_id < 0, t > now + MAX_FUTURE_MS, t < installed[r.message]), start=1):
            reason[(reason == 0) & mask] = code
        ok = reason == 0
        last = np.full(len(messages), NO_TIME, dtype=np.int64)
        np.maximum.at(last, r.message[ok], t[ok])
        n_bad = np.bincount(r.message[~ok], minlength=len(messages))
        bad_of = _group(np.flatnonzero(~ok), r.message)
        ok_ids = set(np.unique(r.sensor_id[ok]).tolist())
        meta: dict[int, tuple[SensorInfo, DeviceInfo]] = {}
        seen: dict[int, tuple[int, dict[str, float]]] = {}
        for k, (p, msg, device) in enumerate(messages):
            if device.id not in seen:  # its sensors are not in meta yet
                for s in device.sensors.values():
                    if s.id in ok_ids:
                        meta[s.id] = (s, device)
            if last[k] != NO_TIME:
                prev, health = seen.get(device.id, (0, {}))
                seen[device.id] = (max(prev, min(int(last[k]), now)), health)
            if msg.health:
                prev, health = seen.get(device.id, (p.received_ms, {}))
                health.update(msg.health)
                seen[device.id] = (prev, health)
            if msg.rejections or n_bad[k]:
                problems = [f"{x.reason}: {x.detail}" for x in msg.rejections]
                first_reason = msg.rejections[0].reason if msg.rejections else None
                counts: Counter[str] = Counter(x.reason for x in msg.rejections)
                idx = bad_of.get(k, np.zeros(0, np.intp))
                for code, name in enumerate(_CHECKS, start=1):
                    hit = idx[reason[idx] == code]
                    if hit.size:
                        first_reason = first_reason or name
                        counts[name] += int(hit.size)
                        shown = ", ".join(f"{r.channels[i]} at {int(t[i])}" for i in hit[:20].tolist())
                        more = f" and {hit.size - 20} more" if hit.size > 20 else ""
                        problems.append(f"{name}: {shown}{more}")
                dead.append(
                    _Dead(p, first_reason or "invalid", "; ".join(problems)[:4000], device.code, device.unit_code,
                          counts)
                )  # fmt: skip
                report.rejected += len(msg.rejections) + int(n_bad[k])
        for d in dead:
            report.reasons.update(d.readings)
        n = int(ok.sum())
        batch = ObservationBatch(r.sensor_id[ok], t[ok], r.value[ok], np.zeros(n, np.int16), np.zeros(n, np.int32), now)
        return batch, meta, seen

    def _authorise(
        self, msg: Message, p: RawPayload, devices: dict[str, DeviceInfo | None], dead: list[_Dead]
    ) -> DeviceInfo | None:
        if msg.device_code is None or (msg.apikey is None and not p.trusted):
            r = msg.rejections[0] if msg.rejections else None
            dead.append(
                _Dead(p, r.reason if r else "bad_identity", r.detail if r else "no deviceId/apikey", None, None)
            )
            return None
        device = devices.get(msg.device_code)
        if device is None:
            dead.append(
                _Dead(
                    p, "unknown_device", f"deviceId {msg.device_code!r} is not registered", msg.device_code[:64], None
                )
            )
            return None
        if not p.trusted and not self._keys.verify(device.code, msg.apikey or "", device.apikey_hash):
            dead.append(_Dead(p, "unauthorised", "apikey does not match", device.code, device.unit_code))
            return None
        if device.status == "retired":
            dead.append(_Dead(p, "retired_device", "the device is retired", device.code, device.unit_code))
            return None
        return device

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


def _group(rows: npt.NDArray[np.intp], owner: npt.NDArray[np.intp]) -> dict[int, npt.NDArray[np.intp]]:
    """``rows`` grouped by ``owner[rows]`` (order kept within each group)."""
    if rows.size == 0:
        return {}
    o = owner[rows]
    order = np.argsort(o, kind="stable")
    rows, o = rows[order], o[order]
    cuts = np.flatnonzero(np.r_[True, o[1:] != o[:-1]])
    return {int(o[c]): part for c, part in zip(cuts.tolist(), np.split(rows, cuts[1:]), strict=True)}
