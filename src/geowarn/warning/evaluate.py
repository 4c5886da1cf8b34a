"""Evaluate a site's rules on its sensor series: derived series, persistence, hysteresis, reasons.

Implements the engine's ``SiteEvaluator``. For each rule, the terms of each level are computed at
the evaluation times (the site's reading times in the persistence span, and now); the rule's level
is the strongest whose condition persisted, or the level already open while its thresholds relaxed
by the hysteresis factor still hold. Several sensors of a kind give the worst value (max for ``>=``,
min for ``<=``), and the reason names the sensor.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from geowarn.warning import deform, rain
from geowarn.warning.engine import RuleOutcome, Series
from geowarn.warning.levels import Level
from geowarn.warning.ruleset import DISPLACEMENT_TYPES, RAIN_HOURS, Condition, Rule, Term, duration_ms

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
Floats = npt.NDArray[np.float64]


@dataclass(slots=True)
class Track:
    """One sensor's (or device's) usable series: a label, times and values."""

    label: str
    t: npt.NDArray[np.int64]
    v: Floats
    kind: str = ""
    rate_cache: dict[int, Floats] = field(default_factory=dict)
    _csum: Floats | None = None

    def csum(self) -> Floats:
        if self._csum is None:
            self._csum = rain.prefix_sums(self.v)
        return self._csum

    def rate(self, window_ms: int) -> Floats:
        """mm/day at each reading: the end-point derivative of a local quadratic over the trailing
        window (``deform.endpoint_rate``: no half-window lag on an accelerating slope). Quiet-window
        statistics use the same estimator, so its noise is measured, not assumed."""
        if window_ms not in self.rate_cache:
            self.rate_cache[window_ms] = deform.endpoint_rate(self.t, self.v, window_ms)
        return self.rate_cache[window_ms]


@dataclass(slots=True)
class SiteData:
    rain: list[Track]  # interval rainfall per gauge
    displacement: list[Track]  # cumulative displacement (mm) per device
    other: dict[tuple[str, str], list[Track]]  # (sensor_type, channel) -> tracks


def _usable(s: Series, max_flag: int) -> tuple[npt.NDArray[np.int64], Floats]:
    keep = (s.flag <= max_flag) & np.isfinite(s.value)
    return s.t_ms[keep], s.value[keep]


def site_data(series: list[Series], max_flag: int) -> SiteData:
    """Group a site's series into rain gauges, displacement devices and other channels."""
    by_device: dict[str, dict[str, Series]] = {}
    other: dict[tuple[str, str], list[Track]] = {}
    for s in series:
        device = s.sensor.code.rsplit(".", 1)[0]
        by_device.setdefault(device, {})[s.sensor.channel] = s
        t, v = _usable(s, max_flag)
        other.setdefault((s.sensor.sensor_type, s.sensor.channel), []).append(Track(s.sensor.code, t, v))
    rain_tracks: list[Track] = []
    disp: list[Track] = []
    for device, channels in sorted(by_device.items()):
        kind = next(iter(channels.values())).sensor.sensor_type
        if kind == "RAIN":
            if "value" in channels:
                t, v = _usable(channels["value"], max_flag)
                rain_tracks.append(Track(device, t, v))
            elif "totalValue" in channels:
                t, v = _usable(channels["totalValue"], max_flag)
                rain_tracks.append(Track(device, t, rain.increments_from_cumulative(v)))
        elif kind in DISPLACEMENT_TYPES:
            names = DISPLACEMENT_TYPES[kind]
            if not all(n in channels for n in names):
                continue
            parts = [_usable(channels[n], max_flag) for n in names]
            if len(parts) == 1:
                disp.append(Track(device, *parts[0], kind=kind))
                continue
            common = parts[0][0]
            for t, _ in parts[1:]:
                common = np.intersect1d(common, t)
            comps = [v[np.searchsorted(t, common)] for t, v in parts]
            disp.append(Track(device, common, np.sqrt(np.sum(np.square(comps), axis=0)), kind=kind))
    return SiteData(rain_tracks, disp, other)


def _tracks_for(term: Term, data: SiteData) -> list[Track]:
    if term.series.startswith("rain_"):
        return data.rain
    if term.reads_channel():  # a value, or a change / rate / acceleration of a non-displacement channel
        return [t for (st, ch), tracks in data.other.items() for t in tracks
                if st == term.sensor_type and (term.channel is None or ch == term.channel)]  # fmt: skip
    if term.sensor_type:
        return [t for t in data.displacement if t.kind == term.sensor_type]
    return data.displacement


