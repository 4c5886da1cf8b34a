"""Warning rules as data: YAML defaults per hazard type, overrides per type and per site.

A rule raises one alert at a site. Its levels (blue … red) each have a condition: a combination
(``all`` / ``any``) of terms, a term being a derived series compared with a threshold, e.g.
``{series: rain_24h, op: ">=", value: 50}``. Deformation methods are series too: ``tangent_angle``
(degrees, bands 45/80/85) and ``rate_ratio`` (v / V0, bands 1/5/10), so every rule has the same
persistence ("for 30min", "3 of 5") and hysteresis (a level holds until its thresholds, relaxed by
``hysteresis``, no longer hold).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from geowarn.errors import InvalidInput
from geowarn.warning.levels import Level

SERIES = (
    "rain_1h", "rain_3h", "rain_6h", "rain_12h", "rain_24h", "rain_72h", "rain_event", "rain_effective",
    "rain_id_ratio", "disp_rate", "disp_change", "disp_accel", "tangent_angle", "rate_ratio", "value",
)  # fmt: skip
#: Displacement devices (crack meter, surface GNSS, deep displacement) and the channels combined into
#: one displacement; derived series of other sensor types read their channels as they are.
DISPLACEMENT_TYPES = {"LF": ("value",), "GP": ("gpsTotalX", "gpsTotalY"), "SW": ("dispsX", "dispsY")}
#: Readings flagged above this (3 suspect, 4 fail) are left out by default, by site rules and the regional model.
QC_MAX_FLAG = 2
RAIN_HOURS = {"rain_1h": 1, "rain_3h": 3, "rain_6h": 6, "rain_12h": 12, "rain_24h": 24, "rain_72h": 72}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|min|m|h|d)\s*$")
_UNIT_MS = {"s": 1000, "min": 60_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
DEFAULTS_PATH = Path(__file__).with_name("default_rules.yaml")


def duration_ms(text: str | int | float) -> int:
    """``"30min"``, ``"24h"``, ``"3d"`` or seconds as a number → milliseconds."""
    if isinstance(text, int | float):
        return int(text * 1000)
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"not a duration (e.g. 30min, 24h, 3d): {text!r}")
    return int(float(m.group(1)) * _UNIT_MS[m.group(2)])


class Term(BaseModel):
    """One comparison of a derived series with a threshold."""

    model_config = ConfigDict(extra="forbid")

    series: Literal[SERIES]  # type: ignore[valid-type]
    op: Literal[">=", ">", "<=", "<"] = ">="
    value: float
    sensor_type: str | None = None  # series "value" and derived series of that type (e.g. GROUNDWATER), or a
    # displacement type (LF, GP, SW) to pick those devices
    channel: str | None = None
    window: str | None = None  # disp_change / disp_accel window, e.g. "24h"
    smoothing: str = "6h"  # rate window for disp_* / tangent_angle / rate_ratio
    baseline: str = "30d"  # constant-velocity / quiet window for tangent_angle and rate_ratio
    recent: str = "3d"  # the baseline ends this long before the evaluation time
    v_eq: float | None = None  # mm/day; the constant-velocity rate when known (else estimated)
    min_rate: float = 0.05  # mm/day; floor of v_eq and V0 so a quiet slope does not divide by ~0
    k: float = Field(0.8, gt=0, lt=1)  # effective rainfall decay
    days: int = Field(3, ge=1, le=30)  # effective rainfall: today + days-1 antecedent days
    a: float = 14.82  # I–D threshold I = a·D^−b (mm/h, h); default Caine (1980)
    b: float = 0.39
    dry_gap_h: float = Field(6.0, gt=0)

    @field_validator("window", "smoothing", "baseline", "recent")
    @classmethod
    def _duration(cls, v: str | None) -> str | None:
        if v is not None:
            duration_ms(v)
        return v

    @model_validator(mode="after")
    def _needs(self) -> Term:
        if self.series == "value" and not self.sensor_type:
            raise ValueError("series 'value' needs sensor_type (and optionally channel)")
        if self.series in ("disp_change", "disp_accel") and not self.window:
            raise ValueError(f"series {self.series!r} needs a window, e.g. 24h")
        return self

    def reads_channel(self) -> bool:
        """Whether the term reads a sensor type's channel(s) as they are: series ``value``, or a derived
        series (change over a window, rate, acceleration, tangent angle, rate ratio) of a type that is
        not a displacement device (groundwater level, pore-water pressure, tilt, soil moisture…)."""
        return self.series == "value" or (
            not self.series.startswith("rain_")
            and self.sensor_type is not None
            and self.sensor_type not in DISPLACEMENT_TYPES
        )

    def relaxed(self, factor: float) -> float:
        """The threshold a level holds on to while coming down (hysteresis)."""
        return self.value * factor if self.op in (">=", ">") else self.value / factor

    def describe(self) -> str:
        return f"{self.series}{'(' + self.window + ')' if self.window else ''} {self.op} {self.value:g}"


class Condition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    all: list[Term] = Field(default_factory=list)
    any: list[Term] = Field(default_factory=list)

    @model_validator(mode="after")
    def _not_empty(self) -> Condition:
        if not self.all and not self.any:
            raise ValueError("a level needs at least one term under 'all' or 'any'")
        return self

    def terms(self) -> list[Term]:
        return [*self.all, *self.any]


class Persistence(BaseModel):
    """How long a condition must hold: ``for`` a duration, or ``count`` of the last ``of`` evaluations."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    for_: str | None = Field(None, alias="for")
    count: int = Field(1, ge=1)
    of: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _check(self) -> Persistence:
        if self.for_ is not None:
            duration_ms(self.for_)
        if self.count > self.of:
            raise ValueError("count must not exceed of")
        return self

    @property
    def for_ms(self) -> int:
        return duration_ms(self.for_) if self.for_ else 0


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9_\-]{1,64}$")
    name: str
    hazard_types: list[str] = Field(default_factory=lambda: ["*"])
    levels: dict[Literal["blue", "yellow", "orange", "red"], Condition]
    persistence: Persistence = Field(default_factory=lambda: Persistence.model_validate({}))
    hysteresis: float = Field(0.9, gt=0, le=1)
    qc_max_flag: int = Field(QC_MAX_FLAG, ge=1, le=4)  # readings flagged above this are ignored (3 suspect, 4 fail)
    disabled: bool = False
    source: str | None = None  # the standard or document the thresholds come from
    _by_level: list[tuple[Level, Condition]] | None = PrivateAttr(default=None)

    def by_level(self) -> list[tuple[Level, Condition]]:
        """Levels strongest first (computed once per rule)."""
        if self._by_level is None:
            self._by_level = sorted(((Level.parse(k), c) for k, c in self.levels.items()), key=lambda lc: -int(lc[0]))
        return self._by_level

    def needs(self) -> set[str]:
        """Kinds of data the rule reads: ``rain``, ``displacement`` or ``value``."""
        kinds = set()
        for _, cond in self.by_level():
            for t in cond.terms():
                kinds.add("rain" if t.series.startswith("rain_") else "value" if t.reads_channel() else "displacement")
        return kinds

    def applies_to(self, hazard_type: str) -> bool:
        return "*" in self.hazard_types or hazard_type in self.hazard_types


class RuleSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: list[Rule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> RuleSet:
        seen: set[str] = set()
        for r in self.rules:
            if r.id in seen:
                raise ValueError(f"rule id {r.id!r} appears twice")
            seen.add(r.id)
        return self


def _located(exc: ValidationError, where: str) -> InvalidInput:
    problems = []
    for e in exc.errors():
        path = ".".join(str(p) for p in e["loc"])
        problems.append(f"{path}: {e['msg']}")
    text = "; ".join(problems)
    return InvalidInput(
        f"{where}: invalid rules: {text}", message_zh=f"{where}：预警规则有误：{text}", problems=problems
    )


def parse_rules(doc: Any, where: str = "rules") -> RuleSet:
    """A rule set from a parsed YAML/JSON document; errors name the path of each bad field."""
    if isinstance(doc, list):
        doc = {"rules": doc}
    try:
        return RuleSet.model_validate(doc)
    except ValidationError as exc:
        raise _located(exc, where) from None


class _NoAliasLoader(yaml.SafeLoader):
    """Safe YAML without anchors and aliases: a few lines of aliases can stand for billions of nodes
    once the document is stored as JSON ("billion laughs"); rules never need them."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise yaml.YAMLError("aliases (*name) are not allowed in rules")
        return super().compose_node(parent, index)


def rules_document(text: str, where: str = "rules.yaml") -> Any:
    """A rules document from YAML text (JSON is YAML too); errors say where and in Chinese."""
    try:
        return yaml.load(text, Loader=_NoAliasLoader) or {}  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{where}: not YAML: {exc}", message_zh=f"{where}：不是有效的 YAML") from None


def load_rules_yaml(text: str, where: str = "rules.yaml") -> RuleSet:
    return parse_rules(rules_document(text, where), where)


@cache
def default_rules() -> RuleSet:
    """The package defaults (``default_rules.yaml``)."""
    return load_rules_yaml(DEFAULTS_PATH.read_text(encoding="utf-8"), DEFAULTS_PATH.name)


def merge(base: RuleSet, *overrides: RuleSet | None) -> RuleSet:
    """Later rule sets replace rules of the same id; ``disabled: true`` removes a rule."""
    rules: dict[str, Rule] = {r.id: r for r in base.rules}
    for layer in overrides:
        if layer is None:
            continue
        for r in layer.rules:
            rules[r.id] = r
    return RuleSet(rules=[r for r in rules.values() if not r.disabled])


def rules_for(hazard_type: str, *overrides: RuleSet | None) -> list[Rule]:
    """The rules that apply to a site of ``hazard_type`` after the overrides."""
    return [r for r in merge(default_rules(), *overrides).rules if r.applies_to(hazard_type)]
