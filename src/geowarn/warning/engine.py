"""The streaming site-warning engine: evaluate a site's rules as soon as its readings are stored.

The ingestion path calls :meth:`SiteWarningEngine.on_stored` after each commit with the new rows;
the engine maps sensors to sites, queues the sites, and a worker thread (or :meth:`drain` in tests
and batch jobs) loads the batch's recent history in one query (``warning.history``), evaluates the
rules of all its sites, each at its own data time (rainfall rules across sites at once,
``warning.batch_tracks``), and brings the alerts of the whole batch in line at once, with their
messages, in one transaction
(``warning.transitions``). Evaluation time is the data time (the newest reading), so a
replayed or late batch gives the same alerts as live data would have.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from sqlalchemy import func, select, text

from geowarn.db import Database
from geowarn.inventory.models import HazardSite
from geowarn.monitoring.models import Device, MonitoringStation, Sensor, SensorLatest
from geowarn.warning import alerts, transitions
from geowarn.warning.history import SensorInfo as SensorInfo
from geowarn.warning.history import Series as Series
from geowarn.warning.history import load_series
from geowarn.warning.levels import Level
from geowarn.warning.models import Alert

log = logging.getLogger(__name__)

#: A site whose newest reading is this much older than the network's newest is re-evaluated on the
#: network's time, so its alerts end when their windows clear even though no new data comes.
SILENT_AFTER_MS = 3_600_000
#: Seconds between two such checks in the engine's thread.
SILENT_CHECK_S = 60.0


@dataclass(frozen=True, slots=True)
class SiteInfo:
    id: int
    code: str
    unit_code: str
    hazard_type: str


@dataclass(frozen=True, slots=True)
class RuleOutcome:
    rule_id: str
    rule_name: str
    level: Level
    reason: dict[str, Any] = field(default_factory=dict)
    forecast: dict[str, Any] | None = None


class SiteEvaluator(Protocol):
    """What the engine needs from the rules: how far back to look, and the level of each rule.

    An evaluator may also offer ``sensor_lookbacks(site, sensors) -> {sensor id: ms}`` (read each
    sensor only as far back as its rules need; sensors left out are not read) and
    ``evaluate_many(cases) -> [outcomes or None]`` (a whole batch at once), and
    ``rain_fallbacks(site, sensors) -> {sensor id: sensor id}`` (sensors read only when the other
    has no reading in its window); the engine uses them when present (``warning.evaluator.RuleEvaluator``
    has all three)."""

    def lookback_ms(self, site: SiteInfo) -> int: ...

    def evaluate(
        self, site: SiteInfo, series: list[Series], now_ms: int, previous: dict[str, Level]
    ) -> list[RuleOutcome]: ...


@dataclass(slots=True)
class _Evaluated:
    """A site's rule outcomes at one data time, before they are recorded."""

    site: SiteInfo
    outcomes: list[RuleOutcome]
    now_ms: int
    #: the devices whose readings were read (a rule alert opens while any of them is not silenced)
    devices: tuple[int, ...] = ()


@dataclass(slots=True)
class _Pending:
    data_ms: int  # newest reading of the site in the queued batches
    committed_at: float  # wall time (epoch s) of the earliest commit not yet evaluated (for latency)


