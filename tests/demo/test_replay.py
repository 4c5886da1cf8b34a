"""The demo's typhoon replayed end to end: regional products rise blue → yellow → orange through
the joint sign-off, and the failing slope — only it — raises deformation alerts up to red with a
failure forecast. Runs the real ingestion path and warning engine on both backends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from geowarn.db import Database
from geowarn.demo.live import start_demo_network
from geowarn.monitoring.models import Device, MonitoringStation
from geowarn.warning.levels import Level
from geowarn.warning.models import Alert
from geowarn.warning.product_models import ProductSignoff, ProductVersion
from tests.conftest import BACKENDS, DEMO_2021, Datasets, demo_county_2021

DEFORMATION_RULES = ("tangent_angle", "rate_baseline", "rain_and_deformation")


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, datasets: Datasets) -> Iterator[Database]:
    """The demo county of seed 2021 (built once per backend, shared with other modules), a copy."""
    demo_county_2021(datasets, request.param)
    with datasets.copy(request.param, DEMO_2021) as database:
        yield database


def test_the_typhoon_replay_raises_the_right_warnings(db: Database) -> None:
    # fixed steps: the same batches on a loaded CI machine as here (a slow step once made one big batch)
    live, sent = start_demo_network(db, event=True, speed=20_000, start=True, fixed_steps=True)
    try:
        assert live.replay_done.wait(180), "the replay did not finish"
        assert live.engine.wait_idle(180), "the engine did not catch up"
    finally:
        live.stop()
    assert sent > 5000
    scenario = live.sim.scenario
    (slope,) = scenario.accelerating
    with db.read() as s:
        versions = s.scalars(select(ProductVersion).order_by(ProductVersion.id)).all()
        assert [(v.level, v.state) for v in versions] == [(1, "superseded"), (2, "superseded"), (3, "issued")]
        signed = {(v.number, d) for v, d in s.execute(select(ProductVersion, ProductSignoff.department).join(
            ProductSignoff, ProductSignoff.version_id == ProductVersion.id))}  # fmt: skip
        assert {(2, "weather"), (3, "weather"), (3, "natural_resources")} <= signed
        assert versions[-1].summary["levels"]["orange"]["sites"] > 0
        slope_site = s.scalar(
            select(MonitoringStation.site_id).join(Device, Device.station_id == MonitoringStation.id).where(
                Device.device_code == slope)
        )  # fmt: skip
        deformation = s.scalars(select(Alert).where(Alert.rule_id.in_(DEFORMATION_RULES))).all()
        assert deformation and {a.site_id for a in deformation} == {slope_site}
        angle = next(a for a in deformation if a.rule_id == "tangent_angle")
        assert angle.max_level == Level.RED and angle.reason["terms"][0]["sensor"] == slope
        ev = scenario.event
        forecast = angle.forecast
        assert forecast is not None
        assert abs(forecast["t_failure_ms"] - ev.failure_ms) < 0.25 * (ev.failure_ms - ev.accel_ms)
        rain = s.scalars(select(Alert).where(Alert.rule_id == "rain_24h")).all()
        assert len({a.site_id for a in rain}) >= 3 and max(a.max_level for a in rain) >= Level.ORANGE
    assert live.engine.latencies_s and max(live.engine.latencies_s) < 30
