"""A device changed by another process (a new key, retirement) is seen by every cache within its TTL."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from geowarn.db import Database
from geowarn.monitoring import registry
from geowarn.monitoring.models import Device
from geowarn.monitoring.registry import DeviceCache
from tests.monitoring.network import build_network


def test_a_cached_device_is_read_again_after_its_ttl(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    net = build_network(db, n_rain=1, n_gnss=0)
    (code,) = net.keys
    cache = DeviceCache(db)
    before = cache.get(code)
    assert before is not None and before.status == "active"
    with db.write("other-process") as s:  # not through this cache: no invalidate()
        s.execute(update(Device).where(Device.device_code == code).values(status="retired", apikey_hash="new"))
    assert cache.get(code) == before  # within the TTL the entry stands
    monkeypatch.setattr(registry, "TTL_S", 0.0)
    after = cache.get(code)
    assert after is not None and (after.status, after.apikey_hash) == ("retired", "new")
