"""Engines and sessions for both backends.

SQLite runs in WAL mode with a **single-writer discipline**: all writing sessions of a process
share one connection (a pool of one, so writers queue in Python instead of failing with
"database is locked") and open their transaction with ``BEGIN IMMEDIATE``; readers use their own
pooled connections and never block the writer. Other processes (a CLI import beside the server)
wait on SQLite's busy timeout. PostgreSQL needs none of this and uses one pooled engine.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool

from geowarn.errors import ConfigError

SQLITE_BUSY_MS = 30_000


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (see _sqlite_begin)
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
    cur.execute("PRAGMA cache_size=-65536")
    cur.execute("PRAGMA temp_store=MEMORY")
    cur.close()


def _sqlite_engine(url: str, *, writer: bool, echo: bool) -> Engine:
    engine = create_engine(
        url,
        echo=echo,
        poolclass=QueuePool,
        pool_size=1 if writer else 8,
        max_overflow=0 if writer else 8,
        pool_timeout=SQLITE_BUSY_MS / 1000,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_MS / 1000},
    )
    event.listen(engine, "connect", _sqlite_pragmas)
    begin = "BEGIN IMMEDIATE" if writer else "BEGIN"

    @event.listens_for(engine, "begin")
    def _sqlite_begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)

    return engine


class Database:
    """The storage of one geowarn installation: engines, sessions and backend facts."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        parsed = make_url(url)
        self.backend = parsed.get_backend_name()
        if self.backend == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            elif not parsed.database or parsed.database == ":memory:":
                raise ConfigError("use a SQLite file, not :memory: (readers and the writer need one database)")
            self.engine = _sqlite_engine(url, writer=False, echo=echo)
            self.writer_engine = _sqlite_engine(url, writer=True, echo=echo)
        elif self.backend == "postgresql":
            if parsed.drivername == "postgresql":
                url = str(parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False))
            self.engine = create_engine(url, echo=echo, pool_size=10, max_overflow=10, pool_pre_ping=True)
            self.writer_engine = self.engine
        else:
            raise ConfigError(f"unsupported database {self.backend!r}: use sqlite:/// or postgresql://")
        self._reader = sessionmaker(self.engine, expire_on_commit=False)
        self._writer = sessionmaker(self.writer_engine, expire_on_commit=False)
        self._lock = threading.Lock()

    @property
    def is_postgres(self) -> bool:
        return self.backend == "postgresql"

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading. Closing it ends the transaction (the pool rolls it back) but keeps
        loaded objects usable afterwards, detached."""
        with self._reader() as s:
            s.info["database"] = self
            yield s

    @contextmanager
    def write(self, actor: Any = None) -> Iterator[Session]:
        """A session whose work commits at the end, or rolls back on error.

        ``actor`` (a user or a plain name) is recorded by the audit log for every change made.
        """
        with self._writer() as s:
            s.info["actor"] = actor
            s.info["database"] = self  # for caches that must read committed data beside this transaction
            try:
                yield s
                s.commit()
            except BaseException:
                s.rollback()
                raise

    def raw_writer(self) -> Any:
        """A context manager giving a Connection on the writer engine (bulk paths use it)."""
        return self.writer_engine.begin()

    def dispose(self) -> None:
        self.engine.dispose()
        if self.writer_engine is not self.engine:
            self.writer_engine.dispose()


_current: Database | None = None
_current_lock = threading.Lock()


def get_database() -> Database:
    """The process's database, made from settings on first use."""
    global _current
    with _current_lock:
        if _current is None:
            from geowarn.config import get_settings

            s = get_settings()
            _current = Database(s.database_url, echo=s.sql_echo)
        return _current


def set_database(db: Database | None) -> None:
    global _current
    with _current_lock:
        _current = db
