"""Benchmark: geowarn QC tests against ioos_qc's QARTOD tests on the same million readings.

Needs ioos_qc, which is a bench-only tool and NOT a geowarn dependency::

    .venv/bin/pip install ioos_qc

Run: ``.venv/bin/python bench/bench_qc.py [--n 1000000] [--repeat 3]``. The series is a GNSS-like
displacement at one reading a minute: a slow random walk with mm noise, injected spikes, fast moves,
stuck stretches (exactly repeated values) and 0.1 % NaN. Each test runs on both libraries with
equivalent parameters; the best of ``--repeat`` wall times is reported, with the number of readings
whose flags disagree and how many of those are explained by a documented convention:

* spike: geowarn takes the nearest *valid* neighbours across a NaN, ioos_qc flags the neighbours of a
  NaN NOT_EVALUATED;
* rate of change: geowarn measures from the previous valid reading across a NaN (ioos_qc: GOOD) and
  flags the first reading NOT_EVALUATED (ioos_qc: GOOD);
* flat line: ioos_qc counts its window in samples, NaN slots included; geowarn measures the time since
  the run started, so windows that straddle a NaN can differ.

Peak memory of each call is measured with tracemalloc in a separate pass (tracing slows numpy down,
so the times come from untraced runs).

A second section (``--section many``) times the ingestion shape: 2,000 sensors with one new reading
each and 20 stored readings of history, checked by a loop of ``run_qc`` (+ ``pack_flags``, as the
ingest path did per sensor) against one ``run_qc_many`` call, and checks that both give the same flags.
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

from geowarn.monitoring.qc import (
    QcConfig,
    QcFlag,
    QcHistories,
    QcHistory,
    flat_line_test,
    gross_range_test,
    pack_flags,
    qc_config_for,
    rate_of_change_test,
    run_qc,
    run_qc_many,
    spike_test,
)

try:
    from ioos_qc import qartod
except ImportError:  # pragma: no cover - bench-only dependency
    qartod = None

INTERVAL_S = 60.0
FAIL_SPAN = (-500.0, 500.0)
SUSPECT_SPAN = (-200.0, 200.0)
SPIKE = {"suspect_threshold": 30.0, "fail_threshold": 100.0}
ROC_PER_S = 0.5
FLAT_SUSPECT_S, FLAT_FAIL_S, FLAT_TOLERANCE = 1800.0, 3600.0, 0.001


def make_series(n: int, seed: int = 20261122) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Times (float epoch s and datetime64[s]) and values of a synthetic displacement record."""
    rng = np.random.default_rng(seed)
    t = 1.7e9 + np.arange(n, dtype=np.float64) * INTERVAL_S
    v = np.cumsum(rng.normal(0.0, 0.05, n)) + rng.normal(0.0, 2.0, n)
    v = np.clip(v, -400, 400)
    spikes = rng.choice(n, n // 2000, replace=False)
    v[spikes] += rng.choice([-1, 1], spikes.size) * rng.uniform(20, 300, spikes.size)
    moves = rng.choice(n - 5, n // 5000, replace=False)
    for start in moves:
        v[start : start + 5] += np.linspace(0, rng.uniform(30, 60), 5)
    for start in rng.choice(n - 200, n // 10000, replace=False):
        v[start : start + rng.integers(10, 200)] = v[start]
    v[rng.choice(n, n // 1000, replace=False)] = np.nan
    return t, t.astype("int64").astype("datetime64[s]"), v


def best_time(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def peak_mib(fn: Callable[[], Any]) -> float:
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def near_nan(v: np.ndarray, reach: int) -> np.ndarray:
    """Readings within ``reach`` samples of a NaN (where the NaN conventions differ)."""
    nan = np.isnan(v).astype(np.int64)
    c = np.concatenate(([0], np.cumsum(nan)))
    i = np.arange(v.size)
    lo, hi = np.clip(i - reach, 0, v.size), np.clip(i + reach + 1, 0, v.size)
    return (c[hi] - c[lo]) > 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--section", choices=["all", "ioos", "many"], default="all")
    parser.add_argument("--sensors", type=int, default=2000)
    args = parser.parse_args()
    if args.section in ("all", "many"):
        many_sensors(args.sensors, args.repeat)
        if args.section == "many":
            return 0
        print()
    if qartod is None:
        print("ioos_qc is not installed: `.venv/bin/pip install ioos_qc` (bench-only, not a geowarn dependency)")
        return 2
    import ioos_qc

    t, t64, v = make_series(args.n)
    window = int(FLAT_FAIL_S / INTERVAL_S)

    def ours_flat() -> np.ndarray:
        return flat_line_test(t, v, suspect_seconds=FLAT_SUSPECT_S, fail_seconds=FLAT_FAIL_S, tolerance=FLAT_TOLERANCE)

    cases: list[tuple[str, Callable[[], Any], Callable[[], Any], np.ndarray]] = [
        (
            "gross range",
            lambda: gross_range_test(v, fail_span=FAIL_SPAN, suspect_span=SUSPECT_SPAN),
            lambda: qartod.gross_range_test(v, fail_span=FAIL_SPAN, suspect_span=SUSPECT_SPAN),
            np.zeros(v.size, bool),
        ),
        (
            "spike",
            lambda: spike_test(v, suspect_threshold=SPIKE["suspect_threshold"], fail_threshold=SPIKE["fail_threshold"]),
            lambda: qartod.spike_test(v, **SPIKE),
            near_nan(v, 1),
        ),
        (
            "rate of change",
            lambda: rate_of_change_test(t, v, threshold_per_s=ROC_PER_S),
            lambda: qartod.rate_of_change_test(v, t64, ROC_PER_S),
            near_nan(v, 1) | (np.arange(v.size) == 0),
        ),
        (
            "flat line",
            ours_flat,
            lambda: qartod.flat_line_test(v, t64, FLAT_SUSPECT_S, FLAT_FAIL_S, tolerance=FLAT_TOLERANCE),
            near_nan(v, window),
        ),
    ]
    print(f"QC tests on {args.n:,} readings; geowarn vs ioos_qc {ioos_qc.__version__}, numpy {np.__version__}")
    print("best of", args.repeat, "runs; peak memory by tracemalloc\n")
    print(
        "| test | geowarn s | ioos_qc s | speedup | geowarn peak MiB | ioos_qc peak MiB | disagreements | explained |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, ours, theirs, explained_mask in cases:
        t_ours, f_ours = best_time(ours, args.repeat)
        t_theirs, f_theirs = best_time(theirs, max(1, args.repeat if name != "flat line" else 1))
        f_theirs = np.ma.filled(f_theirs, QcFlag.MISSING).astype(np.uint8)
        differ = f_ours != f_theirs
        explained = differ & explained_mask
        print(
            f"| {name} | {t_ours:.4f} | {t_theirs:.4f} | {t_theirs / t_ours:.1f}x | {peak_mib(ours):.0f} "
            f"| {peak_mib(theirs):.0f} | {int(differ.sum())} | {int(explained.sum())} |"
        )
        if (differ & ~explained_mask).any():
            where = np.flatnonzero(differ & ~explained_mask)[:5]
            print(f"  unexplained at {where.tolist()}: ours {f_ours[where]} ioos {f_theirs[where]}", file=sys.stderr)
    counts = np.bincount(ours_flat(), minlength=10)
    print(f"\nflat-line flags (geowarn): {', '.join(f'{QcFlag(k).name} {counts[k]:,}' for k in (1, 2, 3, 4, 9))}")
    return 0


def many_sensors(n_sensors: int, repeat: int, history: int = 20, seed: int = 20261122) -> None:
    """run_qc per sensor against run_qc_many for one ingest batch: one new reading per sensor."""
    rng = np.random.default_rng(seed)
    now = 1.8e9
    configs: list[QcConfig] = [
        qc_config_for("LF", overrides={"interval_seconds": 60}),
        qc_config_for("GP", overrides={"interval_seconds": 60}),
        qc_config_for("RAIN", overrides={"interval_seconds": 60}),
        qc_config_for("QJ", channel="AZI", overrides={"interval_seconds": 60}),
        qc_config_for("ZD", overrides={"interval_seconds": 60}),
    ]
    which = rng.integers(0, len(configs), n_sensors)
    installed = now - 86_400 * 30.0
    series_t = now - 600 - np.arange(history, -1, -1) * 60.0 + rng.integers(0, 3, (n_sensors, history + 1))
    series_v = np.round(rng.normal(10, 2, (n_sensors, history + 1)), 2)
    series_v[rng.random(series_v.shape) < 0.01] = np.nan
    series_v[which == 2] = np.where(rng.random((int((which == 2).sum()), history + 1)) < 0.8, 0.0, 0.5)
    stored = [
        pack_flags(run_qc(series_t[i, :-1], series_v[i, :-1], configs[which[i]], now=now)) for i in range(n_sensors)
    ]
    ht, hv, hq = series_t[:, :-1].reshape(-1), series_v[:, :-1].reshape(-1), np.concatenate(stored)
    hseg = np.repeat(np.arange(n_sensors), history)

    def loop() -> tuple[np.ndarray, np.ndarray]:
        packed, agg = np.zeros(n_sensors, np.int32), np.zeros(n_sensors, np.uint8)
        for i in range(n_sensors):
            r = run_qc(
                series_t[i, -1:], series_v[i, -1:], configs[which[i]], now=now, installed_at=installed,
                history=QcHistory(series_t[i, :-1], series_v[i, :-1], stored[i]),
            )  # fmt: skip
            packed[i], agg[i] = pack_flags(r.flags)[0], r.aggregate[0]
        return packed, agg

    def vectorised() -> tuple[np.ndarray, np.ndarray]:
        r = run_qc_many(
            series_t[:, -1], series_v[:, -1], np.arange(n_sensors), configs, which, now=now,
            installed_at=np.full(n_sensors, installed), histories=QcHistories(ht, hv, hseg, hq),
        )  # fmt: skip
        return r.packed, r.aggregate

    t_loop, (p_loop, a_loop) = best_time(loop, repeat)
    t_many, (p_many, a_many) = best_time(vectorised, max(repeat, 5))
    same = bool((p_loop == p_many).all() and (a_loop == a_many).all())
    print(
        f"QC of one ingest batch: {n_sensors:,} sensors x 1 reading, {history} stored readings each, "
        f"{len(configs)} configs; best of {repeat} (loop) / {max(repeat, 5)} (run_qc_many)\n"
    )
    print("| method | ms per batch | sensors/s | same flags |")
    print("|---|---:|---:|---|")
    print(f"| run_qc per sensor + pack_flags | {t_loop * 1000:.1f} | {n_sensors / t_loop:,.0f} | reference |")
    print(f"| run_qc_many (one call) | {t_many * 1000:.1f} | {n_sensors / t_many:,.0f} | {'yes' if same else 'NO'} |")
    print(f"\nspeed-up {t_loop / t_many:.0f}x")


if __name__ == "__main__":
    sys.exit(main())
