"""Rules on site series: known threshold crossings, persistence, hysteresis, combinations, QC, errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from geowarn.demo.event import TyphoonEvent
from geowarn.errors import InvalidInput
from geowarn.warning.engine import SensorInfo, Series, SiteInfo
from geowarn.warning.evaluate import evaluate_rule, site_data
from geowarn.warning.evaluator import RuleEvaluator, rule_lookback_ms
from geowarn.warning.levels import Level
from geowarn.warning.ruleset import default_rules, load_rules_yaml, merge, parse_rules

MIN = 60_000
H = 3_600_000
DAY = 86_400_000
SITE = SiteInfo(1, "S1", "350922100", "landslide")


def _rain(t: np.ndarray, mm: np.ndarray, flag: np.ndarray | None = None, code: str = "R1") -> Series:
    f = np.ones(t.size, np.int8) if flag is None else flag
    return Series(SensorInfo(1, f"{code}.value", "RAIN", "value"), t.astype(np.int64), mm.astype(float), f)


def _rule(rule_id: str):  # type: ignore[no-untyped-def]
    return next(r for r in default_rules().rules if r.id == rule_id)


def _levels_over_time(
    rule_id: str, series: list[Series], times: np.ndarray, *, first_only: bool = False
) -> list[tuple[int, int]]:
    """(time, level) at each change, evaluating every time in turn with the previous level fed back;
    with ``first_only``, stop at the first change (the later evaluations cannot alter it)."""
    rule, previous, changes = _rule(rule_id), Level.NONE, []
    for now in times:
        data = site_data([_clip(s, int(now)) for s in series], rule.qc_max_flag)
        level = evaluate_rule(rule, data, int(now), previous).level
        if level != previous:
            changes.append((int(now), int(level)))
            if first_only:
                break
        previous = level
    return changes


def _clip(s: Series, now: int) -> Series:
    keep = s.t_ms <= now
    return Series(s.sensor, s.t_ms[keep], s.value[keep], s.flag[keep])


def test_a_storm_crosses_the_24h_thresholds_when_arithmetic_says() -> None:
    # 12 mm/h in 10-minute readings of 2 mm: 50 mm after 25 readings, 70 after 35, 110 after 55, 160 after 80
    t = np.arange(1, 121) * 10 * MIN
    series = [_rain(t, np.full(t.size, 2.0))]
    changes = _levels_over_time("rain_24h", series, t)
    assert changes == [(250 * MIN, 1), (350 * MIN, 2), (550 * MIN, 3), (800 * MIN, 4)]


def test_hysteresis_holds_a_level_until_the_relaxed_threshold() -> None:
    # 120 mm in the first hour, then dry: the 24 h sum stays 120 for a day, then drops to 0.
    t = np.arange(1, 7) * 10 * MIN
    series = [_rain(t, np.full(6, 20.0)), _rain(np.array([25 * H]), np.array([0.0]), code="R2")]
    rule = _rule("rain_24h")
    data = site_data(series, 2)
    assert evaluate_rule(rule, data, 2 * H, Level.NONE).level is Level.ORANGE
    # 20 mm has left the window (100 mm): without hysteresis yellow, with it orange holds (100 >= 0.9·110)
    at = 24 * H + 15 * MIN
    assert evaluate_rule(rule, data, at, Level.NONE).level is Level.YELLOW
    held = evaluate_rule(rule, data, at, Level.ORANGE)
    assert held.level is Level.ORANGE and held.reason["held_by_hysteresis"] is True
    # 40 mm out (80 mm): below 0.9·110 = 99, so orange ends; yellow (70) holds on its own
    assert evaluate_rule(rule, data, 24 * H + 25 * MIN, Level.ORANGE).level is Level.YELLOW


def test_suspect_and_failed_readings_do_not_trigger() -> None:
    t = np.array([10, 20, 30]) * MIN
    flags = np.array([1, 4, 3], np.int8)
    data = site_data([_rain(t, np.array([1.0, 500.0, 300.0]), flags)], 2)
    out = evaluate_rule(_rule("rain_24h"), data, 30 * MIN, Level.NONE)
    assert out.level is Level.NONE and out.reason["terms"][0]["value"] == 1.0


def test_combination_of_rain_and_deformation_with_persistence() -> None:
    e = TyphoonEvent(start_ms=0, v_eq_mm_h=0.1)  # 2.4 mm/day before the onset
    t = np.arange(-40 * DAY, e.failure_ms - 20 * MIN, 10 * MIN)
    crack = Series(SensorInfo(2, "LF1.value", "LF", "value"), t, e.displacement_mm(t), np.ones(t.size, np.int8))
    rain_t = np.arange(0, e.end_ms, 10 * MIN)
    rain_s = _rain(rain_t, np.full(rain_t.size, 2.0))  # 12 mm/h
    changes = _levels_over_time("rain_and_deformation", [crack, rain_s], np.arange(0, e.end_ms, 10 * MIN),
                                first_only=True)  # fmt: skip
    assert changes and changes[0][1] == Level.ORANGE
    # orange needs rain_24h >= 50 and the rate at 3·V0 or more, three evaluations in a row
    first = changes[0][0]
    assert first > 250 * MIN  # 50 mm of rain takes 250 minutes at 12 mm/h
    data = site_data([_clip(crack, first - 30 * MIN), _clip(rain_s, first - 30 * MIN)], 2)
    assert evaluate_rule(_rule("rain_and_deformation"), data, first - 30 * MIN, Level.NONE).level is Level.NONE


def test_tangent_angle_rule_rises_to_red_with_a_failure_forecast() -> None:
    e = TyphoonEvent(start_ms=0, v_eq_mm_h=0.25)
    t = np.arange(-35 * DAY, e.failure_ms - 10 * MIN, 10 * MIN)
    noise = np.random.default_rng(3).normal(0, 0.05, t.size)
    crack = Series(SensorInfo(2, "LF1.value", "LF", "value"), t, e.displacement_mm(t) + noise, np.ones(t.size, np.int8))
    changes = _levels_over_time("tangent_angle", [crack], np.arange(0, e.failure_ms - 10 * MIN, 20 * MIN))
    assert [lv for _, lv in changes][-1] == Level.RED
    assert all(b > a for (_, a), (_, b) in itertools.pairwise(changes))  # only rises
    t_red = next(t for t, lv in changes if lv == Level.RED)
    assert e.angle_crossing_ms(85) <= t_red <= e.angle_crossing_ms(85) + 2 * H  # little lag: end-point rates
    out = RuleEvaluator().evaluate(SITE, [crack], e.end_ms, {"tangent_angle": Level.RED})
    fc = next(o for o in out if o.rule_id == "tangent_angle").forecast
    assert fc is not None and abs(fc["t_failure_ms"] - e.failure_ms) < 0.1 * (e.failure_ms - e.accel_ms)


def test_m_of_n_persistence() -> None:
    rules = load_rules_yaml(
        """
        rules:
          - id: gw
            name: 地下水位
            levels:
              yellow: {all: [{series: value, sensor_type: GROUNDWATER, value: 10}]}
            persistence: {count: 3, of: 5}
        """
    )
    rule = rules.rules[0]
    t = np.arange(1, 8) * 10 * MIN
    v = np.array([11, 9, 11, 9, 9, 11, 11], float)
    s = Series(SensorInfo(3, "GW1.value", "GROUNDWATER", "value"), t, v, np.ones(7, np.int8))
    levels = [evaluate_rule(rule, site_data([_clip(s, int(n))], 2), int(n), Level.NONE).level for n in t]
    # the evaluation times are the readings: only the last has 3 of the 5 latest above 10
    assert [int(x) for x in levels] == [0, 0, 0, 0, 0, 0, 2]


def test_overrides_replace_and_disable_rules_and_errors_name_the_field() -> None:
    site = parse_rules({"rules": [{"id": "rain_24h", "name": "本点24小时雨量", "levels": {"red": {"all": [
        {"series": "rain_24h", "value": 100}]}}}, {"id": "tangent_angle", "name": "x", "disabled": True,
        "levels": {"red": {"all": [{"series": "tangent_angle", "value": 85}]}}}]})  # fmt: skip
    merged = merge(default_rules(), site)
    ids = [r.id for r in merged.rules]
    assert "tangent_angle" not in ids and next(r for r in merged.rules if r.id == "rain_24h").name == "本点24小时雨量"
    with pytest.raises(InvalidInput) as err:
        parse_rules({"rules": [{"id": "x", "name": "x", "levels": {"purple": {"all": []}}}]})
    assert "rules.0.levels.purple" in str(err.value)
    with pytest.raises(InvalidInput, match="duration"):
        parse_rules([{"id": "x", "name": "x", "levels": {"red": {"all": [{"series": "disp_change", "value": 1,
                                                                           "window": "a week"}]}}}])  # fmt: skip
    with pytest.raises(InvalidInput, match="YAML"):
        load_rules_yaml("rules: [")
    assert rule_lookback_ms(_rule("tangent_angle")) >= 33 * DAY


def test_a_still_but_noisy_gnss_slope_rarely_alerts() -> None:
    """GNSS at 30-minute intervals with 1.2 mm noise on a slope creeping 0.24 mm/day: the default
    deformation rules must stay quiet almost always (here: at most 3 % of evaluations)."""
    rng = np.random.default_rng(11)
    t = np.arange(0, 40 * DAY, 30 * MIN)
    creep = 0.01 * t / H
    x, y = creep * 0.8 + rng.normal(0, 1.2, t.size), creep * 0.6 + rng.normal(0, 1.2, t.size)
    series = [Series(SensorInfo(1, "GP1.gpsTotalX", "GP", "gpsTotalX"), t, x, np.ones(t.size, np.int8)),
              Series(SensorInfo(2, "GP1.gpsTotalY", "GP", "gpsTotalY"), t, y, np.ones(t.size, np.int8))]  # fmt: skip
    evaluator, previous, alerts, n = RuleEvaluator(), {}, 0, 0
    for now in range(34 * DAY, 40 * DAY, 2 * H):
        out = evaluator.evaluate(SITE, [_clip(s, now) for s in series], now, previous)
        previous = {o.rule_id: o.level for o in out if o.level}
        alerts += any(o.level >= Level.YELLOW for o in out if o.rule_id in ("tangent_angle", "rate_baseline"))
        n += 1
    assert alerts <= 0.03 * n


def test_duration_persistence_needs_the_condition_for_the_whole_span() -> None:
    rule = load_rules_yaml(
        """
        rules:
          - id: gw
            name: 地下水位持续超限
            levels:
              orange: {all: [{series: value, sensor_type: GROUNDWATER, value: 10}]}
            persistence: {for: 30min}
        """
    ).rules[0]
    t = np.arange(0, 13) * 10 * MIN  # readings every 10 minutes from 0 to 120 min
    v = np.array([5, 5, 11, 11, 11, 9, 11, 11, 11, 11, 11, 11, 11], float)
    s = Series(SensorInfo(3, "GW1.value", "GROUNDWATER", "value"), t, v, np.ones(t.size, np.int8))
    got = [int(evaluate_rule(rule, site_data([_clip(s, int(n))], 2), int(n), Level.NONE).level) for n in t]
    # above 10 from 20 min (broken at 50) and again from 60 min: held for 30 min at 90 min
    assert got == [0] * 9 + [3] * 4


def test_rate_and_change_rules_on_any_channel_cross_when_the_algebra_says() -> None:
    """A groundwater level at rest until t0, then v = (t − t0)² m (t in days): its rate is 2(t − t0)
    m/day exactly (the end-point quadratic is exact on a parabola), so a 0.6 m/day threshold is first
    met at the reading after 7.2 h and 1.2 m/day after 14.4 h. Before this, rate and change rules on a
    non-displacement sensor read nothing and never alerted."""
    rules = load_rules_yaml(
        """
        rules:
          - id: gw_rate
            name: 地下水位上升速率
            levels:
              yellow: {all: [{series: disp_rate, sensor_type: GROUNDWATER, value: 0.6, smoothing: 6h}]}
              orange: {all: [{series: disp_rate, sensor_type: GROUNDWATER, value: 1.2, smoothing: 6h}]}
          - id: gw_change
            name: 地下水位6小时变幅
            levels:
              yellow: {all: [{series: disp_change, sensor_type: GROUNDWATER, window: 6h, value: 0.49}]}
        """
    )
    rate_rule, change_rule = rules.rules
    assert rate_rule.needs() == {"value"} and change_rule.needs() == {"value"}
    t0 = 2 * DAY
    t = np.arange(0, 4 * DAY, 10 * MIN, dtype=np.int64)
    days = np.clip(t - t0, 0, None) / DAY
    s = Series(SensorInfo(3, "GW1.value", "GROUNDWATER", "value"), t, days**2, np.ones(t.size, np.int8))
    changes, previous = [], Level.NONE
    for now in t[t > t0]:
        level = evaluate_rule(rate_rule, site_data([_clip(s, int(now))], 2), int(now), previous).level
        if level != previous:
            changes.append((int(now) - t0, int(level)))
        previous = level
    assert changes == [(7 * H + 20 * MIN, 2), (14 * H + 30 * MIN, 3)]
    # change over 6 h of the parabola, (x² − (x − ¼)²) = x/2 − 1/16 m, passes 0.49 m at x = 1.105 d
    first = next(
        int(n) - t0
        for n in t[t > t0]
        if evaluate_rule(change_rule, site_data([_clip(s, int(n))], 2), int(n), Level.NONE).level == Level.YELLOW
    )
    assert first == 26 * H + 40 * MIN  # the first reading at or after 1.105 d = 26 h 31.2 min
    # the rule's history reaches the groundwater sensor, which the engine would not have read before
    lookbacks = RuleEvaluator(lambda _site: (rules, None)).sensor_lookbacks(
        SITE, [SensorInfo(3, "GW1.value", "GROUNDWATER", "value")]
    )
    assert lookbacks[3] >= 12 * H  # the 6 h change window plus the 6 h rate smoothing


@pytest.mark.parametrize(
    ("rule_id", "crossing", "lag"),
    [
        # α = arctan(v / v_eq) passes 48° (yellow), 80° (orange), 85° (red); 2 of 3 evaluations
        ("tangent_angle", lambda e: [e.angle_crossing_ms(48), e.angle_crossing_ms(80), e.angle_crossing_ms(85)], H),
        # V0 = 1.5·v_eq + 2·0 on a noise-free quiet window: v passes V0, 5·V0, 10·V0; 3 of 3 evaluations
        # (measured: 36, 68 and 73 minutes late; red still 32 minutes before the failure)
        (
            "rate_baseline",
            lambda e: [e.failure_ms - (e.failure_ms - e.accel_ms) / k for k in (1.5, 7.5, 15.0)],
            80 * MIN,
        ),
    ],
    ids=["tangent_angle", "rate_baseline"],
)
def test_deformation_rules_cross_each_band_when_the_creep_curve_says(rule_id: str, crossing, lag: int) -> None:  # type: ignore[no-untyped-def]
    """A noise-free creep curve, v = v_eq before the acceleration and v = v_eq·t_f/(t_f − t) after it
    (Fukuzono / Saito): the times v / v_eq reaches each band's ratio are known; every level is first
    reached no earlier, and at most ``lag`` later (the rate's 6 h end-point fit, persistence, and an
    evaluation every 10 minutes)."""
    e = TyphoonEvent(start_ms=0, v_eq_mm_h=0.25)
    t = np.arange(-35 * DAY, e.failure_ms - 10 * MIN, 10 * MIN)
    crack = Series(SensorInfo(2, "LF1.value", "LF", "value"), t, e.displacement_mm(t), np.ones(t.size, np.int8))
    changes = _levels_over_time(rule_id, [crack], np.arange(e.accel_ms - 6 * H, e.failure_ms - 10 * MIN, 10 * MIN))
    first = {lv: next(at for at, level in changes if level == lv) for lv in (2, 3, 4)}
    for lv, expect in zip((2, 3, 4), crossing(e), strict=True):
        assert expect <= first[lv] <= expect + lag, (lv, (first[lv] - expect) / MIN)
    assert first[4] < e.failure_ms


def test_acceleration_of_a_parabola_is_its_second_derivative_on_any_channel() -> None:
    """disp_accel of v = (t − t0)² m (t in days) is 2 m/day² exactly once both rates of its window come
    from the parabola (the rate's 6 h fit is exact there): 1.99 holds, 2.01 does not. Also a
    pore-water pressure sensor: any channel, not only displacement."""
    t0 = 2 * DAY
    t = np.arange(0, 3 * DAY, 10 * MIN, dtype=np.int64)
    v = (np.clip(t - t0, 0, None) / DAY) ** 2
    s = Series(SensorInfo(4, "PP1.value", "PORE_PRESSURE", "value"), t, v, np.ones(t.size, np.int8))
    now = t0 + 13 * H

    def level(threshold: float) -> tuple[Level, float]:
        (rule,) = load_rules_yaml(
            f"""
            rules:
              - id: pp_accel
                name: 孔隙水压力加速
                levels:
                  yellow: {{all: [{{series: disp_accel, sensor_type: PORE_PRESSURE, window: 6h, value: {threshold}}}]}}
            """
        ).rules
        out = evaluate_rule(rule, site_data([_clip(s, now)], 2), now, Level.NONE)
        return out.level, out.reason["terms"][0]["value"]

    (lo, value), (hi, _) = level(1.99), level(2.01)
    assert (lo, hi) == (Level.YELLOW, Level.NONE) and value == pytest.approx(2.0, abs=1e-3)
