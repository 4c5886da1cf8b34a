"""Files of the monitoring network: device registration ledgers and history readings (CSV/XLSX).

* :func:`read_device_rows` turns a device ledger (监测设备台账, Chinese headers) into validated
  :class:`DeviceRow` objects and :class:`~geowarn.errors.RowProblem` rows, with no database;
  :func:`register_device_rows` checks them against the register (sites, scope, existing devices) and
  registers or updates them in one session; :func:`import_devices` does both for a file.
* :func:`import_readings` reads a history file (设备编号, 通道, 时间, 数值) and feeds it to the
  :class:`~geowarn.monitoring.ingest.Ingestor` as trusted geowarn-style payloads of up to 10,000
  readings, so stored readings get the same quality control and everything unreadable goes to the
  dead-letter store like any device message.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import shapely
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from geowarn.admin.codes import is_valid_code
from geowarn.auth.scope import in_scope, unit_filter
from geowarn.db import Database
from geowarn.errors import FileRejected, RowProblem
from geowarn.inventory.models import HazardSite
from geowarn.io.parsers import as_text
from geowarn.io.readers import RawChunk, detect_format, read_chunks, whole_file
from geowarn.io.store import load_scope
from geowarn.monitoring.domain import SENSOR_TYPE_ZH, SensorType
from geowarn.monitoring.ingest import Ingestor, IngestReport, RawPayload
from geowarn.monitoring.keys import hash_apikey
from geowarn.monitoring.models import Device, MonitoringStation, Sensor, SensorLatest
from geowarn.monitoring.payloads import MAX_READINGS, parse_time_ms
from geowarn.monitoring.service import register_device, register_station

CST = dt.timezone(dt.timedelta(hours=8))
#: The placeholder key of trusted file payloads (the Ingestor does not check it; see RawPayload.trusted).
FILE_APIKEY = "trusted-file-import"

#: Field → the headers a ledger may use for it (first is the canonical Chinese header).
DEVICE_HEADERS: dict[str, tuple[str, ...]] = {
    "station_code": ("监测点编号", "station_code"),
    "station_name": ("监测点名称", "station_name"),
    "site_code": ("隐患点编号", "site_code"),
    "lon": ("经度", "lon"),
    "lat": ("纬度", "lat"),
    "device_code": ("设备编号", "deviceId", "device_code"),
    "device_type": ("设备类型", "device_type"),
    "vendor": ("厂商", "vendor"),
    "model": ("型号", "model"),
    "serial": ("序列号", "serial"),
    "interval_s": ("上报间隔（秒）", "上报间隔(秒)", "上报间隔", "reporting_interval_s"),
    "installed_at": ("安装时间", "installed_at"),
    "apikey": ("apikey", "apiKey"),
    "unit_code": ("行政区划代码", "unit_code"),
}
REQUIRED = ("station_code", "station_name", "lon", "lat", "device_code", "device_type")
HISTORY_HEADERS: dict[str, tuple[str, ...]] = {
    "device_code": ("设备编号", "deviceId", "device_code"),
    "channel": ("通道", "channel"),
    "time": ("时间", "time", "t"),
    "value": ("数值", "value"),
}
_TYPE_OF = {**{t.value.upper(): t for t in SensorType}, **{zh: t for t, zh in SENSOR_TYPE_ZH.items()}}
_CODE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


@dataclass(slots=True)
class DeviceRow:
    row: int
    station_code: str
    station_name: str
    lon: float
    lat: float
    device_code: str
    device_type: str
    site_code: str | None = None
    vendor: str | None = None
    model: str | None = None
    serial: str | None = None
    interval_s: int = 600
    installed_at: dt.datetime | None = None
    apikey: str | None = None
    unit_code: str | None = None


@dataclass
class DeviceImportResult:
    total: int
    created: int
    updated: int
    rejected: int
    stations_created: int
    problems: list[RowProblem]
    #: deviceId → apikey for devices whose key geowarn generated: shown once, never stored in clear.
    apikeys: dict[str, str] = field(default_factory=dict)
    device_codes: list[str] = field(default_factory=list)


def header_map(headers: list[str], spec: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """Field → the file's header for it (case- and space-insensitive; unknown headers are ignored)."""
    norm = {h.strip().lower().replace(" ", ""): h for h in headers}
    out: dict[str, str] = {}
    for fld, names in spec.items():
        for name in names:
            found = norm.get(name.lower().replace(" ", ""))
            if found is not None:
                out[fld] = found
                break
    return out