def _series_values(term: Term, track: Track, at: npt.NDArray[np.int64], now_ms: int) -> Floats:
    s = term.series
    if s in RAIN_HOURS:
        return rain.window_sums(track.t, track.v, at, RAIN_HOURS[s] * HOUR_MS, csum=track.csum())
    if s == "rain_event":
        return rain.event_rainfall(track.t, track.v, at, dry_gap_h=term.dry_gap_h)[0]
    if s == "rain_effective":
        return rain.effective_rainfall(rain.daily_totals(track.t, track.v, at, term.days), term.k)
    if s == "rain_id_ratio":
        mm, hours = rain.event_rainfall(track.t, track.v, at, dry_gap_h=term.dry_gap_h)
        return rain.id_ratio(mm, hours, term.a, term.b)
    if s == "value":
        return deform.value_at(track.t, track.v, at)
    if s == "disp_change":
        return deform.change_over(track.t, track.v, at, duration_ms(term.window or "24h"))
    smoothing = duration_ms(term.smoothing)
    rate = track.rate(smoothing)
    rate_at = deform.value_at(track.t, rate, at)
    if s == "disp_rate":
        return rate_at
    if s == "disp_accel":
        w = duration_ms(term.window or "24h")
        return (rate_at - deform.value_at(track.t, rate, at - w)) / (w / DAY_MS)
    quiet = _quiet(track, rate, term, now_ms)
    if quiet.size < MIN_QUIET_RATES and term.v_eq is None:  # no steady stage seen yet: no verdict
        return np.full(at.shape, np.nan)
    if s == "tangent_angle":
        return deform.tangent_angle(np.maximum(rate_at, 0.0), _v_eq(term, quiet))
    if s == "rate_ratio":
        v0 = deform.baseline_v0(quiet)
        v0 = max(v0 if math.isfinite(v0) else 0.0, term.min_rate)
        return rate_at / v0
    raise ValueError(f"unknown series {s!r}")


#: Rates needed in the quiet window before tangent angle or rate ratio give a verdict (a day of
#: hourly readings; a device installed yesterday has no constant-velocity stage to compare with).
MIN_QUIET_RATES = 24


def _v_eq(term: Term, quiet: Floats) -> float:
    """The constant-velocity rate: given, or the median quiet rate, floored by twice the rate noise
    (2 × 1.4826·MAD, the robust σ) so that a noisy sensor on a still slope is not read as
    accelerating: α > 48° then needs a rate above 2.2σ, rare as noise and rarer with persistence."""
    if term.v_eq is not None:
        return max(term.v_eq, term.min_rate)
    median = float(np.median(quiet))
    noise = 2 * 1.4826 * float(np.median(np.abs(quiet - median)))
    return max(median, noise, term.min_rate)


def _quiet(track: Track, rate: Floats, term: Term, now_ms: int) -> Floats:
    end = now_ms - duration_ms(term.recent)
    start = end - duration_ms(term.baseline)
    sel = (track.t > start) & (track.t <= end)
    r = rate[sel]
    return r[np.isfinite(r)]


_OPS: dict[str, Callable[[Any, Any], Any]] = {">=": np.greater_equal, ">": np.greater, "<=": np.less_equal,
                                              "<": np.less}  # fmt: skip


def _compare(values: Floats, op: str, threshold: float) -> npt.NDArray[np.bool_]:
    """NaN compares false (no warning is raised for comparisons, so no errstate is needed)."""
    return np.asarray(_OPS[op](values, threshold))


@dataclass(slots=True)
class TermResult:
    term: Term
    values: Floats  # worst over sensors, at each evaluation time
    sensor: str | None  # the sensor giving the worst value now


def _term(term: Term, data: SiteData, at: npt.NDArray[np.int64], now_ms: int) -> TermResult:
    tracks = [t for t in _tracks_for(term, data) if t.t.size]
    if not tracks:
        return TermResult(term, np.full(at.shape, np.nan), None)
    stack = np.vstack([_series_values(term, tr, at, now_ms) for tr in tracks])
    high = term.op in (">=", ">")
    nan = np.isnan(stack)
    all_nan = np.asarray(nan.all(axis=0), dtype=bool)
    filled = np.where(nan, -np.inf if high else np.inf, stack)
    idx = filled.argmax(axis=0) if high else filled.argmin(axis=0)
    worst = np.where(all_nan, np.nan, filled[idx, np.arange(at.size)])
    return TermResult(term, worst, tracks[int(idx[-1])].label if not all_nan[-1] else None)


def _holds(cond: Condition, results: dict[int, TermResult], factor: float = 1.0) -> npt.NDArray[np.bool_]:
    def ok(t: Term) -> npt.NDArray[np.bool_]:
        threshold = t.value if factor == 1.0 else t.relaxed(factor)
        return _compare(results[id(t)].values, t.op, threshold)

    out: npt.NDArray[np.bool_] | None = None
    if cond.all:
        out = np.logical_and.reduce([ok(t) for t in cond.all])
    if cond.any:
        anyv = np.logical_or.reduce([ok(t) for t in cond.any])
        out = anyv if out is None else out & anyv
    assert out is not None
    return out


