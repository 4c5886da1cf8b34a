"""QC configuration: which tests run for a sensor and with what limits, from ``defaults.yaml``.

``defaults.yaml`` holds one block per national device-type code (LF, GP, SW, JS, QJ, ZD, YL, RAIN, …),
optionally with per-channel blocks (``channels: {AZI: {...}}``). A sensor's own settings are a dict merged
on top (nested keys merge; ``null`` switches a test off)::

    config = qc_config_for("GP", overrides={"flat_line": {"suspect_seconds": 7200}})
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from geowarn.errors import ConfigError, InvalidInput


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DepthDurationEnvelope(_Strict):
    """Rainfall depth limit for an interval from a depth-duration power law ``P = a * D_hours ** b``.

    The default (a = 422 mm, b = 0.475) is the envelope of world-record point rainfalls (Jennings 1950;
    WMO-No. 1045, 2009): a depth above it in any interval is physically implausible.
    """

    coefficient_mm: float = Field(gt=0)
    exponent: float = Field(gt=0, le=1)
    suspect_fraction: float = Field(gt=0, le=1)

    def limit_mm(self, interval_seconds: float) -> float:
        return float(self.coefficient_mm * (interval_seconds / 3600.0) ** self.exponent)


class GrossRangeConfig(_Strict):
    fail_span: tuple[float, float] | None = None
    suspect_span: tuple[float, float] | None = None
    envelope: DepthDurationEnvelope | None = None

    @model_validator(mode="after")
    def _spans(self) -> GrossRangeConfig:
        if self.fail_span is None and self.envelope is None:
            raise ValueError("gross_range needs fail_span or envelope")
        for span in (self.fail_span, self.suspect_span):
            if span is not None and span[0] > span[1]:
                raise ValueError(f"span {span} has its lower bound above its upper bound")
        fail, suspect = self.fail_span, self.suspect_span
        if fail and suspect and (suspect[0] < fail[0] or suspect[1] > fail[1]):
            raise ValueError("suspect_span must lie within fail_span")
        return self

    def spans(self, interval_seconds: float) -> tuple[tuple[float, float], tuple[float, float] | None]:
        """Fail and suspect spans; an envelope sets the upper bounds from the reporting interval."""
        if self.envelope is None:
            assert self.fail_span is not None  # the validator guarantees it
            return self.fail_span, self.suspect_span
        lower = self.fail_span[0] if self.fail_span else 0.0
        limit = self.envelope.limit_mm(interval_seconds)
        return (lower, limit), (lower, limit * self.envelope.suspect_fraction)


class SpikeConfig(_Strict):
    suspect_threshold: float = Field(gt=0)
    fail_threshold: float = Field(gt=0)

    @model_validator(mode="after")
    def _order(self) -> SpikeConfig:
        if self.fail_threshold < self.suspect_threshold:
            raise ValueError("spike fail_threshold is below suspect_threshold")
        return self


class RateOfChangeConfig(_Strict):
    threshold_per_s: float = Field(gt=0)


class FlatLineConfig(_Strict):
    suspect_seconds: float = Field(gt=0)
    fail_seconds: float = Field(gt=0)
    tolerance: float = Field(ge=0)
    exempt_values: tuple[float, ...] = ()

    @model_validator(mode="after")
    def _order(self) -> FlatLineConfig:
        if self.fail_seconds < self.suspect_seconds:
            raise ValueError("flat_line fail_seconds is below suspect_seconds")
        return self


class TimeGapConfig(_Strict):
    max_gap_seconds: float = Field(gt=0)


class TimestampConfig(_Strict):
    max_future_seconds: float = Field(ge=0)


class QcConfig(_Strict):
    """The QC settings of one sensor channel; a test set to ``None`` does not run."""

    sensor_type: str
    unit: str = ""
    interval_seconds: float = Field(gt=0, description="nominal reporting interval")
    timestamp: TimestampConfig | None = TimestampConfig(max_future_seconds=300)
    duplicate_and_order: bool = True
    time_gap: TimeGapConfig | None = None
    gross_range: GrossRangeConfig | None = None
    spike: SpikeConfig | None = None
    rate_of_change: RateOfChangeConfig | None = None
    flat_line: FlatLineConfig | None = None

    @property
    def history_seconds(self) -> float:
        """How far back the stored readings given as ``history`` to :func:`run_qc` should reach.

        The flat-line test needs its fail window; spike, rate of change, gaps and duplicates need only
        the readings just before (always pass at least the last two).
        """
        return self.flat_line.fail_seconds if self.flat_line else 0.0


def _deep_merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@lru_cache(maxsize=1)
def default_settings() -> dict[str, Any]:
    """The parsed ``defaults.yaml`` (cached; callers get copies through :func:`qc_config_for`)."""
    text = resources.files("geowarn.monitoring.qc").joinpath("defaults.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    if not isinstance(data, dict) or "sensor_types" not in data:
        raise ConfigError("defaults.yaml must have a 'sensor_types' mapping")
    return data


def qc_config_for(
    sensor_type: str,
    *,
    channel: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    settings: Mapping[str, Any] | None = None,
) -> QcConfig:
    """The QC config of a sensor: type defaults, then the channel block, then ``overrides``.

    ``settings`` replaces the packaged defaults (same layout as ``defaults.yaml``). Raises
    :class:`InvalidInput` for an unknown type or an override that does not validate.
    """
    data = settings if settings is not None else default_settings()
    common = dict(data.get("common", {}))
    types = data["sensor_types"]
    if sensor_type not in types:
        raise InvalidInput(
            f"no QC defaults for sensor type {sensor_type!r}", message_zh=f"未知的传感器类型：{sensor_type}"
        )
    block = dict(types[sensor_type] or {})
    channels = block.pop("channels", None) or {}
    merged = _deep_merge(common, block)
    if channel is not None and channel in channels:
        merged = _deep_merge(merged, channels[channel])
    if overrides:
        merged = _deep_merge(merged, overrides)
    merged["sensor_type"] = sensor_type
    try:
        return QcConfig.model_validate(merged)
    except ValidationError as exc:
        raise InvalidInput(
            f"invalid QC settings for {sensor_type}: {exc.errors(include_url=False)}",
            message_zh=f"{sensor_type} 的质控参数无效",
        ) from exc
