"""Vocabulary and pure rules of community monitoring (群测群防), with the Chinese terms users see.

No I/O here except reading the package's checklist YAML once. Sources: seed 003 (县年度地质灾害防治
方案: 汛前排查、汛中巡查、汛后核查; 每日零报告, twice a day during a response; 10 % write-offs a year),
《地质灾害群测群防体系建设指南》 for the patrol checklists.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from geowarn.errors import ConfigError, InvalidInput
from geowarn.inventory.domain import HazardType

CHINA = dt.timezone(dt.timedelta(hours=8))
EARTH_RADIUS_M = 6_371_008.8  # IUGG mean radius


class PatrolKind(StrEnum):
    PRE_SEASON = "pre_season"  # 汛前排查
    IN_SEASON = "in_season"  # 汛中巡查
    POST_SEASON = "post_season"  # 汛后核查
    WARNING_CHECK = "warning_check"  # 预警响应巡查 (ordered by an alert or a regional product)


PATROL_KIND_ZH: dict[PatrolKind, str] = {
    PatrolKind.PRE_SEASON: "汛前排查",
    PatrolKind.IN_SEASON: "汛中巡查",
    PatrolKind.POST_SEASON: "汛后核查",
    PatrolKind.WARNING_CHECK: "预警响应巡查",
}


class PatrolResult(StrEnum):
    NORMAL = "normal"  # 未见异常
    ABNORMAL = "abnormal"  # 发现异常


class EventKind(StrEnum):
    DISASTER = "disaster"  # 灾情: it happened
    DANGER = "danger"  # 险情: it threatens


EVENT_KIND_ZH = {EventKind.DISASTER: "灾情", EventKind.DANGER: "险情"}


class WriteOffBasis(StrEnum):
    TREATMENT = "treatment"  # 工程治理竣工
    RELOCATION = "relocation"  # 避险搬迁完成


WRITE_OFF_BASIS_ZH = {WriteOffBasis.TREATMENT: "工程治理竣工", WriteOffBasis.RELOCATION: "避险搬迁完成"}


@dataclass(frozen=True, slots=True)
class ChecklistItem:
    key: str
    zh: str


@lru_cache(maxsize=1)
def checklists() -> dict[HazardType, tuple[ChecklistItem, ...]]:
    """The patrol checklist of every hazard type, from ``checklists.yaml`` in this package."""
    text = resources.files("geowarn.fieldwork").joinpath("checklists.yaml").read_text(encoding="utf-8")
    doc: dict[str, Any] = yaml.safe_load(text)
    groups = {name: [ChecklistItem(**i) for i in items] for name, items in doc["groups"].items()}
    out: dict[HazardType, tuple[ChecklistItem, ...]] = {}
    for hazard_type in HazardType:
        spec = doc["types"].get(hazard_type.value)
        if spec is None:
            raise ConfigError(f"checklists.yaml has no checklist for {hazard_type.value}")
        items = [i for g in spec.get("groups", []) for i in groups[g]]
        items += [ChecklistItem(**i) for i in spec.get("items", [])]
        seen: dict[str, ChecklistItem] = {}
        for item in items:
            seen.setdefault(item.key, item)
        out[hazard_type] = tuple(seen.values())
    return out


def checklist_for(hazard_type: str) -> tuple[ChecklistItem, ...]:
    try:
        return checklists()[HazardType(hazard_type)]
    except ValueError:
        return checklists()[HazardType.UNSTABLE_SLOPE]


def check_answers(hazard_type: str, answers: dict[str, Any]) -> tuple[dict[str, bool], list[ChecklistItem]]:
    """Validate checklist answers for the site's type: known keys, booleans. Returns them and the signs seen."""
    items = {i.key: i for i in checklist_for(hazard_type)}
    unknown = sorted(set(answers) - set(items))
    if unknown:
        raise InvalidInput(
            f"checklist items not on the {hazard_type} checklist: {', '.join(unknown)}",
            message_zh=f"巡查清单中没有这些项目：{'、'.join(unknown)}",
        )
    clean: dict[str, bool] = {}
    for key, value in answers.items():
        if not isinstance(value, bool):
            raise InvalidInput(f"checklist item {key} must be true or false", message_zh=f"巡查项目“{key}”应为是或否")
        clean[key] = value
    return clean, [items[k] for k, v in clean.items() if v]