def cell_time_ms(value: Any) -> int:
    """Epoch ms of a cell: a spreadsheet date/time (China time when naive), ISO text, epoch s or ms."""
    if isinstance(value, dt.datetime):
        return int((value if value.tzinfo else value.replace(tzinfo=CST)).timestamp() * 1000)
    if isinstance(value, dt.date):
        return int(dt.datetime(value.year, value.month, value.day, tzinfo=CST).timestamp() * 1000)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return parse_time_ms(value)


def _number(value: Any) -> float | None:
    try:
        f = float(value.strip().replace(",", "") if isinstance(value, str) else value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


# --------------------------------------------------------------------------- device ledgers (pure)


def read_device_rows(path: Path) -> tuple[list[DeviceRow], list[RowProblem], int]:
    """Valid rows, the problems of the others (Chinese reasons) and the number of data rows."""
    rows: list[DeviceRow] = []
    problems: list[RowProblem] = []
    total = 0
    seen: dict[str, int] = {}
    hmap: dict[str, str] | None = None
    for chunk in read_chunks(path, detect_format(path)):
        if hmap is None:
            hmap = header_map(chunk.headers, DEVICE_HEADERS)
            missing = [DEVICE_HEADERS[f][0] for f in REQUIRED if f not in hmap]
            if missing:
                raise whole_file("缺少必填列：" + "、".join(missing))
        texts = {f: as_text(chunk.columns[h]) for f, h in hmap.items() if f not in ("installed_at",)}
        for i, row_no in enumerate(chunk.rows.tolist()):
            total += 1
            cells = {f: col[i] for f, col in texts.items()}
            raw_time = chunk.columns[hmap["installed_at"]][i] if "installed_at" in hmap else None
            parsed, row_problems = _device_row(int(row_no), cells, raw_time, hmap)
            if parsed is not None and parsed.device_code in seen:
                row_problems.append(
                    RowProblem(
                        parsed.row, hmap["device_code"], f"设备编号与第 {seen[parsed.device_code]} 行重复",
                        parsed.device_code,
                    )
                )  # fmt: skip
            if row_problems:
                problems.extend(row_problems)
            elif parsed is not None:
                seen[parsed.device_code] = parsed.row
                rows.append(parsed)
    return rows, problems, total


def _device_row(
    row: int, c: dict[str, Any], raw_time: Any, hmap: dict[str, str]
) -> tuple[DeviceRow | None, list[RowProblem]]:
    out: list[RowProblem] = []

    def bad(fld: str, reason: str) -> None:
        v = c.get(fld) if fld != "installed_at" else raw_time
        out.append(RowProblem(row, hmap.get(fld, DEVICE_HEADERS[fld][0]), reason, None if v is None else str(v)))

    for fld in REQUIRED:
        if c.get(fld) is None:
            bad(fld, "必填项为空")
    for fld in ("station_code", "device_code"):
        v = c.get(fld)
        if v is not None and (len(v) > (40 if fld == "station_code" else 64) or not set(v) <= _CODE_CHARS):
            bad(fld, "编号只能由字母、数字、-、_、. 组成，且不超过长度上限")
    kind = _TYPE_OF.get((c.get("device_type") or "").upper()) or _TYPE_OF.get(c.get("device_type") or "")
    if c.get("device_type") is not None and kind is None:
        bad("device_type", "未知设备类型，可用 " + "、".join(t.value for t in SensorType) + " 或其中文名称")
    lon, lat = _number(c.get("lon")), _number(c.get("lat"))
    if c.get("lon") is not None and (lon is None or not -180 <= lon <= 180):
        bad("lon", "经度应为 -180 至 180 之间的数值")
    if c.get("lat") is not None and (lat is None or not -90 <= lat <= 90):
        bad("lat", "纬度应为 -90 至 90 之间的数值")
    interval = 600
    if c.get("interval_s") is not None:
        iv = _number(c["interval_s"])
        if iv is None or not iv.is_integer() or not 1 <= iv <= 86_400:
            bad("interval_s", "上报间隔应为 1 至 86400 之间的整数（秒）")
        else:
            interval = int(iv)
    installed = None
    if raw_time is not None and str(raw_time).strip():
        try:
            installed = dt.datetime.fromtimestamp(cell_time_ms(raw_time) / 1000, tz=dt.UTC)
        except (ValueError, OverflowError, OSError):
            bad("installed_at", "安装时间格式无效（应为 YYYY-MM-DD HH:MM:SS）")
    key = c.get("apikey")
    if key is not None and not 8 <= len(key) <= 64:
        bad("apikey", "apikey 长度应为 8 至 64 个字符")
    unit = c.get("unit_code")
    if unit is not None and not is_valid_code(unit):
        bad("unit_code", "行政区划代码无效")
    for fld, limit in (("station_name", 200), ("vendor", 100), ("model", 100), ("serial", 100), ("site_code", 40)):
        if c.get(fld) is not None and len(c[fld]) > limit:
            bad(fld, f"长度超过 {limit} 个字符")
    if out or kind is None or lon is None or lat is None:
        return None, out
    return DeviceRow(
        row, c["station_code"], c["station_name"], lon, lat, c["device_code"], kind.value, c.get("site_code"),
        c.get("vendor"), c.get("model"), c.get("serial"), interval, installed, key, unit,
    ), out  # fmt: skip


# --------------------------------------------------------------------------- device ledgers (storage)


def register_device_rows(
    session: Session, rows: list[DeviceRow], scope_unit: str, *, skip_bad: bool = False, check_only: bool = False
) -> tuple[DeviceImportResult, list[RowProblem]]:
    """Register or update each row's station and device in the caller's scope (one session, audited).

    Returns the result (without the file's own problems) and the problems found against the register;
    nothing is written when there are problems and not ``skip_bad``, or with ``check_only``.
    """
    problems: list[RowProblem] = []
    sites = _sites_in_scope(session, {r.site_code for r in rows if r.site_code}, scope_unit)
    stations = {s.code: s for s in session.scalars(select(MonitoringStation).where(
        MonitoringStation.code.in_({r.station_code for r in rows})))}  # fmt: skip
    devices = {d.device_code: d for d in session.scalars(select(Device).where(
        Device.device_code.in_({r.device_code for r in rows})))}  # fmt: skip
    scope = load_scope(session.connection(), scope_unit)
    units: dict[int, str] = {}
    for r in rows:
        n = len(problems)
        site = sites.get(r.site_code) if r.site_code else None
        if r.site_code and site is None:
            problems.append(RowProblem(r.row, "隐患点编号", "隐患点不存在或不在管辖范围内", r.site_code))
        st, dev = stations.get(r.station_code), devices.get(r.device_code)
        if st is not None and not in_scope(scope_unit, st.unit_code):
            problems.append(RowProblem(r.row, "监测点编号", "监测点编号已被管辖范围外的监测点使用", r.station_code))
        if dev is not None and not in_scope(scope_unit, dev.unit_code):
            problems.append(RowProblem(r.row, "设备编号", "设备编号已被管辖范围外的设备使用", r.device_code))
        elif dev is not None and dev.device_type != r.device_type:
            problems.append(
                RowProblem(r.row, "设备类型", f"与已登记的设备类型（{dev.device_type}）不同", r.device_type)
            )
        unit = r.unit_code or (site[1] if site else None) or _unit_at(scope, r.lon, r.lat)
        if unit is None or not in_scope(scope_unit, unit) or unit not in scope.units:
            problems.append(RowProblem(r.row, "经度", "位置不在管辖范围内（或行政区划代码未登记）", f"{r.lon},{r.lat}"))
        if len(problems) == n:
            units[r.row] = unit or scope_unit
    result = DeviceImportResult(len(rows), 0, 0, 0, 0, [])
    if check_only or (problems and not skip_bad):
        return result, problems
    for r in rows:
        if r.row not in units:
            continue
        site_id = sites[r.site_code][0] if r.site_code else None
        st = stations.get(r.station_code)
        if st is None:
            st = register_station(session, code=r.station_code, name=r.station_name, lon=r.lon, lat=r.lat,
                                  unit_code=units[r.row], site_id=site_id)  # fmt: skip
            stations[r.station_code] = st
            result.stations_created += 1
        elif (st.name, st.lon, st.lat, st.site_id, st.unit_code) != (
            r.station_name,
            r.lon,
            r.lat,
            site_id,
            units[r.row],
        ):
            st.name, st.site_id = r.station_name, site_id
            relocate_station(session, st, units[r.row], r.lon, r.lat)
        dev = devices.get(r.device_code)
        if dev is None:
            reg = register_device(session, st, device_type=r.device_type, device_code=r.device_code, apikey=r.apikey,
                                  reporting_interval_s=r.interval_s, vendor=r.vendor, model=r.model, serial=r.serial,
                                  installed_at=r.installed_at)  # fmt: skip
            devices[r.device_code] = reg.device
            result.created += 1
            if r.apikey is None:
                result.apikeys[r.device_code] = reg.apikey
        else:
            _update_device(session, dev, st, r)
            result.updated += 1
        result.device_codes.append(r.device_code)
    session.flush()
    return result, problems


def _update_device(session: Session, dev: Device, st: MonitoringStation, r: DeviceRow) -> None:
    dev.vendor, dev.model, dev.serial, dev.reporting_interval_s = r.vendor, r.model, r.serial, r.interval_s
    if r.installed_at is not None:
        dev.installed_at = r.installed_at
    if r.apikey is not None:
        dev.apikey_hash = hash_apikey(dev.device_code, r.apikey)
    if dev.station_id != st.id:
        dev.station_id, dev.unit_code = st.id, st.unit_code
        _move_sensors(session, [dev.id], st)


def relocate_station(session: Session, station: MonitoringStation, unit_code: str, lon: float, lat: float) -> None:
    """Move a station (place and unit); its devices, sensors and latest values follow it."""
    station.unit_code, station.lon, station.lat = unit_code, lon, lat
    station.geom = shapely.Point(lon, lat)
    session.flush()
    session.execute(update(Device).where(Device.station_id == station.id).values(unit_code=unit_code))
    ids = list(session.scalars(select(Device.id).where(Device.station_id == station.id)))
    _move_sensors(session, ids, station)


def _move_sensors(session: Session, device_ids: list[int], st: MonitoringStation) -> None:
    if not device_ids:
        return
    session.execute(
        update(Sensor).where(Sensor.device_id.in_(device_ids)).values(unit_code=st.unit_code, lon=st.lon, lat=st.lat)
    )
    sensor_ids = select(Sensor.id).where(Sensor.device_id.in_(device_ids)).scalar_subquery()
    session.execute(update(SensorLatest).where(SensorLatest.sensor_id.in_(sensor_ids)).values(unit_code=st.unit_code))


def _sites_in_scope(session: Session, codes: set[str], scope_unit: str) -> dict[str, tuple[int, str]]:
    if not codes:
        return {}
    stmt = select(HazardSite.code, HazardSite.id, HazardSite.unit_code).where(
        HazardSite.code.in_(codes), unit_filter(HazardSite.unit_code, scope_unit)
    )
    return {code: (ident, unit) for code, ident, unit in session.execute(stmt)}


def _unit_at(scope: Any, lon: float, lat: float) -> str | None:
    """The most precise unit in scope whose boundary holds the point; the scope itself without boundaries."""
    if len(scope.poly_codes):
        hits = [c for c, g in zip(scope.poly_codes, scope.poly_geoms, strict=True) if shapely.contains_xy(g, lon, lat)]
        if hits:
            return max(hits, key=len)
    if scope.boundary is None:
        return scope.code
    return scope.code if shapely.contains_xy(scope.boundary, lon, lat) else None


def import_devices(
    db: Database, path: Path, *, actor: Any, scope_unit: str, skip_bad: bool = False
) -> DeviceImportResult:
    """Register the devices of a ledger file; a file with problems is refused whole unless ``skip_bad``."""
    rows, problems, total = read_device_rows(path)
    with db.write(actor) as session:
        check_only = bool(problems) and not skip_bad
        result, more = register_device_rows(session, rows, scope_unit, skip_bad=skip_bad, check_only=check_only)
        problems = sorted(problems + more, key=lambda p: (p.row, p.field))
        if problems and not skip_bad:
            bad_rows = {p.row for p in problems}
            refused = FileRejected(problems=problems, summary=f"file rejected: {len(problems)} problem(s)")
            refused.message_zh = f"文件未导入：{len(bad_rows)} 行共 {len(problems)} 个问题"
            raise refused
    result.total, result.problems, result.rejected = total, problems, len({p.row for p in problems})
    return result


# --------------------------------------------------------------------------- history readings


def history_payloads(
    chunk: RawChunk, hmap: dict[str, str], channels_of: Callable[[str], list[str] | None]
) -> Iterator[bytes]:
    """geowarn-style payloads (one device, ≤ 10,000 readings each) from one chunk of a history file.

    Times and values that cannot be read are passed on as they are, so the Ingestor refuses them
    (``bad_time``/``bad_value``) and keeps them in the dead-letter store.
    """
    codes = as_text(chunk.columns[hmap["device_code"]])
    chans = as_text(chunk.columns[hmap["channel"]]) if "channel" in hmap else [None] * len(chunk)
    times, values = chunk.columns[hmap["time"]], chunk.columns[hmap["value"]]
    by_device: dict[str, list[dict[str, Any]]] = {}
    for code, ch, t, v in zip(codes, chans, times, values, strict=True):
        if ch is None:
            known = channels_of(code) if code else None
            ch = known[0] if known is not None and len(known) == 1 else ""
        try:
            t_out: Any = cell_time_ms(t) if t is not None else ""
        except (ValueError, OverflowError, TypeError):
            t_out = str(t)
        number = _number(v) if v is not None else None
        by_device.setdefault(code or "", []).append(
            {"channel": ch, "t": t_out, "value": v if number is None else number}
        )
    for code, readings in by_device.items():
        for i in range(0, len(readings), MAX_READINGS):
            yield orjson.dumps({"deviceId": code, "apikey": FILE_APIKEY, "readings": readings[i : i + MAX_READINGS]})


def import_readings(
    ingestor: Ingestor,
    path: Path,
    *,
    progress: Callable[[int, int], None] | None = None,
    filename: str | None = None,
    now_ms: int | None = None,
) -> IngestReport:
    """Ingest a history file through ``ingestor`` as trusted payloads; returns the summed report."""
    total = IngestReport()
    hmap: dict[str, str] | None = None
    done = 0

    def channels_of(code: str) -> list[str] | None:
        info = ingestor.cache.get(code)
        return None if info is None else list(info.sensors)

    for chunk in read_chunks(path, detect_format(path)):
        if hmap is None:
            hmap = header_map(chunk.headers, HISTORY_HEADERS)
            missing = [HISTORY_HEADERS[f][0] for f in ("device_code", "time", "value") if f not in hmap]
            if missing:
                raise whole_file("缺少必填列：" + "、".join(missing))
        payloads = [
            RawPayload(body, "file", (filename or path.name)[:300], trusted=True)
            for body in history_payloads(chunk, hmap, channels_of)
        ]
        report = ingestor.ingest(payloads, now_ms=now_ms)
        total.accepted += report.accepted
        total.duplicate += report.duplicate
        total.rejected += report.rejected
        total.reasons.update(report.reasons)
        done += len(chunk)
        if progress:
            progress(done, 0)
    return total
