"""Fixtures of the field tests: the API world (two townships) with an app whose data dir is private."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from geowarn.api import create_app
from geowarn.config import Settings
from geowarn.db import Database
from tests.api.apiworld import World, build_world, login


@pytest.fixture
def world(db: Database) -> World:
    return build_world(db)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        token_ttl_hours=12,
        max_upload_mb=1,
        data_dir=tmp_path / "data",
        photo_max_mb=0.5,
        warning_engine=False,
        flood_season_start="01-01",
        flood_season_end="12-31",
    )


@pytest.fixture
def client(db: Database, settings: Settings) -> Iterator[TestClient]:
    app = create_app(db, settings=settings)
    with TestClient(app) as c:
        yield c


@pytest.fixture
def as_monitor(client: TestClient, world: World) -> dict[str, str]:
    return login(client, "alpha_monitor")
