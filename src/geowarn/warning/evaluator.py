"""The engine's evaluator: which rules apply to a site, how much history each sensor needs, and the
rules' outcomes for a batch of sites (rainfall rules across the batch at once, the rest per site).

Rules come from the defaults per hazard type with the overrides per type and site, merged once per
(hazard type, override objects). History is asked per sensor: a rain gauge is read as far back as
the rain terms need (a week for event rainfall), a displacement device as far as the deformation
terms need (a month of quiet baseline), so the rain of a landslide site is not read for a month
because a tangent-angle rule exists.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from geowarn.warning import batch_tracks
from geowarn.warning.engine import RuleOutcome, SensorInfo, Series, SiteInfo
from geowarn.warning.evaluate import (
    DAY_MS,
    DISPLACEMENT_TYPES,
    HOUR_MS,
    SiteData,
    Track,
    eval_span_ms,
    evaluate_rule,
    site_data,
)  # fmt: skip
from geowarn.warning.levels import Level
from geowarn.warning.ruleset import RAIN_HOURS, Rule, RuleSet, Term, duration_ms, rules_for

log = logging.getLogger(__name__)
Case = tuple[SiteInfo, list[Series], int, dict[str, Level]]  # site, its series, data time, open levels
#: What a term reads: "rain", "displacement", or ("value", sensor type, channel or None).
Reads = str | tuple[str, str, str | None]


@dataclass(slots=True)
class _Compiled:
    """The rules of one (hazard type, overrides) combination, with what the engine asks of them each time."""

    layers: tuple[RuleSet | None, RuleSet | None]
    rules: list[Rule]
    lookback_ms: int
    needs: list[set[str]]
    reads: dict[Reads, int]  # history each kind of input needs


class RuleEvaluator:
    """The engine's evaluator: default rules per hazard type, with optional overrides per type and site.

    The merged rules are kept per (hazard type, override objects): a batch asks for every site's rules
    twice (history to load, then evaluation), and merging and walking the rules cost more than reading
    them. New override objects (an edit, a TTL reload) give a new entry."""

    def __init__(self, overrides: Callable[[SiteInfo], tuple[RuleSet | None, RuleSet | None]] | None = None) -> None:
        self.overrides = overrides
        self._compiled: dict[tuple[str, int, int], _Compiled] = {}

    def _rules(self, site: SiteInfo) -> _Compiled:
        layers = self.overrides(site) if self.overrides is not None else (None, None)
        key = (site.hazard_type, id(layers[0]), id(layers[1]))
        hit = self._compiled.get(key)
        if hit is None or hit.layers[0] is not layers[0] or hit.layers[1] is not layers[1]:
            if len(self._compiled) >= 4096:
                self._compiled.clear()
            rules = rules_for(site.hazard_type, *layers)
            lookback = max((rule_lookback_ms(r) for r in rules), default=0)
            reads: dict[Reads, int] = {}
            for r in rules:
                span = eval_span_ms(r)
                for _, cond in r.by_level():
                    for t in cond.terms():
                        reads[_reads(t)] = max(reads.get(_reads(t), 0), term_lookback_ms(t) + span)
            hit = _Compiled(layers, rules, lookback, [r.needs() for r in rules], reads)
            self._compiled[key] = hit
        return hit

    def rules(self, site: SiteInfo) -> list[Rule]:
        return list(self._rules(site).rules)

    def lookback_ms(self, site: SiteInfo) -> int:
        return self._rules(site).lookback_ms

    def sensor_lookbacks(self, site: SiteInfo, sensors: Sequence[SensorInfo]) -> dict[int, int]:
        """History each of the site's sensors needs (ms); sensors no rule reads are left out."""
        reads = self._rules(site).reads
        out: dict[int, int] = {}
        for s in sensors:
            need = reads.get("rain", 0) if s.sensor_type == "RAIN" else 0
            if s.sensor_type in DISPLACEMENT_TYPES:
                need = max(need, reads.get("displacement", 0))
            for key, ms in reads.items():
                if isinstance(key, tuple) and key[1] == s.sensor_type and key[2] in (None, s.channel):
                    need = max(need, ms)
            if need:
                out[s.id] = need
        return out

    def rain_fallbacks(self, site: SiteInfo, sensors: Sequence[SensorInfo]) -> dict[int, int]:
        """Cumulative rain channels (``totalValue``) needed only if their gauge's interval channel
        (``value``) has no reading in its window: cumulative sensor id → interval sensor id.

        :func:`~geowarn.warning.evaluate.site_data` takes a gauge's rain from the interval channel
        whenever that series has a reading, and from the cumulative one only otherwise; so unless a
        rule reads the cumulative channel itself, the engine reads it only for gauges without
        interval readings (half the rows of a national-platform gauge, which sends both). A subclass
        whose own evaluation reads the cumulative channel directly must override this."""
        reads = self._rules(site).reads
        if any(isinstance(k, tuple) and k[1] == "RAIN" and k[2] in (None, "totalValue") for k in reads):
            return {}
        interval = {s.code.rsplit(".", 1)[0]: s.id for s in sensors if s.sensor_type == "RAIN" and s.channel == "value"}
        out: dict[int, int] = {}
        for s in sensors:
            if s.sensor_type == "RAIN" and s.channel == "totalValue":
                primary = interval.get(s.code.rsplit(".", 1)[0])
                if primary is not None:
                    out[s.id] = primary
        return out

    def _inputs(
        self, site: SiteInfo, series: list[Series], previous: dict[str, Level]
    ) -> Iterator[tuple[Rule, SiteData, Level]]:
        """Each rule with the site's data and the level open now, leaving out the rules with nothing to
        read and nothing open (their answer is "no alert")."""
        cache: dict[int, SiteData] = {}
        compiled = self._rules(site)
        for rule, needs in zip(compiled.rules, compiled.needs, strict=True):
            data = cache.get(rule.qc_max_flag)
            if data is None:
                data = cache[rule.qc_max_flag] = site_data(series, rule.qc_max_flag)
            before = previous.get(rule.id, Level.NONE)
            if before is Level.NONE and not _has_inputs(needs, data):
                continue
            yield rule, data, before

    def evaluate(
        self, site: SiteInfo, series: list[Series], now_ms: int, previous: dict[str, Level]
    ) -> list[RuleOutcome]:
        return [
            evaluate_rule(rule, data, now_ms, before) for rule, data, before in self._inputs(site, series, previous)
        ]

    def evaluate_many(self, cases: list[Case]) -> list[list[RuleOutcome] | None]:
        """``evaluate`` for each case, a rule's rainfall at many sites evaluated at once
        (``warning.batch_tracks``, identical results); None for a site whose evaluation failed."""
        out: list[list[RuleOutcome | None] | None] = []
        groups: dict[int, tuple[Rule, list[tuple[int, int, batch_tracks.SiteCase, Track]]]] = {}
        for i, (site, series, now_ms, previous) in enumerate(cases):
            try:
                slots: list[RuleOutcome | None] = []
                for rule, data, before in self._inputs(site, series, previous):
                    gauge = batch_tracks.gauge_of(rule, data)
                    if gauge is None:
                        slots.append(evaluate_rule(rule, data, now_ms, before))
                    else:
                        group = groups.setdefault(id(rule), (rule, []))[1]
                        group.append((i, len(slots), batch_tracks.SiteCase(data, now_ms, before), gauge))
                        slots.append(None)
                out.append(slots)
            except Exception:
                log.exception("evaluating site %s failed", site.code)
                out.append(None)
        for rule, members in groups.values():
            for (i, k, _, _), outcome in zip(members, _many(rule, members), strict=True):
                site_slots = out[i]
                if site_slots is not None:
                    site_slots[k] = outcome
                if outcome is None:  # the site's evaluation failed: leave its alerts as they are
                    out[i] = None
        return [None if s is None else [o for o in s if o is not None] for s in out]


