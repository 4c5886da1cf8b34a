"""The explicit statistical model (显式统计模型): effective rainfall against thresholds per susceptibility grade.

* Effective rainfall of a cell (有效降雨量): ``R_e = R_0 + R_a`` with the antecedent rainfall
  ``R_a = Σ_{i=1..n} k^i · R_i`` (Crozier & Eyles 1980, *Assessing the probability of rapid mass
  movement*; Glade et al. 2000, *Pure Appl. Geophys.* 157), where ``R_0`` is the rain of the warning
  period — today's observed rain plus the forecast for the rest of it (:func:`warning_period_rain`),
  or the next 24 hours' forecast alone — and ``R_i`` the observed daily rain i days before.
  ``k`` ≈ 0.8; Fujian uses three antecedent days with k = 0.79 (:data:`FUJIAN`).
* Thresholds (临界雨量) per susceptibility grade: the county example 50 / 70 / 110 / 160 mm a day
  for levels 4 / 3 / 2 / 1 (blue / yellow / orange / red) is the default for high susceptibility.
  Less susceptible ground needs more rain for the same level: medium ×1.25, low ×1.6 by default
  (:data:`DEFAULT_FACTORS`), so low ground reaches blue at 80 mm — about the yellow threshold of high
  ground, one level down as in the susceptibility × rainfall matrices of provincial practice;
  not-susceptible ground is not warned. Calibrate the factors, or give every grade its own row,
  from the county's record of events and rain.
* A cell's level is the highest whose threshold its effective rainfall reaches (``R_e ≥ t``);
  a cell with unknown rain is level 0 and counted as missing.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import yaml

from geowarn.errors import GridRejected, InvalidInput
from geowarn.regional.grid import Grid, require_aligned
from geowarn.regional.susceptibility import (  # re-exported: callers import them from here
    GRADE_LABELS,
    GRADE_NAMES,
    GRADES,
    HIGH,
    LOW,
    MEDIUM,
    NONE,
    Zoning,
    grades_on,
    parse_grade,
    susceptibility_from_geojson,
    susceptibility_from_polygons,
)

__all__ = [
    "COUNTY_EXAMPLE_MM", "DEFAULT_FACTORS", "FUJIAN", "GRADE_NAMES", "HIGH", "LOW", "MEDIUM", "NONE",
    "ModelConfig", "ThresholdTable", "Zoning", "effective_rainfall", "level_grid", "susceptibility_from_geojson",
    "susceptibility_from_polygons", "warning_levels", "warning_period_rain",
]  # fmt: skip

Thresholds = tuple[float, float, float, float]
COUNTY_EXAMPLE_MM: Thresholds = (50.0, 70.0, 110.0, 160.0)  # blue, yellow, orange, red (seed 003)
DEFAULT_FACTORS: dict[int, float] = {MEDIUM: 1.25, LOW: 1.6}


def _bad(what: str, zh: str) -> InvalidInput:
    return InvalidInput(f"thresholds: {what}", message_zh=f"阈值表：{zh}")


def _row(name: str, values: Any) -> Thresholds:
    try:
        vals = [float(v) for v in values]
    except (TypeError, ValueError):
        raise _bad(f"{name}: need four numbers, got {values!r}", f"{name} 须为4个数") from None
    if (
        len(vals) != 4
        or vals[0] <= 0
        or any(b <= a for a, b in itertools.pairwise(vals))
        or not np.isfinite(vals).all()
    ):
        raise _bad(f"{name}: need four increasing positive values (blue, yellow, orange, red), got {values}",
                   f"{name} 须为4个递增的正数（蓝、黄、橙、红）")  # fmt: skip
    return (vals[0], vals[1], vals[2], vals[3])


@dataclass(slots=True)
class ThresholdTable:
    """Effective-rainfall thresholds (mm) for levels 1-4 (blue → red) per susceptibility grade; a
    grade absent from the table is never warned."""

    by_grade: dict[int, Thresholds] = field(default_factory=lambda: ThresholdTable.scaled().by_grade)

    @classmethod
    def scaled(
        cls, base: Sequence[float] = COUNTY_EXAMPLE_MM, factors: Mapping[int, float] | None = None
    ) -> ThresholdTable:
        """``base`` for high susceptibility and ``base × factor`` for the grades in ``factors``."""
        high = _row("high", base)
        table = {HIGH: high}
        for grade, f in (DEFAULT_FACTORS if factors is None else factors).items():
            if not f > 0:
                raise _bad(f"factor {f} for grade {grade} must be positive", "系数须为正数")
            # rounded to a µm so that 1.6 × 70 is 112, not 112.00000000000001
            table[int(grade)] = (
                round(high[0] * f, 6),
                round(high[1] * f, 6),
                round(high[2] * f, 6),
                round(high[3] * f, 6),
            )
        return cls(table)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> ThresholdTable:
        """Either rows per grade — ``{"high": [50, 70, 110, 160], "medium": [...], ...}`` (names in
        English or Chinese, or 0-3); grades left out follow from "high" by the default factors — or a
        base and factors: ``{"base": [50, 70, 110, 160], "factors": {"medium": 1.25, "low": 1.6}}``."""
        if not isinstance(doc, Mapping) or not doc:
            raise _bad("need a mapping of grades to four thresholds", "须为易发等级到4个阈值的映射")
        if "base" in doc or "factors" in doc:
            unknown = set(doc) - {"base", "factors"}
            if unknown:
                raise _bad(f"unexpected keys {sorted(unknown)} beside base/factors", "base/factors 之外有多余的键")
            factors = {}
            for name, f in (doc.get("factors") or {}).items():
                grade = parse_grade(name)
                if grade is None:
                    raise _bad(f"unknown susceptibility grade {name!r}", f"未知易发等级：{name}")
                try:
                    factors[grade] = float(f)
                except (TypeError, ValueError):
                    raise _bad(f"factor of {name} is not a number", f"{name} 的系数不是数字") from None
            return cls.scaled(doc.get("base", COUNTY_EXAMPLE_MM), factors)
        table: dict[int, Thresholds] = {}
        for name, values in doc.items():
            grade = parse_grade(name)
            if grade is None:
                raise _bad(f"unknown susceptibility grade {name!r}", f"未知易发等级：{name}")
            table[grade] = _row(str(name), values)
        if HIGH in table:
            for grade, row in cls.scaled(table[HIGH]).by_grade.items():
                table.setdefault(grade, row)
        return cls(table)

    def to_dict(self) -> dict[str, list[float]]:
        return {GRADE_LABELS[g]: list(v) for g, v in sorted(self.by_grade.items(), reverse=True)}

    def lookup(self, dtype: npt.DTypeLike = np.float64) -> npt.NDArray[np.floating[Any]]:
        """Thresholds as a (4 grades × 4 levels) array; +inf for a grade that is never warned."""
        out = np.full((len(GRADES), 4), np.inf, dtype)
        for grade, row in self.by_grade.items():
            out[grade] = row
        return out


@dataclass(slots=True)
class ModelConfig:
    """Everything the model needs besides the grids; loadable from YAML::

    k: 0.79
    antecedent_days: 3
    thresholds: {high: [50, 70, 110, 160], medium: [62.5, 87.5, 137.5, 200], low: [80, 112, 176, 256]}
    """

    thresholds: ThresholdTable = field(default_factory=ThresholdTable)
    k: float = 0.8
    antecedent_days: int | None = None  # None: every antecedent day given

    def __post_init__(self) -> None:
        if not 0 < self.k <= 1:
            raise InvalidInput(f"decay k = {self.k} must be in (0, 1]", message_zh="衰减系数k须在0到1之间")
        if self.antecedent_days is not None and self.antecedent_days < 0:
            raise InvalidInput("antecedent_days must be >= 0", message_zh="前期降雨天数须不小于0")

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> ModelConfig:
        unknown = set(doc) - {"k", "antecedent_days", "thresholds"}
        if unknown:
            raise InvalidInput(f"model config: unknown keys {sorted(unknown)}", message_zh="模型配置含未知的键")
        table = ThresholdTable.from_dict(doc["thresholds"]) if "thresholds" in doc else ThresholdTable()
        days = doc.get("antecedent_days")
        try:
            return cls(table, float(doc.get("k", 0.8)), None if days is None else int(days))
        except (TypeError, ValueError):
            raise InvalidInput(
                "model config: k and antecedent_days must be numbers", message_zh="模型配置的k与天数须为数字"
            ) from None

    @classmethod
    def from_yaml(cls, source: str | Path) -> ModelConfig:
        """From a YAML file path or YAML text."""
        text = source.read_text("utf-8") if isinstance(source, Path) else source
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidInput(f"model config: not YAML: {exc}", message_zh="模型配置不是有效的 YAML") from None
        if not isinstance(doc, dict):
            raise InvalidInput("model config: need a mapping", message_zh="模型配置须为键值映射")
        return cls.from_dict(doc)

    def to_dict(self) -> dict[str, Any]:
        return {"k": self.k, "antecedent_days": self.antecedent_days, "thresholds": self.thresholds.to_dict()}


FUJIAN = ModelConfig(k=0.79, antecedent_days=3)


def warning_period_rain(observed: Grid, forecast: Grid) -> Grid:
    """R_0: rain observed so far in the warning period plus the forecast for the rest of it. Where one
    is missing the other stands alone (the observed part is a lower bound); missing in both is NaN."""
    require_aligned([observed, forecast], "warning-period rain")
    a, b = observed.values, forecast.values
    total = np.where(np.isnan(a), b, np.where(np.isnan(b), a, a + b))
    return observed.with_values(total, source=f"{observed.label} + {forecast.label}")


def effective_rainfall(days: Sequence[Grid], k: float = 0.8, antecedent_days: int | None = None) -> Grid:
    """``R_0 + Σ_{i=1..n} k^i R_i`` over aligned daily grids; ``days[0]`` is R_0, ``days[i]`` the i-th
    day before; ``n`` is every day given or ``antecedent_days``. A missing antecedent cell counts 0; a
    missing R_0 leaves the cell unknown (NaN)."""
    if not days:
        raise GridRejected("no rainfall grid", message_zh="缺少降雨栅格")
    if not 0 < k <= 1:
        raise InvalidInput(f"decay k = {k} must be in (0, 1]", message_zh="衰减系数k须在0到1之间")
    days = list(days)
    require_aligned(days, "rainfall")
    n = len(days) - 1 if antecedent_days is None else min(len(days) - 1, antecedent_days)
    total = np.array(days[0].values, dtype=np.result_type(days[0].values.dtype, np.float32), copy=True)
    for i in range(1, n + 1):
        day = days[i].values
        np.add(total, (k**i) * day, out=total, where=~np.isnan(day))
    return days[0].with_values(total, source="effective rainfall")


def warning_levels(
    rain: npt.NDArray[np.floating[Any]], grades: npt.NDArray[np.uint8] | None, table: ThresholdTable
) -> npt.NDArray[np.uint8]:
    """Level 0-4 of every cell from its effective rainfall and susceptibility grade (None: all high)."""
    lut = table.lookup(rain.dtype if rain.dtype == np.float32 else np.float64)  # compare in the rain's precision
    out = np.zeros(rain.shape, np.uint8)
    with np.errstate(invalid="ignore"):  # NaN rain compares False: level 0
        for level in range(4):
            limit = lut[HIGH, level] if grades is None else lut[:, level][grades]
            out += rain >= limit
    return out


def level_grid(effective: Grid, susceptibility: Grid | Zoning | None, table: ThresholdTable) -> npt.NDArray[np.uint8]:
    """Levels of ``effective``'s cells; ``susceptibility`` as a grades raster (resampled if it is on
    other cells) or polygons; without it every cell counts as highly susceptible."""
    grades = None if susceptibility is None else grades_on(effective, susceptibility)
    return warning_levels(effective.values, grades, table)
