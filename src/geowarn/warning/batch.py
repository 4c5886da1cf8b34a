"""Batch re-evaluation of rainfall rules over many sites at once (nightly runs, rule changes).

Each site's rain is a row of a regular (sites × steps) array of interval rainfall; every term is one
vectorised pass over the whole array, persistence is a sliding count along time and hysteresis
compares the last step with the relaxed thresholds where the site's previous level allows. The
result equals :func:`geowarn.warning.evaluate.evaluate_rule` on each site (tested), for rules whose
terms are trailing accumulations (``rain_1h`` … ``rain_72h``) or effective rainfall.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from geowarn.errors import InvalidInput
from geowarn.warning.ruleset import RAIN_HOURS, Condition, Rule, Term

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
Floats = npt.NDArray[np.float64]


def _tail_sums(x: Floats, width: int, tail: int, shift: int = 0) -> Floats:
    """Trailing sums over ``width`` steps ending at each of the last ``tail`` steps (minus ``shift``)."""
    n = x.shape[1]
    out = np.zeros((x.shape[0], tail), np.float64)
    for k in range(tail):
        end = n - tail + k + 1 - shift
        if end > 0:
            out[:, k] = x[:, max(0, end - width) : end].sum(axis=1)
    return out


def _series(term: Term, rain: Floats, step_ms: int, cache: dict[tuple[str, int, float], Floats], tail: int) -> Floats:
    """The term's series at the last ``tail`` steps only: one pass over the window per step needed."""
    key = (term.series, term.days, term.k)
    if key in cache and cache[key].shape[1] >= tail:
        return cache[key][:, -tail:]
    if term.series in RAIN_HOURS:
        out = _tail_sums(rain, max(1, RAIN_HOURS[term.series] * HOUR_MS // step_ms), tail)
    elif term.series == "rain_effective":
        per_day = max(1, DAY_MS // step_ms)
        out = _tail_sums(rain, per_day, tail)
        for i in range(1, term.days):
            out = out + (term.k**i) * _tail_sums(rain, per_day, tail, shift=i * per_day)
    else:
        raise InvalidInput(f"batch evaluation does not support series {term.series!r}",
                           message_zh=f"批量评估不支持序列 {term.series}")  # fmt: skip
    cache[key] = out
    return out


def _holds(cond: Condition, rain: Floats, step_ms: int, cache: dict[tuple[str, int, float], Floats],
           factor: float = 1.0, tail: int = 1) -> npt.NDArray[np.bool_]:  # fmt: skip
    """The condition over the last ``tail`` steps (sites × tail)."""

    def ok(t: Term) -> npt.NDArray[np.bool_]:
        values = _series(t, rain, step_ms, cache, tail)
        threshold = t.value if factor == 1.0 else t.relaxed(factor)
        return {">=": np.greater_equal, ">": np.greater, "<=": np.less_equal, "<": np.less}[t.op](values, threshold)

    parts = []
    if cond.all:
        parts.append(np.logical_and.reduce([ok(t) for t in cond.all]))
    if cond.any:
        parts.append(np.logical_or.reduce([ok(t) for t in cond.any]))
    return np.logical_and.reduce(parts)


def evaluate_regular(
    rule: Rule, rain: npt.ArrayLike, step_ms: int, previous: npt.ArrayLike | None = None
) -> npt.NDArray[np.uint8]:
    """Level of ``rule`` at the last step for every site (row) of ``rain``."""
    x = np.asarray(rain)
    if np.isnan(x).any():
        x = np.nan_to_num(x, nan=0.0)
    n_sites = x.shape[0]
    prev = np.zeros(n_sites, np.uint8) if previous is None else np.asarray(previous, np.uint8)
    p = rule.persistence
    # every series once, over the longest tail any level needs
    longest = max(p.for_ms // step_ms + 1 if p.for_ms else p.of, 1)
    cache: dict[tuple[str, int, float], Floats] = {}
    for _, cond in rule.by_level():
        for t in cond.terms():
            _series(t, x, step_ms, cache, longest)
    out = np.zeros(n_sites, np.uint8)
    for level, cond in rule.by_level():
        if p.for_ms:
            span = p.for_ms // step_ms + 1  # the reading at (now − D) and every one after it
            ok = _holds(cond, x, step_ms, cache, tail=span)
            persisted = ok.all(axis=1) if x.shape[1] >= span else np.zeros(n_sites, bool)
        else:
            persisted = _holds(cond, x, step_ms, cache, tail=p.of).sum(axis=1) >= p.count
        held = (prev >= int(level)) & _holds(cond, x, step_ms, cache, rule.hysteresis, tail=1)[:, 0]
        out = np.where((out == 0) & (persisted | held), np.uint8(int(level)), out)
    return out
