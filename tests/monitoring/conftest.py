from __future__ import annotations

import pytest

from geowarn.db import Database
from tests.monitoring.network import Network, build_network


@pytest.fixture
def network(db: Database) -> Network:
    return build_network(db)
