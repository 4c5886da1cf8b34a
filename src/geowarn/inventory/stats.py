"""Register statistics (隐患点统计): the headline figures of every ledger and their breakdowns.

A county work plan opens with them (seed 003): "地质灾害(隐患)点149处和房前屋后高陡边坡32处 … 滑坡81处,
崩塌66处,泥石流2处 … 按行政区划分 … 威胁4789人 … 财产7200多万元". So:

* **Categories.** Hazard sites (the seven types of DZ/T 0261-2014) and steep cut slopes
  (房前屋后高陡边坡) are reported separately, plus a combined figure.
* **Which sites count.** By default the *register* (在册): every site that is not written off
  (已核销) — registered, under treatment, treated and relocated sites still appear in the ledger
  until their write-off. ``active`` gives the narrower figure of registered and under-treatment
  sites (those warnings still go to), and ``not_counted`` what the chosen statuses leave out.
* **Property** is summed in whole yuan and shown in 万元 as an exact ``Decimal``.

``summarize`` is the pure core (numpy arrays in, dataclasses out; one row per site, or one row per
cell of a pre-aggregated cube with ``sites`` giving each cell's count). ``compute_stats`` is the
storage adapter: down to township level it reads the maintained ``register_summary`` table
(:mod:`geowarn.inventory.summary`), reduced by the database to two small cubes; below township
level it runs one ``GROUP BY`` over ``hazard_site``. Marginals come from numpy, with the labels
turned into small integer codes once. ``render_stats`` draws the result for the CLI.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt
from rich.console import Group as RichGroup
from rich.table import Table
from sqlalchemy import BigInteger, Executable, case, cast, func, literal_column, select
from sqlalchemy.orm import Session

from geowarn.admin.codes import is_valid_code, level_of
from geowarn.admin.models import AdminUnit
from geowarn.auth.scope import unit_filter
from geowarn.inventory.domain import (
    ACTIVE_STATUSES,
    HAZARD_TYPE_ZH,
    MONITORING_MODE_ZH,
    SCALE_ZH,
    SITE_STATUS_ZH,
    HazardType,
    MonitoringMode,
    Scale,
    SiteStatus,
)
from geowarn.inventory.models import HazardSite
from geowarn.inventory.summary import TOWNSHIP_DIGITS, RegisterSummary

__all__ = [
    "DIMENSIONS",
    "REGISTER_STATUSES",
    "CategoryStats",
    "Group",
    "RegisterStats",
    "Totals",
    "compute_stats",
    "render_stats",
    "summarize",
]

#: The register (在册): every status but written off.
REGISTER_STATUSES: frozenset[SiteStatus] = frozenset(SiteStatus) - {SiteStatus.WRITTEN_OFF}
#: The breakdowns, in the order ledgers print them.
DIMENSIONS = ("township", "hazard_type", "scale", "status", "monitoring_mode")
UNKNOWN = "unknown"
STEEP = HazardType.STEEP_CUT_SLOPE.value

_ORDER: dict[str, list[str]] = {
    "hazard_type": [t.value for t in HazardType],
    "scale": [s.value for s in Scale],
    "status": [s.value for s in SiteStatus],
    "monitoring_mode": [m.value for m in MonitoringMode],
}
_LABELS: dict[str, Mapping[Any, str]] = {
    "hazard_type": HAZARD_TYPE_ZH,
    "scale": SCALE_ZH,
    "status": SITE_STATUS_ZH,
    "monitoring_mode": MONITORING_MODE_ZH,
}
CATEGORY_ZH = {"hazard_sites": "地质灾害隐患点", "steep_slopes": "房前屋后高陡边坡", "combined": "合计"}
DIMENSION_ZH = {
    "township": "乡镇（街道）",
    "hazard_type": "灾种",
    "scale": "规模等级",
    "status": "状态",
    "monitoring_mode": "监测方式",
}


@dataclass(frozen=True, slots=True)
class Totals:
    """Sites with the threatened households, people and property (whole yuan) they stand for."""

    sites: int = 0
    households: int = 0
    people: int = 0
    property_yuan: int = 0

    @property
    def property_wan(self) -> Decimal:
        """Property in 万元 (10,000 yuan), exact."""
        return Decimal(self.property_yuan).scaleb(-4)

    def as_dict(self) -> dict[str, Any]:
        return {
            "sites": self.sites,
            "households": self.households,
            "people": self.people,
            "property_yuan": self.property_yuan,
            "property_wan": _plain_decimal(self.property_wan),
        }


@dataclass(frozen=True, slots=True)
class Group:
    """One row of a breakdown: the value of the dimension and its totals."""

    key: str
    totals: Totals


@dataclass(frozen=True, slots=True)
class CategoryStats:
    """Figures of one category (hazard sites, steep slopes, or both) within the counted statuses."""

    totals: Totals
    active: Totals
    not_counted: Totals
    by_township: tuple[Group, ...]
    by_hazard_type: tuple[Group, ...]
    by_scale: tuple[Group, ...]
    by_status: tuple[Group, ...]
    by_monitoring_mode: tuple[Group, ...]

    def breakdown(self, dimension: str) -> tuple[Group, ...]:
        return tuple(getattr(self, f"by_{dimension}"))

    def group(self, dimension: str, key: str) -> Totals:
        """Totals of one value of a dimension (zero when absent)."""
        return next((g.totals for g in self.breakdown(dimension) if g.key == key), Totals())


@dataclass(frozen=True, slots=True)
class RegisterStats:
    counted_statuses: tuple[str, ...]
    hazard_sites: CategoryStats
    steep_slopes: CategoryStats
    combined: CategoryStats


def _plain_decimal(d: Decimal) -> str:
    return format(d.normalize(), "f") if d else "0"


def _factorize(arr: npt.ArrayLike, n: int | None = None) -> tuple[npt.NDArray[np.intp], list[str]]:
    """Small-integer codes of the values and the label of each code (missing values: ``"unknown"``).

    Hashing each distinct value once and mapping the rest through a dict is much faster than
    numpy's string arrays (``astype(str)``, ``np.unique`` sorts) on tens of thousands of cells.
    """
    raw = list(arr) if isinstance(arr, list | tuple) else np.asarray(arr, dtype=object).reshape(-1).tolist()
    if n is not None and len(raw) != n:
        raise ValueError(f"every input needs {n} values, one has {len(raw)}")
    labels: dict[str, int] = {}
    code_of: dict[Any, int] = {}
    for value in dict.fromkeys(raw):
        label = UNKNOWN if value is None or str(value) == "" else str(value)
        code_of[value] = labels.setdefault(label, len(labels))
    codes = np.fromiter(map(code_of.__getitem__, raw), dtype=np.intp, count=len(raw))
    return codes, list(labels)


def _ints(arr: npt.ArrayLike | None, n: int) -> npt.NDArray[np.int64]:
    if arr is None:
        return np.ones(n, np.int64)
    out = np.asarray(arr, dtype=np.int64).reshape(-1)
    if len(out) != n:
        raise ValueError(f"every input needs {n} values, one has {len(out)}")
    return out


def _totals(mask: npt.NDArray[np.bool_], values: npt.NDArray[np.int64]) -> Totals:
    s = values[mask].sum(axis=0) if mask.any() else np.zeros(4, np.int64)
    return Totals(int(s[0]), int(s[1]), int(s[2]), int(s[3]))


def _sort_key(dimension: str, key: str) -> tuple[int, str]:
    order = _ORDER.get(dimension)
    if order is None:
        return (0, key)
    return (order.index(key), key) if key in order else (len(order), key)


def _grouped_sums(
    keys: npt.NDArray[np.intp], values: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.int64]]:
    """Distinct keys and the sums of their rows: sort, then ``add.reduceat`` (integer sums stay exact)."""
    order = np.argsort(keys, kind="stable")
    ks = keys[order]
    starts = np.flatnonzero(np.concatenate(([True], ks[1:] != ks[:-1])))
    return ks[starts], np.add.reduceat(values[order], starts, axis=0)


def _make_groups(
    dimension: str, labels: list[str], codes: npt.NDArray[np.intp], sums: npt.NDArray[np.int64]
) -> tuple[Group, ...]:
    groups = [Group(labels[k], Totals(*row)) for k, row in zip(codes.tolist(), sums.tolist(), strict=True)]
    return tuple(sorted(groups, key=lambda g: _sort_key(dimension, g.key)))


def _breakdowns(
    dimension: str,
    codes: npt.NDArray[np.intp],
    labels: list[str],
    counted: npt.NDArray[np.bool_],
    steep: npt.NDArray[np.bool_],
    values: npt.NDArray[np.int64],
) -> dict[str, tuple[Group, ...]]:
    """One dimension's breakdown for hazard sites, steep slopes and both, from one grouping.

    Only values that occur among the counted rows appear (a group can be all zeros).
    """
    if not counted.any():
        return {"hazard_sites": (), "steep_slopes": (), "combined": ()}
    keys, sums = _grouped_sums(codes[counted] * 2 + steep[counted], values[counted])
    code, is_steep = keys // 2, (keys % 2).astype(bool)
    combined = np.zeros((len(labels), values.shape[1]), np.int64)
    seen = np.zeros(len(labels), bool)
    for part in (~is_steep, is_steep):  # a code appears at most once in each part
        combined[code[part]] += sums[part]
        seen[code[part]] = True
    return {
        "hazard_sites": _make_groups(dimension, labels, code[~is_steep], sums[~is_steep]),
        "steep_slopes": _make_groups(dimension, labels, code[is_steep], sums[is_steep]),
        "combined": _make_groups(dimension, labels, np.flatnonzero(seen), combined[seen]),
    }


def _label_mask(codes: npt.NDArray[np.intp], labels: list[str], wanted: Iterable[str]) -> npt.NDArray[np.bool_]:
    """Which values carry one of the ``wanted`` labels (decided once per label, not per value)."""
    keep = set(wanted)
    return np.array([label in keep for label in labels], dtype=bool)[codes] if labels else np.zeros(0, bool)


def summarize(
    township: npt.ArrayLike,
    hazard_type: npt.ArrayLike,
    scale: npt.ArrayLike,
    status: npt.ArrayLike,
    mode: npt.ArrayLike,
    households: npt.ArrayLike,
    people: npt.ArrayLike,
    property_yuan: npt.ArrayLike,
    *,
    sites: npt.ArrayLike | None = None,
    counted_statuses: Iterable[str] = REGISTER_STATUSES,
) -> RegisterStats:
    """Totals and breakdowns of a set of sites.

    Each argument has one value per site, or per cell of a cube when ``sites`` gives the number of
    sites of each cell (then ``households``… are the cell sums). Missing labels count as
    ``"unknown"``. Only sites whose status is in ``counted_statuses`` (default: the register, every
    status but written off) enter the totals and breakdowns.
    """
    town = _factorize(township)
    n = len(town[0])
    dims = {
        "township": town,
        "hazard_type": _factorize(hazard_type, n),
        "scale": _factorize(scale, n),
        "status": _factorize(status, n),
        "monitoring_mode": _factorize(mode, n),
    }
    values = np.stack([_ints(sites, n), _ints(households, n), _ints(people, n), _ints(property_yuan, n)], axis=1)
    counted = tuple(s for s in _ORDER["status"] if s in {str(c) for c in counted_statuses})
    in_count = _label_mask(*dims["status"], counted)
    active = _label_mask(*dims["status"], [s.value for s in ACTIVE_STATUSES])
    steep = _label_mask(*dims["hazard_type"], [STEEP])
    by = {d: _breakdowns(d, *dims[d], in_count, steep, values) for d in DIMENSIONS}

    def category(name: str, member: npt.NDArray[np.bool_]) -> CategoryStats:
        return CategoryStats(
            totals=_totals(member & in_count, values),
            active=_totals(member & active, values),
            not_counted=_totals(member & ~in_count, values),
            by_township=by["township"][name],
            by_hazard_type=by["hazard_type"][name],
            by_scale=by["scale"][name],
            by_status=by["status"][name],
            by_monitoring_mode=by["monitoring_mode"][name],
        )

    return RegisterStats(
        counted_statuses=counted,
        hazard_sites=category("hazard_sites", ~steep),
        steep_slopes=category("steep_slopes", steep),
        combined=category("combined", np.ones(n, dtype=bool)),
    )


# --------------------------------------------------------------------------- storage adapter


def _cube(session: Session, scope_unit: str) -> list[Any]:
    """One scan: the sites of the scope grouped by the five dimensions, with their sums."""
    s = HazardSite
    # Literal positions (no bound parameters) so that PostgreSQL sees the same expression in GROUP BY.
    township = func.coalesce(s.township_code, func.substr(s.unit_code, literal_column("1"), literal_column("9")))
    keys = (township, s.hazard_type, s.scale, s.status, s.monitoring_mode)
    stmt = (
        select(
            *keys,
            func.count(),
            func.sum(s.threatened_households),
            func.sum(s.threatened_people),
            func.sum(s.threatened_property_yuan),
        )
        .where(unit_filter(s.unit_code, scope_unit))
        .group_by(*keys)
    )
    return _fetch(session, stmt)


def _from_summary(session: Session, scope_unit: str) -> tuple[RegisterStats, list[str]]:
    """The statistics from ``register_summary``, through two small cubes instead of the full one.

    A province's full cube has tens of thousands of cells, mostly because of the township
    dimension, and fetching them costs more than everything else. Only ``by_township`` needs the
    township, and it needs no more than the township, steep-slope or not, and status. So the
    database reduces the summary to (township, steep, status) cells for ``by_township`` and to
    (type, scale, status, mode) cells for everything else; ``summarize`` runs on each and the
    breakdowns are put together. Same figures as the full cube.
    """
    r = RegisterSummary
    in_scope = unit_filter(r.scope_code, scope_unit)
    # Inlined constants (no bound parameters) so that PostgreSQL sees the same expression in GROUP BY.
    steep = case(
        (r.hazard_type == literal_column(f"'{STEEP}'"), literal_column(f"'{STEEP}'")), else_=literal_column("''")
    )
    sums = [cast(func.sum(c), BigInteger) for c in (r.sites, r.households, r.people, r.property_yuan)]
    towns = _fetch(
        session,
        select(r.township_code, steep, r.status, *sums).where(in_scope).group_by(r.township_code, steep, r.status),
    )
    labels = (r.hazard_type, r.scale, r.status, r.monitoring_mode)
    cells = _fetch(session, select(*labels, *sums).where(in_scope).group_by(*labels))
    t = list(zip(*towns, strict=True)) if towns else [()] * 7
    c = list(zip(*cells, strict=True)) if cells else [()] * 8
    blank: list[Any] = [None] * len(towns)
    nowhere: list[Any] = [None] * len(cells)
    by_town = summarize(t[0], t[1], blank, t[2], blank, t[4], t[5], t[6], sites=t[3])
    rest = summarize(nowhere, c[0], c[1], c[2], c[3], c[5], c[6], c[7], sites=c[4])

    def joined(name: str) -> CategoryStats:
        return replace(getattr(rest, name), by_township=getattr(by_town, name).by_township)

    stats = RegisterStats(
        counted_statuses=rest.counted_statuses,
        hazard_sites=joined("hazard_sites"),
        steep_slopes=joined("steep_slopes"),
        combined=joined("combined"),
    )
    return stats, [str(x) for x in t[0]]


def _fetch(session: Session, stmt: Executable) -> list[Any]:
    result = session.connection().execute(stmt)
    try:  # plain driver tuples: tens of thousands of cells on a province
        return list(result.cursor.fetchall())
    finally:
        result.close()


def _unit_names(session: Session, codes: Iterable[str]) -> dict[str, str]:
    wanted = sorted({c for c in codes if c and c != UNKNOWN})
    if not wanted:
        return {}
    rows = session.execute(select(AdminUnit.code, AdminUnit.name).where(AdminUnit.code.in_(wanted))).all()
    return {str(c): str(n) for c, n in rows}


def _group_dicts(dimension: str, groups: tuple[Group, ...], names: Mapping[str, str]) -> list[dict[str, Any]]:
    key_name = "township_code" if dimension == "township" else dimension
    out = []
    for g in groups:
        if dimension == "township":
            label = names.get(g.key, g.key)
        else:
            table = _LABELS[dimension]
            label = next((zh for code, zh in table.items() if str(code) == g.key), g.key)
        out.append({key_name: g.key, "label": label, **g.totals.as_dict()})
    return out


def _category_dict(name: str, c: CategoryStats, names: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"category": name, "label": CATEGORY_ZH[name], **c.totals.as_dict()}
    out["active"] = c.active.as_dict()
    out["not_counted"] = c.not_counted.as_dict()
    for d in DIMENSIONS:
        out[f"by_{d}"] = _group_dicts(d, c.breakdown(d), names)
    return out


def stats_to_dict(stats: RegisterStats, scope_unit: str, names: Mapping[str, str]) -> dict[str, Any]:
    """The JSON-ready form (English keys, Chinese ``label`` beside each code)."""
    level = level_of(scope_unit).value if is_valid_code(scope_unit) else None
    register = set(stats.counted_statuses) == {s.value for s in REGISTER_STATUSES}
    return {
        "scope": {"unit_code": scope_unit, "name": names.get(scope_unit), "level": level},
        "counted_statuses": list(stats.counted_statuses),
        "basis": "register: every site not written off" if register else "sites of the counted statuses",
        "basis_zh": "在册隐患点（不含已核销）" if register else "按所列状态统计",
        "hazard_sites": _category_dict("hazard_sites", stats.hazard_sites, names),
        "steep_slopes": _category_dict("steep_slopes", stats.steep_slopes, names),
        "combined": _category_dict("combined", stats.combined, names),
    }


def compute_stats(session: Session, scope_unit: str, *, use_summary: bool = True) -> dict[str, Any]:
    """Statistics of the register within ``scope_unit`` (its unit and every unit under it).

    Down to township level the figures come from the maintained ``register_summary``
    (:mod:`geowarn.inventory.summary`); below it, or with ``use_summary=False``, from one
    ``GROUP BY`` over ``hazard_site``. Both give the same result.
    """
    if use_summary and len(scope_unit) <= TOWNSHIP_DIGITS:
        stats, townships = _from_summary(session, scope_unit)
    else:
        rows = _cube(session, scope_unit)
        cols = list(zip(*rows, strict=True)) if rows else [()] * 9
        stats = summarize(
            cols[0],
            cols[1],
            cols[2],
            cols[3],
            cols[4],
            households=[int(v or 0) for v in cols[6]],
            people=[int(v or 0) for v in cols[7]],
            property_yuan=[int(v or 0) for v in cols[8]],
            sites=[int(v) for v in cols[5]],
        )
        townships = [str(t) for t in cols[0] if t is not None]
    names = _unit_names(session, [scope_unit, *townships])
    return stats_to_dict(stats, scope_unit, names)


# --------------------------------------------------------------------------- CLI rendering


def _number_columns(table: Table) -> None:
    for heading in ("处数", "受威胁户数", "受威胁人数", "威胁财产（万元）"):
        table.add_column(heading, justify="right")


def _cells(t: Mapping[str, Any]) -> list[str]:
    return [f"{t['sites']:,}", f"{t['households']:,}", f"{t['people']:,}", str(t["property_wan"])]


def render_stats(stats: dict[str, Any]) -> RichGroup:
    """Tables with Chinese headings for ``geowarn stats``."""
    scope = stats["scope"]
    title = f"{scope.get('name') or scope['unit_code']} 地质灾害隐患点统计（{stats['basis_zh']}）"
    overview = Table(title=title)
    overview.add_column("类别")
    _number_columns(overview)
    for key in ("hazard_sites", "steep_slopes", "combined"):
        overview.add_row(stats[key]["label"], *_cells(stats[key]))
    active = stats["combined"]["active"]
    overview.caption = (
        f"其中在册、治理中（预警对象）{active['sites']:,} 处，{active['people']:,} 人；"
        f"未计入（{'已核销' if 'written_off' not in stats['counted_statuses'] else '其他状态'}）"
        f"{stats['combined']['not_counted']['sites']:,} 处"
    )

    by_town = Table(title="按行政区划分")
    by_town.add_column(DIMENSION_ZH["township"])
    for heading in ("隐患点", "高陡边坡", "受威胁人数", "威胁财产（万元）"):
        by_town.add_column(heading, justify="right")
    slopes = {g["township_code"]: g for g in stats["steep_slopes"]["by_township"]}
    sites = {g["township_code"]: g for g in stats["hazard_sites"]["by_township"]}
    for row in stats["combined"]["by_township"]:
        code = row["township_code"]
        by_town.add_row(
            row["label"],
            str(sites.get(code, {}).get("sites", 0)),
            str(slopes.get(code, {}).get("sites", 0)),
            f"{row['people']:,}",
            str(row["property_wan"]),
        )

    tables: list[Table] = [overview, by_town]
    for dim in ("hazard_type", "scale", "status", "monitoring_mode"):
        t = Table(title=f"隐患点按{DIMENSION_ZH[dim]}")
        t.add_column(DIMENSION_ZH[dim])
        _number_columns(t)
        for g in stats["hazard_sites"][f"by_{dim}"]:
            t.add_row(g["label"], *_cells(g))
        tables.append(t)
    return RichGroup(*tables)
