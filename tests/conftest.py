"""Shared fixtures. ``db`` runs each storage test twice: on SQLite and on PostgreSQL/PostGIS.

PostgreSQL is reached at ``GEOWARN_TEST_PG`` (default ``postgresql://postgres@127.0.0.1:5432``);
the tests make their own database, migrate it once and empty it between tests. A missing server
is an error, not a skip: set ``GEOWARN_TEST_SKIP_PG=1`` to run SQLite only on purpose.
"""

from __future__ import annotations

import copy
import os
import shutil
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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


PG_ADMIN = f"{PG_SERVER}/postgres"


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[str]:
    """The name of the tests' migrated database; ``<name>_empty``, a copy of it made before any test
    touched it, is the template of the datasets kept by :class:`Datasets`."""
    name = f"geowarn_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        upgrade(f"{PG_SERVER}/{name}")
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}_empty" TEMPLATE "{name}"')
        yield name
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            for n in (name, f"{name}_empty"):
                conn.execute(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_url(pg_databases: str) -> str:
    return f"{PG_SERVER}/{pg_databases}"


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


class Datasets:
    """Datasets built once per session and backend; every test that asks gets its own copy.

    Building the demo county takes seconds; copying it takes a file copy on SQLite and
    ``CREATE DATABASE … TEMPLATE`` (about 0.3 s) on PostgreSQL. A copy is a separate database, so
    what one test writes never reaches another, and the per-test truncation of the shared
    PostgreSQL database (``_truncate_pg``) never touches a dataset.
    """

    def __init__(self, request: pytest.FixtureRequest, folder: Path) -> None:
        self._request = request
        self._folder = folder
        self._built: dict[tuple[str, str], tuple[str, Any]] = {}
        self._pg: list[str] = []
        self._n = 0

    def _empty(self, backend: str) -> str:
        if backend == "sqlite":
            return str(self._request.getfixturevalue("sqlite_template"))
        return f"{self._request.getfixturevalue('pg_databases')}_empty"

    def _copy(self, backend: str, source: str) -> Database:
        self._n += 1
        if backend == "sqlite":
            path = self._folder / f"copy{self._n}.db"
            shutil.copy(source, path)
            return Database(f"sqlite:///{path}")
        name = f"{self._request.getfixturevalue('pg_databases')}_copy{self._n}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
        self._pg.append(name)
        return Database(f"{PG_SERVER}/{name}")

    @staticmethod
    def _source(database: Database) -> str:
        """What a copy is made from: the SQLite file (write-ahead log folded in), or the database name."""
        database.dispose()
        name = database.engine.url.database
        assert name
        if database.backend == "sqlite":
            with sqlite3.connect(name) as conn:
                busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            conn.close()
            assert busy == 0, f"{name}: still open elsewhere, its write-ahead log could not be folded in"
        return name

    def _drop(self, database: Database) -> None:
        source = self._source(database)
        if database.backend == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                Path(source + suffix).unlink(missing_ok=True)
        else:
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{source}" WITH (FORCE)')
            self._pg.remove(source)

    def dataset(self, backend: str, key: str, build: Callable[[Database], Any], on: str | None = None) -> Any:
        """Build ``key`` once on ``backend``: ``build`` runs on a copy of dataset ``on`` (already built
        by an earlier call), or on an empty database. Returns what ``build`` returned."""
        if (backend, key) not in self._built:
            source = self._empty(backend) if on is None else self._built[backend, on][0]
            database = self._copy(backend, source)
            set_database(database)
            try:
                value = build(database)
            finally:
                set_database(None)
                source = self._source(database)
            self._built[backend, key] = (source, value)
        return copy.deepcopy(self._built[backend, key][1])

    @contextmanager
    def copy(self, backend: str, key: str) -> Iterator[Database]:
        """A fresh copy of dataset ``key`` (built before), installed as the process's database."""
        database = self._copy(backend, self._built[backend, key][0])
        set_database(database)
        try:
            yield database
        finally:
            set_database(None)
            self._drop(database)

    def close(self) -> None:
        if self._pg:
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                for name in self._pg:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._pg.clear()


@pytest.fixture(scope="session")
def datasets(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Datasets]:
    kept = Datasets(request, tmp_path_factory.mktemp("datasets"))
    try:
        yield kept
    finally:
        kept.close()


DEMO = "demo county, default seed"
DEMO_2021 = "demo county, seed 2021"
DEMO_2021_NETWORK = "demo county and its monitoring network, seed 2021"


def demo_county(datasets: Datasets, backend: str) -> Any:
    """Dataset ``DEMO``: ``build_demo_county`` with its default seed; returns its summary."""
    from geowarn.demo import build_demo_county

    return datasets.dataset(backend, DEMO, build_demo_county)


def demo_county_2021(datasets: Datasets, backend: str) -> Any:
    """Dataset ``DEMO_2021``: the county of seed 2021; returns its summary."""
    from geowarn.demo import build_demo_county

    return datasets.dataset(backend, DEMO_2021, lambda database: build_demo_county(database, seed=2021))


def demo_network_2021(datasets: Datasets, backend: str) -> tuple[Any, Any]:
    """Dataset ``DEMO_2021_NETWORK``: the county of seed 2021 and ``register_demo_network`` of the
    same seed; returns the county's summary and the simulated devices."""
    from geowarn.monitoring.simulator import register_demo_network

    summary = demo_county_2021(datasets, backend)
    devices = datasets.dataset(backend, DEMO_2021_NETWORK, lambda d: register_demo_network(d, seed=2021),
                               on=DEMO_2021)  # fmt: skip
    return summary, devices


@pytest.fixture
def shared_dir() -> Path:
    return SHARED