def _persisted(rule: Rule, ok: npt.NDArray[np.bool_], at: npt.NDArray[np.int64], now_ms: int) -> bool:
    p = rule.persistence
    if p.for_ms > 0:
        since = now_ms - p.for_ms
        before = np.flatnonzero(at <= since)  # the condition must already hold at or before ``since``
        if before.size == 0:  # not observed for long enough yet
            return False
        window = ok[before[-1] :]
        return bool(window.all())
    last = ok[-p.of :]
    return int(last.sum()) >= p.count


def _eval_times(rule: Rule, data: SiteData, now_ms: int, terms: list[Term]) -> npt.NDArray[np.int64]:
    times = [tr.t for term in terms for tr in _tracks_for(term, data)]
    span = eval_span_ms(rule)
    if times:
        allt = np.unique(np.concatenate(times))
        allt = allt[(allt <= now_ms) & (allt > now_ms - span)]
    else:
        allt = np.zeros(0, np.int64)
    if rule.persistence.for_ms == 0:
        allt = allt[-(rule.persistence.of + 1) :]
    return np.unique(np.concatenate([allt, [now_ms]])).astype(np.int64)


def eval_span_ms(rule: Rule) -> int:
    """How far back a rule's evaluation times go: twice its persistence, at least 6 hours."""
    return max(rule.persistence.for_ms * 2, 6 * HOUR_MS)


def evaluate_rule(rule: Rule, data: SiteData, now_ms: int, previous: Level) -> RuleOutcome:
    """The level of one rule now, with its reason (and a failure forecast for deformation rules)."""
    levels = rule.by_level()
    rule_terms = [t for _, c in levels for t in c.terms()]
    at = _eval_times(rule, data, now_ms, rule_terms)
    results: dict[int, TermResult] = {id(t): _term(t, data, at, now_ms) for t in rule_terms}
    level, held, chosen = Level.NONE, False, None
    for lv, cond in levels:
        if _persisted(rule, _holds(cond, results), at, now_ms):
            level, chosen = lv, cond
            break
        if previous >= lv and bool(_holds(cond, results, rule.hysteresis)[-1]):
            level, held, chosen = lv, True, cond
            break
    now = {key: (float(r.values[-1]), r.sensor) for key, r in results.items()}
    return rule_outcome(rule, data, now_ms, level, held, chosen, now)


def rule_outcome(rule: Rule, data: SiteData, now_ms: int, level: Level, held: bool, chosen: Condition | None,
                 now: dict[int, tuple[float, str | None]]) -> RuleOutcome:  # fmt: skip
    """The outcome of a rule with its reason: each term of the level chosen (or of the lowest level)
    with its value now and the sensor giving it (``now``, keyed by ``id(term)``)."""
    shown = chosen if chosen is not None else rule.by_level()[-1][1]
    terms = []
    for t in shown.terms():
        now_v, sensor = now[id(t)]
        terms.append({"term": t.describe(), "series": t.series, "op": t.op, "threshold": t.value,
                      "value": None if not math.isfinite(now_v) else round(now_v, 3), "sensor": sensor,
                      "window": t.window})  # fmt: skip
    reason: dict[str, Any] = {"rule": rule.id, "name": rule.name, "level": level.colour or "none",
                              "level_zh": level.site_label, "terms": terms, "evaluated_ms": now_ms,
                              "held_by_hysteresis": held, "source": rule.source}  # fmt: skip
    if rule.persistence.for_ms:
        reason["persistence"] = f"持续{rule.persistence.for_}"
    elif rule.persistence.of > 1:
        reason["persistence"] = f"最近{rule.persistence.of}次中{rule.persistence.count}次"
    rule_terms = [t for _, c in rule.by_level() for t in c.terms()]
    forecast = _forecast(rule_terms, data, now_ms) if level >= Level.YELLOW else None
    return RuleOutcome(rule.id, rule.name, level, reason, forecast)


def _forecast(rule_terms: list[Term], data: SiteData, now_ms: int) -> dict[str, Any] | None:
    """Inverse-velocity failure time for rules on deformation (the fastest-moving device)."""
    deformation = ("tangent_angle", "rate_ratio", "disp_rate")
    terms = [t for t in rule_terms if t.series in deformation and not t.reads_channel()]
    if not terms or not data.displacement:
        return None
    term = terms[0]
    best = None
    for track in data.displacement:
        since = now_ms - duration_ms(term.recent)
        rate = track.rate(duration_ms(term.smoothing))
        sel = track.t > since
        fc = deform.inverse_velocity(track.t[sel], rate[sel])
        if fc is not None and (best is None or fc.t_failure_ms < best[1].t_failure_ms):
            best = (track.label, fc)
    if best is None:
        return None
    return {"method": "inverse_velocity", "sensor": best[0], **best[1].as_dict()}
