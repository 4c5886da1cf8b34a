"""Parsing device payloads into readings, with no I/O.

Two styles are accepted, both JSON objects with ``deviceId`` and ``apikey``:

* the national device-platform style: ``{"deviceId": "…", "apikey": "…", "data": {...}}`` where
  ``data`` holds type-specific fields (``gpsTotalX``, ``value``/``totalValue`` for rain…) and an
  optional time (``time``/``ts``/``collectTime``), or ``"data": [{...}, {...}]`` for several readings;
* geowarn's own: ``{"deviceId": "…", "apikey": "…", "readings": [{"channel": "gpsTotalX",
  "t": "2026-07-01T08:00:00+08:00" | epoch ms, "value": 1.2}, …]}``.

Anything that cannot be read becomes a :class:`Rejection` with a machine reason and a human detail;
nothing is dropped silently. Hostile input is bounded: the payload size and the number of readings per
message are limited before any work is done; orjson refuses nesting deeper than 1,024 levels (and the
fallback parser's recursion limit is caught), and a nested value where a number belongs is refused as
a bad value.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from itertools import repeat
from operator import itemgetter
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from geowarn.monitoring.domain import HEALTH_FIELDS, TIME_FIELDS

MAX_PAYLOAD_BYTES = 1_048_576
MAX_READINGS = 10_000
MAX_KEY_LEN = 64
#: Epoch-ms values below this are taken as epoch seconds (devices send both).
_MS_THRESHOLD = 100_000_000_000
#: The times a reading may have, epoch ms: 1970-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z. Anything
#: outside is refused as ``bad_time`` here, at the parsing boundary: 2**63 or 1e30 would overflow the
#: int64 time column, -2**63 is :data:`NO_TIME`, and times before 1970 or past year 9999 have no
#: monthly partition (``datetime`` cannot hold them) and come only from broken device clocks.
MIN_TIME_MS = 0
MAX_TIME_MS = 253_402_300_799_999


@dataclass(slots=True)
class Reading:
    channel: str
    t_ms: int | None  # None: the device gave no time; the receiver stamps it
    value: float


@dataclass(slots=True)
class Rejection:
    reason: str  # machine code: bad_json, too_large, too_deep, bad_shape, bad_value, bad_time, ...
    detail: str
    channel: str | None = None


#: Stands for "no time given" in the time column (the receiver stamps such readings).
NO_TIME = -(2**63)


@dataclass(slots=True)
class Message:
    """One parsed message; its readings are kept as columns (channel, time in ms, value)."""

    device_code: str | None
    apikey: str | None
    channels: list[str] = field(default_factory=list)
    times: list[int] = field(default_factory=list)  # NO_TIME where the device gave none
    values: list[float] = field(default_factory=list)
    health: dict[str, float] = field(default_factory=dict)
    rejections: list[Rejection] = field(default_factory=list)
    #: Set by the vectorised path instead of the three lists above.
    arrays: tuple[list[str], npt.NDArray[np.int64], npt.NDArray[np.float64]] | None = None

    def add(self, channel: str, t_ms: int | None, value: float) -> None:
        self.channels.append(channel)
        self.times.append(NO_TIME if t_ms is None else t_ms)
        self.values.append(value)

    def columns(self) -> tuple[list[str], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        if self.arrays is not None:
            return self.arrays
        return self.channels, np.asarray(self.times, dtype=np.int64), np.asarray(self.values, dtype=np.float64)

    def __len__(self) -> int:
        return len(self.arrays[0]) if self.arrays is not None else len(self.channels)

    @property
    def readings(self) -> list[Reading]:
        ch, t, v = self.columns()
        return [Reading(c, None if x == NO_TIME else int(x), float(y)) for c, x, y in zip(ch, t, v, strict=True)]

    def clear(self) -> None:
        self.channels, self.times, self.values, self.arrays = [], [], [], None


def parse_time_ms(value: Any) -> int:
    """Epoch ms from epoch s/ms numbers or ISO 8601 text; naive times are China Standard Time (+08:00).

    Raises ValueError for anything else, and for a time outside ``MIN_TIME_MS``…``MAX_TIME_MS``
    (1970 to 9999 UTC), such as 2**63, -2**63 - 1 or 1e30 seconds.
    """
    t_ms = _time_ms(value)
    if not MIN_TIME_MS <= t_ms <= MAX_TIME_MS:
        raise ValueError(f"time out of range (1970-01-01 to 9999-12-31 UTC): {_shown(value)}")
    return t_ms


def _time_ms(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("a boolean is not a time")
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):  # math.isfinite(10**400) would overflow
            raise ValueError("time is not finite")
        return round(value * 1000) if abs(value) < _MS_THRESHOLD else int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return _time_ms(int(text))
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.timezone(dt.timedelta(hours=8)))
        return int(parsed.timestamp() * 1000)
    raise ValueError(f"not a time: {type(value).__name__}")


def _shown(value: Any) -> str:
    """A short form of a refused value for the dead letter's detail (the raw payload is kept whole)."""
    if isinstance(value, int) and value.bit_length() > 128:
        return f"a {value.bit_length()}-bit integer"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _number(value: Any) -> float:
    if isinstance(value, dict | list):
        raise ValueError("a nested value where a number belongs")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"not a number: {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError as exc:
        raise ValueError("number out of range") from exc
    if not math.isfinite(number):
        raise ValueError(f"not a finite number: {value!r}")
    return number


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_KEY_LEN:
        raise ValueError(f"{name} must be a string of 1 to {MAX_KEY_LEN} characters")
    return value


