"""The headline figures of a built demo county, and its users with their demo passwords."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pyproj import Geod

from geowarn.inventory.domain import HAZARD_TYPE_ZH, HazardType

if TYPE_CHECKING:
    from geowarn.demo.build import DemoData


@dataclass(frozen=True, slots=True)
class DemoUser:
    username: str
    password: str
    role: str
    unit_code: str
    display_name: str


@dataclass(frozen=True)
class DemoSummary:
    """What ``build_demo_county`` stored. Hazard sites and steep cut slopes are counted apart."""

    seed: int
    county_code: str
    county_name: str
    area_km2: float
    townships: int
    villages: int
    hazard_sites: int
    sites_by_type: dict[str, int]
    sites_by_township: dict[str, int]
    threatened_households: int
    threatened_people: int
    threatened_property_yuan: int
    steep_slopes: int
    slope_households: int
    slope_people: int
    slope_property_yuan: int
    shelters: int
    risk_zones: int
    risk_zone_links: int
    households: int
    residents: int
    organisations: int
    persons: int
    users: tuple[DemoUser, ...] = field(default_factory=tuple)

    @property
    def threatened_property_wan(self) -> Decimal:
        return Decimal(self.threatened_property_yuan).scaleb(-4).normalize()

    @property
    def slope_property_wan(self) -> Decimal:
        return Decimal(self.slope_property_yuan).scaleb(-4).normalize()

    def lines(self) -> list[str]:
        """A short Chinese description for the CLI."""
        types = "，".join(f"{HAZARD_TYPE_ZH[HazardType(k)]}{v}处" for k, v in self.sites_by_type.items())
        out = [
            f"{self.county_name}（{self.county_code}），面积约 {self.area_km2:,.0f} 平方千米，"
            f"{self.townships} 个乡镇（街道）、{self.villages} 个村（社区）",
            f"地质灾害隐患点 {self.hazard_sites} 处（{types}），威胁 {self.threatened_households} 户 "
            f"{self.threatened_people} 人、财产 {self.threatened_property_wan:f} 万元",
            f"房前屋后高陡边坡 {self.steep_slopes} 处，威胁 {self.slope_households} 户 {self.slope_people} 人、"
            f"财产 {self.slope_property_wan:f} 万元",
            f"风险区 {self.risk_zones} 个，避险点 {self.shelters} 处，"
            f"受威胁户 {self.households} 户 {self.residents} 人",
            "演示账号（仅供演示，密码公开）：",
        ]
        out += [f"  {u.username:<9} {u.role:<14} {u.unit_code:<10} {u.password}" for u in self.users]
        return out


def summarize_demo(data: DemoData, counts: dict[str, int], users: list[DemoUser]) -> DemoSummary:
    area, _ = Geod(ellps="WGS84").geometry_area_perimeter(data.county)
    by_type: dict[str, int] = {}
    by_town: dict[str, int] = {}
    for s in data.sites:
        by_type[s.hazard_type] = by_type.get(s.hazard_type, 0) + 1
        by_town[s.town.name] = by_town.get(s.town.name, 0) + 1
    every: list[Any] = data.sites + data.slopes
    return DemoSummary(
        seed=data.seed,
        county_code="350922",
        county_name="示范县",
        area_km2=round(abs(area) / 1e6, 1),
        townships=len(data.towns),
        villages=sum(len(t.villages) for t in data.towns),
        hazard_sites=len(data.sites),
        sites_by_type=dict(sorted(by_type.items(), key=lambda kv: list(HazardType).index(HazardType(kv[0])))),
        sites_by_township=by_town,
        threatened_households=sum(len(s.households) for s in data.sites),
        threatened_people=sum(s.people for s in data.sites),
        threatened_property_yuan=sum(s.property_yuan for s in data.sites),
        steep_slopes=len(data.slopes),
        slope_households=sum(len(s.households) for s in data.slopes),
        slope_people=sum(s.people for s in data.slopes),
        slope_property_yuan=sum(s.property_yuan for s in data.slopes),
        shelters=len(data.shelters),
        risk_zones=len(data.zones),
        risk_zone_links=counts["risk_zone_links"],
        households=sum(len(s.households) for s in every),
        residents=counts["residents"],
        organisations=counts["organisations"],
        persons=counts["persons"],
        users=tuple(users),
    )
