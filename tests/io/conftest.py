"""Fixtures of the import/export tests (the world itself is in ``ioworld.py``)."""

from __future__ import annotations

import pytest

from geowarn.db import Database
from tests.io.ioworld import add_units


@pytest.fixture
def county(db: Database) -> Database:
    add_units(db)
    return db
