"""Rules over many sites at once (``warning.batch_tracks``) equal the per-site evaluator: same levels,
same reasons, on random irregular rain series with gaps, QC flags, counter resets and open alerts."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from geowarn.warning import batch_tracks
from geowarn.warning.engine import SensorInfo, Series, SiteInfo
from geowarn.warning.evaluate import site_data
from geowarn.warning.evaluator import RuleEvaluator
from geowarn.warning.levels import Level
from geowarn.warning.ruleset import load_rules_yaml

MIN = 60_000
T0 = 1_780_000_000_000

#: Rules beyond the defaults: persistence "for", "any" with "<", a short dry gap, 5-day effective rain.
EXTRA = load_rules_yaml("""
rules:
  - id: rain_for
    name: 持续强降雨
    levels:
      yellow: {all: [{series: rain_1h, value: 6}, {series: rain_event, value: 20, dry_gap_h: 2}]}
      red:    {any: [{series: rain_3h, value: 30}, {series: rain_effective, value: 90, k: 0.7, days: 5}]}
    persistence: {for: 40min}
    hysteresis: 0.7
  - id: rain_of
    name: 短历时
    levels:
      blue:   {all: [{series: rain_id_ratio, value: 0.6, a: 10, b: 0.5, dry_gap_h: 1}]}
      orange: {any: [{series: rain_6h, value: 25}, {series: rain_12h, op: "<", value: -1}]}
    persistence: {count: 2, of: 4}
  - id: rain_and_level
    name: 雨量与水位
    levels:
      orange: {all: [{series: rain_24h, value: 40}, {series: value, sensor_type: WATER_LEVEL, value: 3}]}
""")


def _site(rng: np.random.Generator, i: int) -> tuple[SiteInfo, list[Series], int, dict[str, Level]]:
    n = int(rng.integers(0, 500))
    step = int(rng.choice([5, 10, 10, 60])) * MIN
    t = T0 + np.cumsum(rng.integers(1, 3, n) * step)  # irregular, gaps of a step or two
    if n and rng.random() < 0.3:  # an outage of a day
        t[n // 2 :] += 86_400_000
    wet = rng.random() * 8
    mm = np.round(rng.gamma(0.4, wet + 0.01, n) * (rng.random(n) < 0.6), 1)
    flag = rng.choice(np.array([1, 1, 1, 1, 2, 3, 4], np.int8), n)
    value = np.where(rng.random(n) < 0.02, np.nan, mm)
    total = np.cumsum(mm)
    if n > 10:
        total[n // 3 :] -= total[n // 3 - 1]  # a counter reset
    gauge = f"R{i}"
    series = [Series(SensorInfo(10 * i + 1, f"{gauge}.totalValue", "RAIN", "totalValue"), t, total, flag.copy())]
    if rng.random() < 0.7:  # with an interval channel the gauge's rain is that, else from the counter
        series.append(Series(SensorInfo(10 * i, f"{gauge}.value", "RAIN", "value"), t, value, flag))
    if rng.random() < 0.1:  # a second gauge: the site is evaluated alone
        series.append(Series(SensorInfo(10 * i + 2, f"Q{i}.value", "RAIN", "value"), t, mm[::-1].copy(), flag))
    if rng.random() < 0.1:  # a water level: the rain-and-level rule is evaluated alone
        series.append(Series(SensorInfo(10 * i + 3, f"W{i}.value", "WATER_LEVEL", "value"), t, mm / 3, flag))
    now = int(t[-1]) if n and rng.random() < 0.8 else T0 + int(rng.integers(0, 3 * 86_400_000))
    rules = ["rain_24h", "rain_effective", "rain_intensity_duration", "rain_and_deformation", "tangent_angle",
             "rain_for", "rain_of", "rain_and_level"]  # fmt: skip
    previous = {r: Level(int(rng.integers(0, 5))) for r in rules if rng.random() < 0.4}
    hazard = "landslide" if rng.random() < 0.9 else "debris_flow"
    return SiteInfo(i, f"S{i}", "350922100", hazard), series, now, previous


def _evaluator() -> RuleEvaluator:
    return RuleEvaluator(lambda site: (EXTRA, None))


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_many_sites_at_once_equal_each_site_alone(seed: int) -> None:
    rng = np.random.default_rng(seed)
    cases = [_site(rng, i) for i in range(int(rng.integers(1, 40)))]
    evaluator = _evaluator()
    many = evaluator.evaluate_many(cases)
    for case, outcomes in zip(cases, many, strict=True):
        assert outcomes == evaluator.evaluate(*case), case[0].code


def test_the_batch_path_is_taken_and_levels_are_raised() -> None:
    """Guards the test above: most sites go through ``batch_tracks`` and the storms raise alerts."""
    rng = np.random.default_rng(5)
    cases = [_site(rng, i) for i in range(200)]
    rules = _evaluator().rules(cases[0][0])
    batched = sum(batch_tracks.gauge_of(r, site_data(c[1], r.qc_max_flag)) is not None for c in cases for r in rules)
    assert batched > len(cases) * 3
    levels = {int(o.level) for outcomes in _evaluator().evaluate_many(cases) if outcomes for o in outcomes}
    assert {0, 1, 2, 3, 4} <= levels
    assert any(o.reason["held_by_hysteresis"] for outcomes in _evaluator().evaluate_many(cases) if outcomes
               for o in outcomes)  # fmt: skip


def test_a_failed_batch_falls_back_to_each_site_alone(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(9)
    cases = [_site(rng, i) for i in range(6)]
    real = batch_tracks.evaluate_rule_many

    def broken(rule, members, gauges):  # type: ignore[no-untyped-def]
        if any(g.label == "R2" for g in gauges):
            raise ValueError("boom")
        return real(rule, members, gauges)

    monkeypatch.setattr(batch_tracks, "evaluate_rule_many", broken)
    many = _evaluator().evaluate_many(cases)
    assert many == [_evaluator().evaluate(*c) for c in cases]
