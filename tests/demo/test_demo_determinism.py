"""Same seed, same county: byte-identical tables across two builds and across the two backends."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import shapely
from sqlalchemy import DateTime, select

from geowarn.db import Base, Database
from geowarn.db.migrate import upgrade
from geowarn.demo import build_demo_county, generate
from geowarn.errors import Conflict
from tests.conftest import BACKENDS, DEMO, Datasets, demo_county


def _value(v: Any) -> Any:
    if isinstance(v, shapely.Geometry):
        return shapely.to_wkb(v, hex=True)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, dict | list):
        return orjson.dumps(v, option=orjson.OPT_SORT_KEYS).decode()
    return v if v is None or isinstance(v, int | str | bool) else str(v)


TIMESTAMPS = {c.name for t in Base.metadata.sorted_tables for c in t.columns if isinstance(c.type, DateTime)}


def _audit_changes(changes: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in changes.items() if k not in TIMESTAMPS}


def canonical_dump(db: Database) -> dict[str, str]:
    """One SHA-256 per table over every column but timestamps (and not the random register stamps);
    audit rows compared as a sorted set.

    The audit log's recorded values keep everything but timestamps (``at``, ``created_at``…).
    """
    out = {}
    with db.read() as s:
        for table in Base.metadata.sorted_tables:
            if table.name == "register_stamp":  # random by design: it only tells states apart
                continue
            cols = [c for c in table.columns if not isinstance(c.type, DateTime)]
            if table.name == "audit_log":
                cols = [c for c in cols if c.name != "id"]
            result = s.execute(select(*cols).order_by(*table.primary_key.columns)).all()
            if table.name == "audit_log":
                at = [c.name for c in cols].index("changes")
                result = [(*r[:at], _audit_changes(r[at]), *r[at + 1 :]) for r in result]
            rows = [tuple(_value(v) for v in r) for r in result]
            if table.name == "audit_log":
                rows.sort(key=repr)
            out[table.name] = hashlib.sha256(repr(rows).encode()).hexdigest() + f":{len(rows)}"
    return out


@pytest.fixture(params=BACKENDS)
def built(request: pytest.FixtureRequest, datasets: Datasets) -> Iterator[Database]:
    """A database holding ``build_demo_county`` with its default seed: the build is made once per
    backend (shared with ``test_demo_county``), each test gets its own copy of it."""
    demo_county(datasets, request.param)
    with datasets.copy(request.param, DEMO) as database:
        yield database


def test_generator_is_pure() -> None:
    a, b = generate(2021), generate(2021)
    assert [(x.code, x.lon, x.lat, x.people) for x in a.sites] == [(x.code, x.lon, x.lat, x.people) for x in b.sites]
    assert a.county.equals_exact(b.county, 0)
    c = generate(7)
    assert [x.lon for x in c.sites] != [x.lon for x in a.sites]
    assert sum(x.people for x in c.sites) == 4789  # other seeds keep the seed document's figures


def test_two_builds_and_backends_agree(built: Database, tmp_path: Path) -> None:
    db = built  # one build; the second is made here, on SQLite
    other_url = f"sqlite:///{tmp_path / 'second.db'}"
    upgrade(other_url)
    other = Database(other_url)
    try:
        build_demo_county(other)
        mine, theirs = canonical_dump(db), canonical_dump(other)
    finally:
        other.dispose()
    assert mine["hazard_site"].endswith(":181")
    assert mine == theirs  # on the postgresql run this compares PostgreSQL with SQLite


def test_refuses_a_non_empty_database(built: Database) -> None:
    db = built
    with pytest.raises(Conflict) as err:
        build_demo_county(db)
    assert "空数据库" in err.value.message_zh
