"""The demo's typhoon, played through the real paths: device readings into the ingestion path (so
the warning engine raises site alerts from them), and rainfall grids into the regional model every
three simulated hours (so regional products rise through the levels and are signed and issued by
the demo's natural-resources operator and weather forecaster).

The event is placed in the 36 hours before the demo starts and replayed ``speed`` times faster than
real time; readings carry their simulated times, which are always in the past, so when the replay
ends the network simply carries on in real time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import select

from geowarn.admin.models import AdminUnit
from geowarn.auth.models import User
from geowarn.db import Database
from geowarn.demo.event import HOUR_MS, TyphoonEvent
from geowarn.monitoring.simulator import SimDevice
from geowarn.regional.grid import Grid
from geowarn.regional.pipeline import run_regional
from geowarn.regional.store import load_sites, load_townships, load_zones, version_content
from geowarn.warning import products as wf
from geowarn.warning.levels import Level
from geowarn.warning.product_models import RegionalProduct

log = logging.getLogger(__name__)
CELL_DEG = 0.01  # about 1 km


@dataclass
class TyphoonScenario:
    """What the typhoon changes in the simulator: gauge rain, and the creep of one slope (whose
    crack meter never falls silent, so the demo always shows the whole failure sequence)."""

    event: TyphoonEvent
    accelerating: set[str] = field(default_factory=set)

    def rain_mm(self, d: SimDevice, t_ms: int) -> float | None:
        if not self.event.start_ms <= t_ms <= self.event.end_ms + d.interval_ms:
            return None
        mm = self.event.rain_mm(np.array([d.lon]), np.array([d.lat]), t_ms - d.interval_ms, t_ms)
        return round(float(mm[0]), 1)

    def extra_mm(self, d: SimDevice, t_ms: int) -> float:
        if d.code not in self.accelerating:
            return 0.0
        # stop just before the forecast failure: the slope has gone by then
        t = min(t_ms, self.event.failure_ms - 5 * 60_000)
        return float(self.event.displacement_mm(np.array([t]))[0])


def pick_accelerating(devices: list[SimDevice]) -> str | None:
    """The first crack meter in code order: its slope is the one that fails."""
    crack = sorted(d.code for d in devices if d.kind == "LF")
    return crack[0] if crack else None


class RegionalCycle:
    """Every three simulated hours: grids → regional model → draft, sign-off and issue when the
    level changes (the demo's own users sign, as the two bureaus would)."""

    def __init__(self, db: Database, event: TyphoonEvent, county: str) -> None:
        self.db, self.event, self.county = db, event, county
        self.product_id: int | None = None
        self.level = Level.NONE
        self.next_ms = event.start_ms
        with db.read() as s:
            unit = s.get(AdminUnit, county)
            self.bounds = unit.geom.bounds if unit is not None and unit.geom is not None else (118.6, 26.3, 119.2, 26.9)

    def _grid(self, t0: int, t1: int) -> Grid:
        west, south, east, north = self.bounds
        cols = int(np.ceil((east - west) / CELL_DEG)) + 1
        rows = int(np.ceil((north - south) / CELL_DEG)) + 1
        values = self.event.grid_mm(west, north - rows * CELL_DEG, CELL_DEG, (rows, cols), t0, t1)
        return Grid.regular(west, north, CELL_DEG, values)

    def step(self, sim_ms: int) -> Level | None:
        """Run the model for every cycle time passed; returns the new level when one was issued."""
        issued = None
        while self.next_ms <= min(sim_ms, self.event.end_ms):
            issued = self._run(self.next_ms) or issued
            self.next_ms += 3 * HOUR_MS
        return issued

    def _run(self, t: int) -> Level | None:
        forecast = self._grid(t, t + 24 * HOUR_MS)
        forecast.values *= self.event.forecast_skill(t)
        days = [forecast, self._grid(t - 24 * HOUR_MS, t), self._grid(t - 48 * HOUR_MS, t - 24 * HOUR_MS)]
        with self.db.write("demo") as s:
            sites, zones, towns = load_sites(s, self.county), load_zones(s, self.county), load_townships(s, self.county)
            result = run_regional(days, sites=sites, zones=zones, township_boundaries=towns)
            level = result.max_level
            if level == self.level:
                return None
            content = version_content(
                result, sites, zones, valid_from_ms=t, valid_to_ms=t + 24 * HOUR_MS,
                inputs={"source": "示范县台风过程演示：逐3小时降雨格点（前两日实况+未来24小时预报）", "k": 0.8},
                message=_message(level), simplify_deg=0.002,
            )  # fmt: skip
            users = {u.username: u for u in s.scalars(select(User).where(User.username.in_(("operator", "weather"))))}
            operator, weather = users.get("operator"), users.get("weather")
            if operator is None or weather is None:
                log.warning("demo users missing: regional products not issued")
                return None
            if self.product_id is None:
                if level is Level.NONE:
                    return None
                product = wf.create(s, operator, self.county, "示范县地质灾害气象风险预警", content, t)
                self.product_id = product.id
                version = product.versions[0]
            else:
                product = s.get(RegionalProduct, self.product_id)
                assert product is not None
                kind = "lift" if level is Level.NONE else "update"
                version = wf.draft_version(s, product, operator, kind, content, t)
            wf.submit(version, t + 60_000)
            wf.sign(s, version, operator, "natural_resources", "approve", "同意发布", t + 120_000)
            if wf.missing_signoffs(version):
                wf.sign(s, version, weather, "weather", "approve", "同意联合发布", t + 180_000)
            wf.issue(s, version, operator, t + 240_000)
            self.level = level
            if level is Level.NONE:
                self.product_id = None
        log.info("demo regional warning: level %s at %s", level.regional_label, t)
        return level


def _message(level: Level) -> str:
    actions = {
        Level.BLUE: "各地加强值班值守，群测群防员加密巡查。",
        Level.YELLOW: "各乡镇部署防范工作，责任人组织监测员加密巡查监测。",
        Level.ORANGE: "实行领导带班24小时值班，受威胁群众转移至避险点。",
        Level.RED: "县乡两级24小时值班，立即转移隐患点、高陡边坡和易发区受威胁群众。",
    }
    if level is Level.NONE:
        return "降雨过程结束，解除地质灾害气象风险预警。"
    risk = ("一定", "较高", "高", "很高")[int(level) - 1]
    return f"预计未来24小时示范县部分地区发生地质灾害的风险{risk}（{level.regional_label}预警）。{actions[level]}"
