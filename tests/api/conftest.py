"""Fixtures of the API tests (the world itself is built in ``apiworld.py``)."""

from __future__ import annotations

from collections.abc import Iterator

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
def client(db: Database) -> Iterator[TestClient]:
    app = create_app(db, settings=Settings(token_ttl_hours=12, max_upload_mb=1))
    with TestClient(app) as c:
        yield c


@pytest.fixture
def as_a(client: TestClient, world: World) -> dict[str, str]:
    """Headers of township A's administrator."""
    return login(client, "alpha_administrator")
