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


def _truncate_pg(db: Database) -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with db.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


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
