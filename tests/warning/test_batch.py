"""Batch evaluation equals the per-site evaluator on random storms."""

from __future__ import annotations

import numpy as np

from geowarn.warning.batch import evaluate_regular
from geowarn.warning.engine import SensorInfo, Series
from geowarn.warning.evaluate import evaluate_rule, site_data
from geowarn.warning.levels import Level
from geowarn.warning.ruleset import default_rules

STEP = 600_000


def test_batch_equals_per_site_for_the_default_rain_rules() -> None:
    rng = np.random.default_rng(3)
    n, steps = 40, 432  # three days of 10-minute rain
    rain = rng.gamma(0.6, 2.0, (n, steps)) * (rng.random((n, 1)) * 3)
    previous = rng.integers(0, 5, n).astype(np.uint8)
    t = (np.arange(steps) + 1) * STEP
    for rule in default_rules().rules:
        if rule.id not in ("rain_24h", "rain_effective"):
            continue
        batch = evaluate_regular(rule, rain, STEP, previous)
        for i in range(n):
            series = Series(SensorInfo(1, "R.value", "RAIN", "value"), t, rain[i], np.ones(steps, np.int8))
            one = evaluate_rule(rule, site_data([series], 2), int(t[-1]), Level(int(previous[i])))
            assert int(one.level) == int(batch[i]), (rule.id, i)