def _many(rule: Rule, members: list[tuple[int, int, batch_tracks.SiteCase, Track]]) -> Sequence[RuleOutcome | None]:
    """The rule at every member site at once, or one by one if that fails (a bad site fails alone)."""
    try:
        return batch_tracks.evaluate_rule_many(rule, [m[2] for m in members], [m[3] for m in members])
    except Exception:
        log.exception("evaluating rule %s over %d sites at once failed", rule.id, len(members))
    done: list[RuleOutcome | None] = []
    for _, _, case, _ in members:
        try:
            done.append(evaluate_rule(rule, case.data, case.now_ms, case.previous))
        except Exception:
            log.exception("evaluating rule %s failed", rule.id)
            done.append(None)
    return done


def _has_inputs(needs: set[str], data: SiteData) -> bool:
    return bool(
        ("rain" in needs and data.rain)
        or ("displacement" in needs and data.displacement)
        or ("value" in needs and data.other)
    )


def _reads(t: Term) -> Reads:
    if t.series.startswith("rain_"):
        return "rain"
    if t.reads_channel():
        return ("value", t.sensor_type or "", t.channel)
    return "displacement"


def term_lookback_ms(t: Term) -> int:
    """History a term needs before its earliest evaluation time."""
    s = t.series
    if s in RAIN_HOURS:
        return RAIN_HOURS[s] * HOUR_MS
    if s == "rain_effective":
        return t.days * DAY_MS
    if s in ("rain_event", "rain_id_ratio"):
        return 7 * DAY_MS
    if s in ("tangent_angle", "rate_ratio"):
        return duration_ms(t.baseline) + duration_ms(t.recent) + duration_ms(t.smoothing)
    return duration_ms(t.window or "0s") + duration_ms(t.smoothing)


def rule_lookback_ms(rule: Rule) -> int:
    """How much history the rule needs at an evaluation."""
    return max((term_lookback_ms(t) for _, c in rule.by_level() for t in c.terms()), default=0) + eval_span_ms(rule)