def assess(declared: PatrolResult, signs: list[ChecklistItem]) -> PatrolResult:
    """A patrol that saw any precursor is abnormal, whatever the monitor ticked as the result."""
    return PatrolResult.ABNORMAL if signs else declared


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance (haversine) in metres; plenty for "is the phone at the site"."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


# --- the flood season and the zero-report calendar ------------------------------------------------


def _month_day(text: str) -> tuple[int, int]:
    month, day = (int(p) for p in text.split("-"))
    dt.date(2024, month, day)  # raises for 02-30 and the like
    return month, day


def in_flood_season(day: dt.date, start: str, end: str) -> bool:
    """True when ``day`` lies in the season ``start``..``end`` (MM-DD, inclusive; may wrap the new year)."""
    try:
        lo, hi = _month_day(start), _month_day(end)
    except ValueError as exc:
        raise ConfigError(f"flood season {start}..{end}: {exc}") from None
    md = (day.month, day.day)
    return lo <= md <= hi if lo <= hi else (md >= lo or md <= hi)


def parse_deadlines(text: str) -> tuple[dt.time, ...]:
    """``"08:00,17:00"`` → times of day (China time), in order."""
    try:
        times = tuple(dt.time.fromisoformat(p.strip()) for p in text.split(",") if p.strip())
    except ValueError as exc:
        raise ConfigError(f"zero-report deadlines {text!r}: {exc}") from None
    if not times or list(times) != sorted(times):
        raise ConfigError(f"zero-report deadlines {text!r} must be ascending times of day")
    return times


@dataclass(frozen=True, slots=True)
class ZeroReportCalendar:
    """When townships must report: the season and the deadlines of a normal and a response day."""

    season_start: str = "04-01"
    season_end: str = "10-15"
    normal: tuple[dt.time, ...] = (dt.time(17, 0),)
    response: tuple[dt.time, ...] = (dt.time(8, 0), dt.time(17, 0))

    def deadlines(self, day: dt.date, elevated: bool) -> tuple[dt.datetime, ...]:
        """The deadlines of ``day`` (aware, China time); none outside the flood season."""
        if not in_flood_season(day, self.season_start, self.season_end):
            return ()
        times = self.response if elevated else self.normal
        return tuple(dt.datetime.combine(day, t, CHINA) for t in times)


def next_slot(deadlines: tuple[dt.datetime, ...], filled: set[int], at: dt.datetime) -> tuple[int, bool] | None:
    """The slot (1-based) a report sent at ``at`` fills, and whether it is late; None when all are filled.

    A report fills the first slot not yet filled, so a township that missed the morning report and
    reports at noon fills the morning slot, late, and still owes the afternoon one. Outside the
    season (no deadlines) one report a day is accepted, never late.
    """
    if not deadlines:
        return None if 1 in filled else (1, False)
    for i, deadline in enumerate(deadlines, start=1):
        if i not in filled:
            return i, at > deadline
    return None


def calendar_from(settings: Any) -> ZeroReportCalendar:
    return ZeroReportCalendar(
        season_start=settings.flood_season_start,
        season_end=settings.flood_season_end,
        normal=parse_deadlines(settings.zero_report_deadlines),
        response=parse_deadlines(settings.zero_report_response_deadlines),
    )


def write_off_target(registered: int, ratio: float) -> int:
    """The default annual target: ``ratio`` of the sites on the register at the start of the year, rounded up."""
    return math.ceil(registered * ratio - 1e-9) if registered > 0 else 0
