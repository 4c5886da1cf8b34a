"""One rainfall rule over many sites' gauge series at once (the streaming engine's batches).

:mod:`geowarn.warning.batch` needs regular series; a drain of the engine has each site's own
irregular readings and data time. Here the sites' tracks are laid end to end (ragged arrays with
offsets) and every term is evaluated for all sites in a few numpy calls: a binary search per row
(by shifting each row's times into a band of its own), prefix-sum differences of each track's own
prefix sums, the evaluation times right-aligned in a (sites × times) array with a mask. Each value
is computed with exactly the operations of :func:`geowarn.warning.evaluate.evaluate_rule` on the site
alone, so levels and reasons are identical (tested on random series); only the Python work per site
and term is gone.

Supported: rules whose rain terms are ``rain_1h`` … ``rain_72h``, ``rain_effective``, ``rain_event``
or ``rain_id_ratio``, at sites with one rain gauge, where the rule's other terms have no data at the
site (a rain-and-deformation rule at a site without displacement: those terms are NaN and never
hold). Anything else is evaluated site by site.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from geowarn.warning import rain
from geowarn.warning.engine import RuleOutcome
from geowarn.warning.evaluate import HOUR_MS, SiteData, Track, _compare, _tracks_for, eval_span_ms, rule_outcome
from geowarn.warning.levels import Level
from geowarn.warning.ruleset import RAIN_HOURS, Condition, Rule, Term

DAY_MS = 86_400_000
RAIN_SERIES = frozenset((*RAIN_HOURS, "rain_effective", "rain_event", "rain_id_ratio"))
Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]


@dataclass(slots=True)
class SiteCase:
    """One site's data for a rule: its grouped series, data time and the level open now."""

    data: SiteData
    now_ms: int
    previous: Level


def gauge_of(rule: Rule, data: SiteData) -> Track | None:
    """The site's one rain track when ``rule`` can be evaluated here with other sites, else None."""
    gauges = [t for t in data.rain if t.t.size]
    if len(gauges) != 1 or (gauges[0].t.size > 1 and not bool(np.all(np.diff(gauges[0].t) > 0))):
        return None
    for _, cond in rule.by_level():
        for term in cond.terms():
            if term.series not in RAIN_SERIES and any(t.t.size for t in _tracks_for(term, data)):
                return None
    return gauges[0]


class _Ragged:
    """The sites' tracks end to end: row r is ``t[start[r]:start[r+1]]``, its prefix sums
    ``csum[start[r] + r : start[r+1] + r + 1]`` (each track's own, as the per-site path uses)."""

    def __init__(self, tracks: list[Track]) -> None:
        sizes = np.array([tr.t.size for tr in tracks], np.int64)
        self.start = np.r_[0, np.cumsum(sizes)]
        self.rows = np.arange(len(tracks), dtype=np.int64)
        self.t = np.concatenate([tr.t for tr in tracks])
        self.v = np.concatenate([tr.v for tr in tracks])
        self.csum = np.concatenate([tr.csum() for tr in tracks])
        # row r's times move into a band of their own, r·band + (t − base); a search for a time
        # outside [base, max t + 1] gives what a search for the nearest end of that range gives
        self.base = int(self.t.min()) - 1
        self.band = int(self.t.max()) - self.base + 2
        self.key = (np.repeat(self.rows, sizes) * self.band) + (self.t - self.base)

    def search(self, q: Ints, side: str) -> Ints:
        """``np.searchsorted(row's times, q, side)`` for each row (q is rows × k), as row positions."""
        k = (self.rows[:, None] * self.band) + (np.clip(q, self.base, self.base + self.band - 1) - self.base)
        pos = np.searchsorted(self.key, k, side=side)  # type: ignore[call-overload]
        return np.asarray(pos - self.start[:-1, None], np.int64)

    def at(self, pos: Ints) -> Ints:
        return self.start[:-1, None] + pos

    def window_sums(self, q: Ints, window_ms: int) -> Floats:
        """``rain.window_sums`` for each row."""
        hi = self.search(q, "right")
        lo = self.search(q - window_ms, "right")
        off = self.start[:-1, None] + self.rows[:, None]
        return np.asarray(self.csum[off + hi] - self.csum[off + lo], np.float64)

    def event(self, q: Ints, dry_gap_h: float) -> tuple[Floats, Floats]:
        """``rain.event_rainfall`` for each row: rain and hours of the event in progress at ``q``."""
        gap = int(dry_gap_h * HOUR_MS)
        idx = np.arange(self.t.size, dtype=np.int64)
        wet = self.v > 0
        row_of = np.repeat(self.rows, self.start[1:] - self.start[:-1])
        # the last wet reading at or before each reading, within its own row
        last_wet = np.maximum.accumulate(np.where(wet, idx, -1))
        first = self.start[:-1][row_of]
        last_wet = np.where(last_wet >= first, last_wet, -1)
        prev_wet = np.r_[-1, last_wet[:-1]]
        prev_wet = np.where(prev_wet >= first, prev_wet, -1)
        new = wet & ((prev_wet < 0) | (self.t - self.t[np.maximum(prev_wet, 0)] >= gap))
        event_start = np.maximum.accumulate(np.where(new, idx, -1))
        hi = self.search(q, "right")
        lw = np.where(hi > 0, last_wet[np.maximum(self.at(hi) - 1, 0)], -1)
        ok = (lw >= 0) & (q - self.t[np.maximum(lw, 0)] < gap)
        start_t = self.t[event_start[np.maximum(lw, 0)]]
        lo = self.search(np.where(ok, start_t, q), "left")
        off = self.start[:-1, None] + self.rows[:, None]
        mm = np.where(ok, self.csum[off + hi] - self.csum[off + lo], 0.0)
        hours = np.where(ok, np.maximum((q - start_t) / HOUR_MS, 1.0), 0.0)
        return mm, hours