def parse_payload(raw: bytes) -> Message:
    """Parse one message. Never raises: problems come back as ``Message.rejections``."""
    if len(raw) > MAX_PAYLOAD_BYTES:
        return Message(None, None, rejections=[Rejection("too_large", f"{len(raw)} bytes > {MAX_PAYLOAD_BYTES}")])
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        # Devices built on C JSON libraries send NaN / Infinity, which strict JSON refuses. Read them
        # with the standard library so the rest of the message survives and only they are rejected.
        try:
            doc = json.loads(raw)
        except (ValueError, RecursionError):
            return Message(None, None, rejections=[Rejection("bad_json", str(exc)[:200])])
    if not isinstance(doc, dict):
        return Message(None, None, rejections=[Rejection("bad_shape", "the payload must be a JSON object")])
    try:
        device = _text(doc.get("deviceId", doc.get("device_id")), "deviceId")
        apikey = _text(doc.get("apikey", doc.get("apiKey")), "apikey")
    except ValueError as exc:
        return Message(None, None, rejections=[Rejection("bad_identity", str(exc))])
    msg = Message(device, apikey)
    if "readings" in doc:
        _parse_readings(doc["readings"], msg)
    elif "data" in doc:
        data = doc["data"]
        items = data if isinstance(data, list) else [data]
        if len(items) > MAX_READINGS:
            msg.rejections.append(Rejection("too_many", f"{len(items)} items > {MAX_READINGS}"))
            return msg
        message_time = doc.get("time", doc.get("ts"))
        for item in items:
            _parse_platform_item(item, message_time, msg)
    else:
        msg.rejections.append(Rejection("bad_shape", "no 'data' or 'readings' in the payload"))
    if len(msg) > MAX_READINGS:
        msg.rejections.append(Rejection("too_many", f"{len(msg)} readings > {MAX_READINGS}"))
        msg.clear()
    return msg


