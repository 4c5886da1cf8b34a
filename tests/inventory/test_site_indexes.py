"""The sites' indexes serve the queries we make: every one is confined to a unit by a ``unit_code`` range."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import inspect, text

from geowarn.api.site_ops import site_query
from geowarn.db import Database
from geowarn.inventory.domain import HazardType, MonitoringMode, SiteStatus


def test_no_index_leads_with_a_low_cardinality_column(db: Database) -> None:
    """An index on type, status or township code only costs writes (and misleads SQLite, below)."""
    leading = {ix["column_names"][0] for ix in inspect(db.writer_engine).get_indexes("hazard_site")}
    assert not leading & {"hazard_type", "status", "monitoring_mode", "township_code"}
    assert "unit_code" in leading


@pytest.mark.parametrize(
    "filters",
    [
        {"hazard_type": HazardType.LANDSLIDE},
        {"status": SiteStatus.REGISTERED},
        {"hazard_type": HazardType.ROCKFALL, "status": SiteStatus.REGISTERED},
        {"monitoring_mode": MonitoringMode.COMMUNITY, "township": "350922101"},
    ],
)
def test_a_filtered_list_walks_the_callers_unit(db: Database, filters: dict[str, Any]) -> None:
    """SQLite keeps no statistics: it took ``hazard_type = ?`` for more selective than the county's
    range and walked a seventh of a national register (40 ms instead of 0.2 ms at 300,000 sites)."""
    if db.is_postgres:
        pytest.skip("PostgreSQL plans from the statistics it keeps")
    user: Any = SimpleNamespace(unit_code="350922")
    stmt = site_query(user, **filters)
    sql = stmt.compile(db.writer_engine, compile_kwargs={"literal_binds": True})
    with db.engine.connect() as conn:
        plan = " | ".join(str(r[-1]) for r in conn.execute(text(f"EXPLAIN QUERY PLAN {sql}")))
    assert "hazard_site USING INDEX ix_hazard_site_unit_code" in plan, plan
