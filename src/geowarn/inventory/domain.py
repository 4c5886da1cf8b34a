"""Vocabulary of the register, with the Chinese terms users see.

Categories follow the national hazard survey (DZ/T 0261-2014 地质灾害调查技术要求): seven hazard
types plus 房前屋后高陡边坡 (steep cut slopes), tracked beside them as their own category.
Scale (规模等级) and danger grade (险情等级) use the four national classes.
"""

from __future__ import annotations

from enum import StrEnum


class HazardType(StrEnum):
    LANDSLIDE = "landslide"
    ROCKFALL = "rockfall"
    DEBRIS_FLOW = "debris_flow"
    GROUND_COLLAPSE = "ground_collapse"
    GROUND_FISSURE = "ground_fissure"
    LAND_SUBSIDENCE = "land_subsidence"
    UNSTABLE_SLOPE = "unstable_slope"
    STEEP_CUT_SLOPE = "steep_cut_slope"


HAZARD_TYPE_ZH: dict[HazardType, str] = {
    HazardType.LANDSLIDE: "滑坡",
    HazardType.ROCKFALL: "崩塌",
    HazardType.DEBRIS_FLOW: "泥石流",
    HazardType.GROUND_COLLAPSE: "地面塌陷",
    HazardType.GROUND_FISSURE: "地裂缝",
    HazardType.LAND_SUBSIDENCE: "地面沉降",
    HazardType.UNSTABLE_SLOPE: "不稳定斜坡",
    HazardType.STEEP_CUT_SLOPE: "房前屋后高陡边坡",
}

#: Extra spellings found in real ledgers.
HAZARD_TYPE_ALIASES: dict[str, HazardType] = {
    "崩塌（危岩）": HazardType.ROCKFALL,
    "危岩": HazardType.ROCKFALL,
    "危岩体": HazardType.ROCKFALL,
    "高陡边坡": HazardType.STEEP_CUT_SLOPE,
    "切坡": HazardType.STEEP_CUT_SLOPE,
    "房前屋后切坡": HazardType.STEEP_CUT_SLOPE,
    "塌陷": HazardType.GROUND_COLLAPSE,
    "岩溶塌陷": HazardType.GROUND_COLLAPSE,
    "采空塌陷": HazardType.GROUND_COLLAPSE,
    "斜坡": HazardType.UNSTABLE_SLOPE,
}


class Scale(StrEnum):
    SMALL = "small"
    MEDIUM = "medium"
    LARGE = "large"
    HUGE = "huge"


SCALE_ZH: dict[Scale, str] = {
    Scale.SMALL: "小型",
    Scale.MEDIUM: "中型",
    Scale.LARGE: "大型",
    Scale.HUGE: "特大型",
}

#: 险情等级 uses the same four words as 规模等级.
DangerGrade = Scale
DANGER_GRADE_ZH = SCALE_ZH


class Stability(StrEnum):
    STABLE = "stable"
    FAIRLY_STABLE = "fairly_stable"
    UNSTABLE = "unstable"


STABILITY_ZH: dict[Stability, str] = {
    Stability.STABLE: "稳定",
    Stability.FAIRLY_STABLE: "基本稳定",
    Stability.UNSTABLE: "不稳定",
}
STABILITY_ALIASES: dict[str, Stability] = {"较稳定": Stability.FAIRLY_STABLE, "欠稳定": Stability.UNSTABLE}


class MonitoringMode(StrEnum):
    COMMUNITY = "community"
    INSTRUMENTED = "instrumented"
    BOTH = "both"


MONITORING_MODE_ZH: dict[MonitoringMode, str] = {
    MonitoringMode.COMMUNITY: "群测群防",
    MonitoringMode.INSTRUMENTED: "专业监测",
    MonitoringMode.BOTH: "群专结合",
}


class SiteStatus(StrEnum):
    REGISTERED = "registered"
    UNDER_TREATMENT = "under_treatment"
    TREATED = "treated"
    RELOCATED = "relocated"
    WRITTEN_OFF = "written_off"


SITE_STATUS_ZH: dict[SiteStatus, str] = {
    SiteStatus.REGISTERED: "在册",
    SiteStatus.UNDER_TREATMENT: "治理中",
    SiteStatus.TREATED: "已治理",
    SiteStatus.RELOCATED: "已搬迁",
    SiteStatus.WRITTEN_OFF: "已核销",
}

#: The lifecycle: a site leaves the register only through treatment or relocation, then write-off.
SITE_TRANSITIONS: dict[SiteStatus, frozenset[SiteStatus]] = {
    SiteStatus.REGISTERED: frozenset({SiteStatus.UNDER_TREATMENT, SiteStatus.RELOCATED}),
    SiteStatus.UNDER_TREATMENT: frozenset({SiteStatus.TREATED, SiteStatus.REGISTERED}),
    SiteStatus.TREATED: frozenset({SiteStatus.WRITTEN_OFF, SiteStatus.REGISTERED}),
    SiteStatus.RELOCATED: frozenset({SiteStatus.WRITTEN_OFF, SiteStatus.REGISTERED}),
    SiteStatus.WRITTEN_OFF: frozenset(),
}

#: Statuses that still count as "in the register" for warnings and statistics of active sites.
ACTIVE_STATUSES = frozenset({SiteStatus.REGISTERED, SiteStatus.UNDER_TREATMENT})


def can_transition(current: SiteStatus, target: SiteStatus) -> bool:
    return target in SITE_TRANSITIONS[current]


class RiskGrade(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


RISK_GRADE_ZH: dict[RiskGrade, str] = {RiskGrade.HIGH: "高", RiskGrade.MEDIUM: "中", RiskGrade.LOW: "低"}


class PersonRole(StrEnum):
    RESPONSIBLE = "responsible"
    MONITOR = "monitor"
    DUTY_OFFICIAL = "duty_official"
    CONTACT = "contact"
    LEADER = "leader"


PERSON_ROLE_ZH: dict[PersonRole, str] = {
    PersonRole.RESPONSIBLE: "防灾责任人",
    PersonRole.MONITOR: "监测人",
    PersonRole.DUTY_OFFICIAL: "值班人员",
    PersonRole.CONTACT: "联络人",
    PersonRole.LEADER: "分管领导",
}


class Department(StrEnum):
    NATURAL_RESOURCES = "natural_resources"
    EMERGENCY = "emergency_management"
    WEATHER = "weather"
    HOUSING = "housing"
    TRANSPORT = "transport"
    WATER = "water"
    EDUCATION = "education"
    ENVIRONMENT = "ecology_environment"
    EARTHQUAKE = "earthquake"
    GOVERNMENT = "government"
    OTHER = "other"


DEPARTMENT_ZH: dict[Department, str] = {
    Department.NATURAL_RESOURCES: "自然资源局",
    Department.EMERGENCY: "应急管理局",
    Department.WEATHER: "气象局",
    Department.HOUSING: "住房和城乡建设局",
    Department.TRANSPORT: "交通运输局",
    Department.WATER: "水利局",
    Department.EDUCATION: "教育局",
    Department.ENVIRONMENT: "生态环境局",
    Department.EARTHQUAKE: "地震局",
    Department.GOVERNMENT: "人民政府",
    Department.OTHER: "其他",
}


def zh_lookup(table: dict[str, str] | dict[HazardType, str], text: str) -> str | None:
    """Reverse lookup of a Chinese label (exact, after trimming) to its code."""
    t = text.strip()
    for code, zh in table.items():
        if zh == t:
            return str(code)
    return None