def _parse_readings(readings: Any, msg: Message) -> None:
    if not isinstance(readings, list):
        msg.rejections.append(Rejection("bad_shape", "'readings' must be a list"))
        return
    if len(readings) > MAX_READINGS:
        msg.rejections.append(Rejection("too_many", f"{len(readings)} readings > {MAX_READINGS}"))
        return
    if _parse_readings_fast(readings, msg):
        return
    for i, r in enumerate(readings):
        if not isinstance(r, dict):
            msg.rejections.append(Rejection("bad_shape", f"readings[{i}] is not an object"))
            continue
        channel = r.get("channel")
        try:
            channel = _text(channel, "channel")
            value = _number(r.get("value"))
        except ValueError as exc:
            msg.rejections.append(
                Rejection("bad_value", f"readings[{i}]: {exc}", channel if isinstance(channel, str) else None)
            )
            continue
        try:
            t_ms = parse_time_ms(r["t"]) if r.get("t") is not None else None
        except (ValueError, OverflowError) as exc:
            msg.rejections.append(Rejection("bad_time", f"readings[{i}]: {exc}", channel))
            continue
        msg.add(channel, t_ms, value)


_CHANNEL = itemgetter("channel")
_VALUE = itemgetter("value")
_NUMBER_TYPES = frozenset({float, int})
_TIME_TYPES = frozenset({int, type(None)})


def _parse_readings_fast(readings: list[Any], msg: Message) -> bool:
    """The vectorised path for a well-formed list (numbers, epoch times, short channel names).

    Returns False, having changed nothing, when any element needs the careful per-reading path.
    """
    # Type checks over the distinct types (and names) of a column: C-speed passes, no per-reading Python.
    try:
        channels = list(map(_CHANNEL, readings))
        values = list(map(_VALUE, readings))
        times = list(map(dict.get, readings, repeat("t")))
    except (TypeError, KeyError):
        return False
    if set(map(type, channels)) != {str} or not all(0 < len(c) <= MAX_KEY_LEN for c in set(channels)):
        return False
    if not set(map(type, values)) <= _NUMBER_TYPES or not set(map(type, times)) <= _TIME_TYPES:
        return False
    try:
        v = np.array(values, dtype=np.float64)
        t = np.array([NO_TIME if x is None else x for x in times] if None in times else times, dtype=np.int64)
    except OverflowError:
        return False
    if not np.isfinite(v).all():
        return False
    given = t != NO_TIME
    all_given = bool(given.all())
    if not all_given and int(given.sum()) != len(t) - times.count(None):  # a device sent -2**63 itself
        return False
    seconds = given & (np.abs(t) < _MS_THRESHOLD)
    t[seconds] *= 1000
    t_given = t if all_given else t[given]
    if t_given.size and (int(t_given.min()) < MIN_TIME_MS or int(t_given.max()) > MAX_TIME_MS):
        return False  # the careful path refuses the times out of range one by one
    msg.arrays = (channels, t, v)
    return True


def _parse_platform_item(item: Any, message_time: Any, msg: Message) -> None:
    if not isinstance(item, dict):
        msg.rejections.append(Rejection("bad_shape", "a 'data' item is not an object"))
        return
    raw_time = message_time
    for k in TIME_FIELDS:
        if k in item:
            raw_time = item[k]
            break
    if type(raw_time) is int and MIN_TIME_MS <= raw_time <= MAX_TIME_MS:  # the common case: epoch s or ms
        t_ms: int | None = raw_time * 1000 if raw_time < _MS_THRESHOLD else raw_time
    else:
        try:
            t_ms = parse_time_ms(raw_time) if raw_time is not None else None
        except (ValueError, OverflowError) as exc:
            msg.rejections.append(Rejection("bad_time", str(exc)))
            return
    for key, value in item.items():
        if key in TIME_FIELDS:
            continue
        if not isinstance(key, str) or len(key) > MAX_KEY_LEN:
            msg.rejections.append(Rejection("bad_value", "field name too long", None))
            continue
        if type(value) is float and math.isfinite(value):  # the common case, without _number's checks
            number = value
        else:
            try:
                number = _number(value)
            except ValueError as exc:
                msg.rejections.append(Rejection("bad_value", f"{key}: {exc}", key))
                continue
        health = HEALTH_FIELDS.get(key)
        if health is not None:
            msg.health[health] = number
        else:
            msg.add(key, t_ms, number)