class SiteWarningEngine:
    """Evaluate sites as their data arrive; record alert changes; measure the latency."""

    def __init__(
        self,
        db: Database,
        evaluator: SiteEvaluator,
        *,
        flap_window_ms: int = 30 * 60_000,
        on_change: Callable[[list[alerts.Outcome]], None] | None = None,
        refresh_every_ms: int = 30 * 60_000,
    ) -> None:
        self.db = db
        self.refresh_every_ms = refresh_every_ms
        self.evaluator = evaluator
        self.flap_window_ms = flap_window_ms
        self.on_change = on_change
        self._sensor_site: dict[int, int | None] = {}
        self._pending: dict[int, _Pending] = {}
        self._busy = 0  # drains in progress
        self._cv = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: Seconds from a batch's commit to its site's alerts being recorded (the newest 100,000).
        self.latencies_s: deque[float] = deque(maxlen=100_000)
        self.evaluations = 0

    # --- intake ------------------------------------------------------------------------------

    def on_stored(self, sensor_id: npt.ArrayLike, t_ms: npt.ArrayLike, committed_at: float | None = None) -> None:
        """Queue the sites of newly stored readings (called by the ingestion path after commit)."""
        sensors = np.asarray(sensor_id, np.int64)
        times = np.asarray(t_ms, np.int64)
        if sensors.size == 0:
            return
        committed = time.time() if committed_at is None else committed_at
        order = np.argsort(sensors, kind="stable")
        uniq, start = np.unique(sensors[order], return_index=True)
        newest = np.maximum.reduceat(times[order], start)
        self._map_sensors([int(s) for s in uniq if int(s) not in self._sensor_site])
        with self._cv:
            for s, t in zip(uniq.tolist(), newest.tolist(), strict=True):
                site = self._sensor_site.get(s)
                if site is None:
                    continue
                p = self._pending.get(site)
                if p is None:
                    self._pending[site] = _Pending(t, committed)
                else:
                    p.data_ms = max(p.data_ms, t)
            self._cv.notify()

    def _map_sensors(self, ids: list[int]) -> None:
        if not ids:
            return
        with self.db.read() as s:
            rows = s.execute(
                select(Sensor.id, MonitoringStation.site_id)
                .join(Device, Device.id == Sensor.device_id)
                .join(MonitoringStation, MonitoringStation.id == Device.station_id)
                .where(Sensor.id.in_(ids))
            ).all()
        found = {int(a): (None if b is None else int(b)) for a, b in rows}
        for i in ids:
            self._sensor_site[i] = found.get(i)

    def forget_sensors(self) -> None:
        """Drop the sensor→site map (after registry edits)."""
        self._sensor_site.clear()

    # --- evaluation --------------------------------------------------------------------------

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Wait until nothing is queued or being evaluated (tests, benchmarks, shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._cv:
                if not self._pending and not self._busy:
                    return True
            time.sleep(0.02)
        return False

    def drain(self) -> list[alerts.Outcome]:
        """Evaluate every queued site now; returns the alert changes."""
        with self._cv:
            pending, self._pending = self._pending, {}
            if not pending:
                return []
            self._busy += 1
        try:
            return self._drain(pending)
        finally:
            with self._cv:
                self._busy -= 1

    def _drain(self, pending: dict[int, _Pending]) -> list[alerts.Outcome]:
        results = self._evaluate({site: p.data_ms for site, p in pending.items()})  # each at its own data time
        try:
            changes = self._record(results)  # all the alert changes of the batch at once
        except Exception:  # one bad site must not hold back the others' alerts: retry site by site
            log.exception("recording the batch failed; retrying site by site")
            changes = []
            for r in results:
                try:
                    changes += self._record([r])
                except Exception:
                    log.exception("recording the alerts of site %s failed", r.site.code)
        done = time.time()
        self.latencies_s.extend(done - p.committed_at for p in pending.values())
        if changes and self.on_change is not None:
            try:
                self.on_change(changes)
            except Exception:
                log.exception("alert change listener failed")
        return changes

    def evaluate_sites(self, site_ids: Iterable[int], now_ms: int) -> list[alerts.Outcome]:
        """Evaluate the rules of ``site_ids`` at ``now_ms`` and record the alert changes."""
        return self._record(self._evaluate(dict.fromkeys(site_ids, now_ms)))

    def _evaluate(self, now_by_site: dict[int, int]) -> list[_Evaluated]:
        """The rules' levels at each site at its own data time (reads only), with the alerts left open by
        removed rules ending."""
        ids = sorted(now_by_site)
        if not ids:
            return []
        with self.db.read() as s:
            sites = [
                SiteInfo(i, c, u, h)
                for i, c, u, h in s.execute(
                    select(HazardSite.id, HazardSite.code, HazardSite.unit_code, HazardSite.hazard_type).where(
                        HazardSite.id.in_(ids)
                    )
                )
            ]
            sensors = s.execute(
                select(MonitoringStation.site_id, Sensor.id, Sensor.code, Sensor.sensor_type, Sensor.channel,
                       Sensor.device_id)
                .join(Device, Device.id == Sensor.device_id)
                .join(MonitoringStation, MonitoringStation.id == Device.station_id)
                .where(MonitoringStation.site_id.in_(ids), Sensor.active.is_(True))
            ).all()  # fmt: skip
            previous: dict[int, dict[str, Level]] = {}
            for site_id, rule_id, level in s.execute(
                select(Alert.site_id, Alert.rule_id, Alert.level).where(
                    Alert.site_id.in_(ids), Alert.status == "open", Alert.kind == alerts.SITE_RULE
                )
            ):
                previous.setdefault(int(site_id or 0), {})[rule_id] = Level(level)
            windows, deferred = self._windows(sites, sensors, now_by_site)
            series = load_series(s, windows)
            if deferred:  # cumulative rain channels of the gauges whose interval channel had no reading
                read = {ser.sensor.id for ser in series}
                series += load_series(s, {sensor: w for sensor, (w, first) in deferred.items() if first not in read})
        by_site: dict[int, list[Series]] = {}
        sensor_site = {int(i): int(site or 0) for site, i, *_ in sensors}
        sensor_device = {int(i): int(device) for _, i, _, _, _, device in sensors}
        for ser in series:
            by_site.setdefault(sensor_site[ser.sensor.id], []).append(ser)
        cases = [(site, by_site.get(site.id, []), now_by_site[site.id], previous.get(site.id, {})) for site in sites]
        results = []
        for (site, _, now_ms, _), outcomes in zip(cases, self._outcomes(cases), strict=True):
            if outcomes is None:
                continue
            # rules with an open alert that the evaluator no longer reports end (rule removed).
            reported = {o.rule_id for o in outcomes}
            for rule_id in previous.get(site.id, {}):
                if rule_id not in reported:
                    outcomes.append(RuleOutcome(rule_id, rule_id, Level.NONE, {"ended": "rule removed"}))
            devices = tuple(sorted({sensor_device[ser.sensor.id] for ser in by_site.get(site.id, [])}))
            results.append(_Evaluated(site, outcomes, now_ms, devices))
        self.evaluations += len(results)
        return results

    def _windows(
        self, sites: list[SiteInfo], sensors: Any, now_by_site: dict[int, int]
    ) -> tuple[dict[SensorInfo, tuple[int, int]], dict[SensorInfo, tuple[tuple[int, int], int]]]:
        """The history (start, end] to read of each sensor, as far back as the site's rules read it; and
        apart, the windows of sensors to read only if another sensor has no reading in its window
        (sensor → (window, that sensor's id); see ``RuleEvaluator.rain_fallbacks``)."""
        of_site: dict[int, list[SensorInfo]] = {}
        for site_id, i, c, t, ch, _ in sensors:
            of_site.setdefault(int(site_id), []).append(SensorInfo(int(i), c, t, ch))
        per_sensor = getattr(self.evaluator, "sensor_lookbacks", None)
        fallbacks = getattr(self.evaluator, "rain_fallbacks", None)
        out: dict[SensorInfo, tuple[int, int]] = {}
        deferred: dict[SensorInfo, tuple[tuple[int, int], int]] = {}
        for site in sites:
            now, mine = now_by_site[site.id], of_site.get(site.id, [])
            if per_sensor is not None:
                back = per_sensor(site, mine)
                out.update((s, (now - back[s.id], now)) for s in mine if s.id in back)
            else:
                back_all = self.evaluator.lookback_ms(site)
                out.update((s, (now - back_all, now)) for s in mine)
            if fallbacks is not None:
                read = {s.id: s for s in mine if s in out}
                for s_id, first in fallbacks(site, mine).items():
                    if s_id in read and first in read:
                        deferred[read[s_id]] = (out.pop(read[s_id]), first)
        return out, deferred

    def _outcomes(
        self, cases: list[tuple[SiteInfo, list[Series], int, dict[str, Level]]]
    ) -> list[list[RuleOutcome] | None]:
        """Each case's rule outcomes (None where evaluation failed): all at once when the evaluator can."""
        many = getattr(self.evaluator, "evaluate_many", None)
        if many is not None:
            return list(many(cases))
        out: list[list[RuleOutcome] | None] = []
        for site, series, now_ms, previous in cases:
            try:
                out.append(self.evaluator.evaluate(site, series, now_ms, previous))
            except Exception:
                log.exception("evaluating site %s failed", site.code)
                out.append(None)
        return out

    def _record(self, results: list[_Evaluated]) -> list[alerts.Outcome]:
        """Bring the alerts in line with ``results`` in one transaction, set-wise (``warning.transitions``)."""
        if not results:
            return []
        with self.db.write("warning-engine") as w:
            open_now: dict[tuple[int | None, str], Alert] = {}
            site_ids = sorted({r.site.id for r in results})
            for k in range(0, len(site_ids), transitions.CHUNK):
                stmt = select(Alert).where(
                    Alert.site_id.in_(site_ids[k : k + transitions.CHUNK]), Alert.status == "open",
                    Alert.kind == alerts.SITE_RULE,
                )  # fmt: skip
                if w.get_bind().dialect.name == "postgresql":
                    stmt = stmt.with_for_update()
                open_now.update(((a.site_id, a.rule_id), a) for a in w.scalars(stmt))
            requests: list[transitions.LevelChange] = []
            for r in results:
                for o in r.outcomes:
                    current = open_now.get((r.site.id, o.rule_id))
                    if o.level is Level.NONE and current is None:
                        continue
                    requests.append(transitions.LevelChange(
                        alerts.SITE_RULE, o.rule_id, r.site.unit_code, o.level, r.now_ms, r.site.id, None, o.rule_name,
                        o.reason, o.forecast, self.flap_window_ms, current, self.refresh_every_ms, r.devices,
                    ))  # fmt: skip
            outcomes = transitions.apply_levels(w, requests)
        return [o for o in outcomes if o.alert is not None and o.decision.action.value != "refreshed"]

    # --- the worker thread -------------------------------------------------------------------

    def evaluate_silent(self, silent_after_ms: int = SILENT_AFTER_MS) -> list[alerts.Outcome]:
        """Re-evaluate the sites with open rule alerts whose data stopped, at the network's time.

        Without new data a site is otherwise never evaluated again, and an alert raised by a storm
        stays open after the gauge falls silent. The network's time is the newest data time stored
        (not the clock: a replay of the past, or an ingestion outage that silences every device,
        closes nothing). A site is silent when its own newest reading is ``silent_after_ms`` older.
        """
        with self.db.read() as s:
            newest = s.scalar(select(func.max(SensorLatest.t_ms)))
            if newest is None:
                return []
            network_ms = min(int(newest), int(time.time() * 1000))
            open_sites = [int(i) for i in s.scalars(
                select(Alert.site_id).where(Alert.status == "open", Alert.kind == alerts.SITE_RULE,
                                            Alert.updated_ms < network_ms - silent_after_ms).distinct()
            ) if i is not None]  # fmt: skip
            if not open_sites:
                return []
            latest = dict(
                s.execute(
                    select(MonitoringStation.site_id, func.max(SensorLatest.t_ms))
                    .join(Device, Device.station_id == MonitoringStation.id)
                    .join(Sensor, Sensor.device_id == Device.id)
                    .join(SensorLatest, SensorLatest.sensor_id == Sensor.id)
                    .where(MonitoringStation.site_id.in_(open_sites))
                    .group_by(MonitoringStation.site_id)
                ).all()
            )
        silent = [i for i in open_sites if int(latest.get(i) or 0) < network_ms - silent_after_ms]
        changes = self.evaluate_sites(silent, network_ms) if silent else []
        if changes and self.on_change is not None:
            self.on_change(changes)
        return changes

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="site-warning-engine", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._cv:
            self._cv.notify()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        last_silent_check = time.monotonic()
        while not self._stop.is_set():
            with self._cv:
                if not self._pending:
                    self._cv.wait(timeout=1.0)
            try:
                self.drain()
                if time.monotonic() - last_silent_check >= SILENT_CHECK_S:
                    last_silent_check = time.monotonic()
                    self.evaluate_silent()
            except Exception:
                log.exception("site warning evaluation failed")
                time.sleep(0.5)


def build_engine(db: Database, *, flap_minutes: int = 30, ttl_s: float = 10.0) -> tuple[SiteWarningEngine, Any]:
    """The engine with the default rules and the database's overrides (returned too, to invalidate)."""
    from geowarn.warning.evaluator import RuleEvaluator
    from geowarn.warning.overrides import DbOverrides

    overrides = DbOverrides(db, ttl_s=ttl_s)
    return SiteWarningEngine(db, RuleEvaluator(overrides), flap_window_ms=flap_minutes * 60_000), overrides


def attach(engine: SiteWarningEngine, ingestor: Any) -> None:
    """Feed ``engine`` from ``ingestor``'s committed batches (same process)."""
    ingestor.add_listener(lambda report: engine.on_stored(report.stored_sensor_ids, report.stored_t_ms))


# --- a separate engine process (PostgreSQL): NOTIFY after each commit, LISTEN in ``geowarn engine`` ---

CHANNEL = "geowarn_stored"
_NOTIFY_LIMIT = 7000  # bytes of one payload (PostgreSQL allows 8,000)


def notify_payloads(sensor_id: npt.ArrayLike, t_ms: npt.ArrayLike, committed_at: float) -> list[str]:
    """``"<commit epoch s>|sensor:t,sensor:t…"`` strings, the newest time per sensor, split to fit NOTIFY."""
    ids = np.asarray(sensor_id, np.int64)
    ts = np.asarray(t_ms, np.int64)
    if ids.size == 0:
        return []
    order = np.lexsort((ts, ids))
    last = np.r_[ids[order][1:] != ids[order][:-1], True]
    pairs = [f"{i}:{t}" for i, t in zip(ids[order][last].tolist(), ts[order][last].tolist(), strict=True)]
    head = f"{committed_at:.6f}|"
    out: list[str] = []
    part: list[str] = []
    size = len(head)
    for p in pairs:
        if size + len(p) + 1 > _NOTIFY_LIMIT and part:
            out.append(head + ",".join(part))
            part, size = [], len(head)
        part.append(p)
        size += len(p) + 1
    out.append(head + ",".join(part))
    return out


def parse_payload(text_: str) -> tuple[float, npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    head, _, body = text_.partition("|")
    pairs = [p.split(":") for p in body.split(",") if p]
    arr = np.array(pairs, dtype=np.int64) if pairs else np.zeros((0, 2), np.int64)
    return float(head), arr[:, 0], arr[:, 1]


def attach_notify(db: Database, ingestor: Any) -> None:
    """After each committed batch, tell a ``geowarn engine`` process (PostgreSQL NOTIFY)."""

    def notify(report: Any) -> None:
        payloads = notify_payloads(report.stored_sensor_ids, report.stored_t_ms, time.time())
        with db.writer_engine.begin() as conn:
            for payload in payloads:
                conn.execute(text("SELECT pg_notify(:c, :p)"), {"c": CHANNEL, "p": payload})

    ingestor.add_listener(notify)


def listen(db: Database, engine: SiteWarningEngine, stop: threading.Event) -> None:
    """Feed ``engine`` from NOTIFY messages until ``stop`` is set (runs in ``geowarn engine``)."""
    import psycopg

    url = db.url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"LISTEN {CHANNEL}")
        while not stop.is_set():
            for note in conn.notifies(timeout=0.5, stop_after=1000):
                committed, ids, ts = parse_payload(note.payload)
                engine.on_stored(ids, ts, committed_at=committed)