def _term_values(term: Term, r: _Ragged, q: Ints) -> Floats:
    """The term at every (site, evaluation time): as ``evaluate._series_values`` on each site alone."""
    s = term.series
    if s in RAIN_HOURS:
        return r.window_sums(q, RAIN_HOURS[s] * HOUR_MS)
    if s == "rain_effective":
        daily = np.stack([r.window_sums(q - i * DAY_MS, DAY_MS) for i in range(term.days)], axis=-1)
        return rain.effective_rainfall(daily, term.k)
    if s == "rain_event":
        return r.event(q, term.dry_gap_h)[0]
    if s == "rain_id_ratio":
        mm, hours = r.event(q, term.dry_gap_h)
        return np.ascontiguousarray(rain.id_ratio(mm, hours, term.a, term.b))
    return np.full(q.shape, np.nan)  # no data for this term at these sites


def _eval_times(rule: Rule, tracks: list[Track], now: Ints) -> tuple[Ints, npt.NDArray[np.bool_]]:
    """``evaluate._eval_times`` per site, right-aligned in rows (padding repeats the first time)."""
    span = eval_span_ms(rule)
    rows = []
    for tr, n in zip(tracks, now.tolist(), strict=True):
        lo = int(np.searchsorted(tr.t, n - span, side="right"))
        hi = int(np.searchsorted(tr.t, n, side="right"))
        if rule.persistence.for_ms == 0:
            lo = max(lo, hi - (rule.persistence.of + 1))
        times = tr.t[lo:hi]
        rows.append(times if times.size and times[-1] == n else np.r_[times, n])
    width = max(len(x) for x in rows)
    q = np.empty((len(rows), width), np.int64)
    valid = np.zeros((len(rows), width), bool)
    for i, x in enumerate(rows):
        q[i, width - len(x) :] = x
        q[i, : width - len(x)] = x[0]
        valid[i, width - len(x) :] = True
    return q, valid


def _holds(cond: Condition, values: dict[int, Floats], factor: float = 1.0) -> npt.NDArray[np.bool_]:
    def ok(t: Term) -> npt.NDArray[np.bool_]:
        return _compare(values[id(t)], t.op, t.value if factor == 1.0 else t.relaxed(factor))

    out = np.logical_and.reduce([ok(t) for t in cond.all]) if cond.all else None
    if cond.any:
        anyv = np.logical_or.reduce([ok(t) for t in cond.any])
        out = anyv if out is None else out & anyv
    assert out is not None
    return np.asarray(out)


def _persisted(
    rule: Rule, ok: npt.NDArray[np.bool_], q: Ints, valid: npt.NDArray[np.bool_], now: Ints
) -> npt.NDArray[np.bool_]:
    """``evaluate._persisted`` per row."""
    p = rule.persistence
    ok = ok & valid
    if p.for_ms > 0:
        before = valid & (q <= (now - p.for_ms)[:, None])
        cols = np.arange(q.shape[1])
        last = np.where(before, cols, -1).max(axis=1)
        return np.asarray((last >= 0) & (ok | (cols < last[:, None])).all(axis=1))
    return np.asarray(ok[:, -p.of :].sum(axis=1) >= p.count)


def evaluate_rule_many(rule: Rule, cases: list[SiteCase], gauges: list[Track]) -> list[RuleOutcome]:
    """``evaluate_rule(rule, case.data, case.now_ms, case.previous)`` for every case, at once."""
    now = np.array([c.now_ms for c in cases], np.int64)
    previous = np.array([int(c.previous) for c in cases], np.int64)
    q, valid = _eval_times(rule, gauges, now)
    ragged = _Ragged(gauges)
    rule_terms = [t for _, c in rule.by_level() for t in c.terms()]
    values = {id(t): _term_values(t, ragged, q) for t in rule_terms}
    level = np.zeros(len(cases), np.int64)
    held = np.zeros(len(cases), bool)
    chosen = np.full(len(cases), -1, np.int64)
    for k, (lv, cond) in enumerate(rule.by_level()):
        free = chosen < 0
        persisted = free & _persisted(rule, _holds(cond, values), q, valid, now)
        keeps = free & ~persisted & (previous >= int(lv)) & _holds(cond, values, rule.hysteresis)[:, -1]
        hit = persisted | keeps
        level[hit], chosen[hit], held[keeps] = int(lv), k, True
    levels = rule.by_level()
    out = []
    for i, (case, gauge) in enumerate(zip(cases, gauges, strict=True)):
        now_v = {}
        for t in rule_terms:
            v = float(values[id(t)][i, -1])
            now_v[id(t)] = (v, gauge.label if t.series in RAIN_SERIES and not np.isnan(v) else None)
        shown = levels[chosen[i]][1] if chosen[i] >= 0 else None
        out.append(rule_outcome(rule, case.data, case.now_ms, Level(int(level[i])), bool(held[i]), shown, now_v))
    return out
