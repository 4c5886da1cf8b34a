"""Site rules over 300,000 sites with a day of 10-minute rainfall each: batch re-evaluation
(goal < 5 s). Evaluates the default rain_24h and rain_effective rules (every level, persistence,
hysteresis against a previous level) with ``warning.batch.evaluate_regular``.
Run: .venv/bin/python -m bench.bench_site_rules
"""

from __future__ import annotations

import time

import numpy as np

from bench.common import machine, peak_rss_mib, table
from geowarn.warning.batch import evaluate_regular
from geowarn.warning.ruleset import default_rules

N_SITES, STEPS, STEP_MS = 300_000, 144, 600_000


def main() -> None:
    rng = np.random.default_rng(2021)
    rain = (rng.gamma(0.5, 1.5, (N_SITES, STEPS)) * rng.uniform(0, 2.5, (N_SITES, 1))).astype(np.float64)
    previous = rng.integers(0, 5, N_SITES).astype(np.uint8)
    rules = [r for r in default_rules().rules if r.id in ("rain_24h", "rain_effective")]
    evaluate_regular(rules[0], rain[:1000], STEP_MS, previous[:1000])  # warm up
    rows = []
    started = time.perf_counter()
    for rule in rules:
        t0 = time.perf_counter()
        levels = evaluate_regular(rule, rain, STEP_MS, previous)
        counts = np.bincount(levels, minlength=5)
        rows.append([rule.id, f"{time.perf_counter() - t0:.2f} s", " / ".join(f"{c:,}" for c in counts[1:])])
    total = time.perf_counter() - started
    print(machine())
    print(table(["rule", "time", "sites at blue / yellow / orange / red"], rows))
    print(f"all rules: {total:.2f} s for {N_SITES:,} sites × {STEPS} readings; peak RSS {peak_rss_mib():,.0f} MiB")


if __name__ == "__main__":
    main()
