"""Shared fixtures. ``db`` runs each storage test twice: on SQLite and on PostgreSQL/PostGIS.

PostgreSQL is reached at ``GEOWARN_TEST_PG`` (default ``postgresql://postgres@127.0.0.1:5432``);
the tests make their own database, migrate it once and empty it between tests. A missing server
is an error, not a skip: set ``GEOWARN_TEST_SKIP_PG=1`` to run SQLite only on purpose.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text

import geowarn.models  # noqa: F401
from geowarn.db import Base, Database, set_database
from geowarn.db.migrate import upgrade

PG_SERVER = os.environ.get("GEOWARN_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
SKIP_PG = os.environ.get("GEOWARN_TEST_SKIP_PG") == "1"
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
BACKENDS = ["sqlite"] if SKIP_PG else ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    name = f"geowarn_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = f"{PG_SERVER}/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{PG_SERVER}/{name}"
    upgrade(url)
    yield url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


_BIG = 2000  # rows above which TRUNCATE beats DELETE


def _truncate_pg(db: Database) -> None:
    """Empty the tables a test filled and reset every sequence.

    One probe counts the rows of every table (up to ``_BIG``). Big tables are truncated; the others
    are emptied with DELETE, children first. A test leaves a few hundred rows in a few tables,
    and DELETE of those is far cheaper than TRUNCATE, which swaps each table's files: TRUNCATE of
    all fifty tables took about 450 ms a test, this about 40 ms, and that was most of the
    PostgreSQL half of the suite's time.
    """
    # register_stamp keeps its one row: the database, not the test, owns it (geowarn.inventory.stamp)
    names = [t.name for t in Base.metadata.sorted_tables if t.name != "register_stamp"]
    probe = " UNION ALL ".join(
        f"SELECT '{name}', (SELECT count(*) FROM (SELECT 1 FROM \"{name}\" LIMIT {_BIG + 1}) s)" for name in names
    )
    with db.engine.begin() as conn:
        rows = {str(n): int(c) for n, c in conn.execute(text(probe))}
        big = [name for name in names if rows[name] > _BIG]
        if big:
            conn.execute(text("TRUNCATE " + ", ".join(f'"{n}"' for n in big) + " CASCADE"))
        for name in reversed(names):
            if 0 < rows[name] <= _BIG:
                conn.execute(text(f'DELETE FROM "{name}"'))
        conn.execute(
            text(
                "SELECT setval(c.oid, 1, false) FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE c.relkind = 'S' AND n.nspname = 'public'"
            )
        )


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """An empty, migrated database of each backend, installed as the process's database."""
    if request.param == "sqlite":
        path = tmp_path / "geowarn.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        database = Database(f"sqlite:///{path}")
    else:
        database = Database(request.getfixturevalue("pg_url"))
        _truncate_pg(database)
    set_database(database)
    try:
        yield database
    finally:
        set_database(None)
        database.dispose()


@pytest.fixture
def shared_dir() -> Path:
    return SHARED
