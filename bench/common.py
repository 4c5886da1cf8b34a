"""Shared helpers of the benchmark scripts: fresh databases on each backend, timing, memory, tables."""

from __future__ import annotations

import os
import platform
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import psycopg

from geowarn.db import Database
from geowarn.db.migrate import upgrade

PG_SERVER = os.environ.get("GEOWARN_TEST_PG", "postgresql://postgres@127.0.0.1:5432")


@contextmanager
def fresh_database(backend: str) -> Iterator[Database]:
    """A new, migrated database of the backend, dropped afterwards."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as d:
            db = Database(f"sqlite:///{d}/bench.db")
            upgrade(db.url)
            try:
                yield db
            finally:
                db.dispose()
        return
    name = f"geowarn_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    db = Database(f"{PG_SERVER}/{name}")
    try:
        upgrade(db.url)
        from geowarn.monitoring.partitions import forget_partitions

        forget_partitions()
        yield db
    finally:
        db.dispose()
        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def median_time(fn: Callable[[], Any], repeat: int = 5) -> tuple[float, Any]:
    """Median wall time in seconds over ``repeat`` runs (after one warm-up) and the last result."""
    result = fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> str:
    return f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"


def table(headers: list[str], rows: list[list[Any]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_app(url: str, *, wait_s: float = 60.0, **env: str) -> tuple[subprocess.Popen[bytes], str]:
    """``uvicorn`` on the app against ``url`` in a subprocess (one worker, as ``geowarn serve``), the site-warning
    engine off; returns the process and the base URL once ``/api/health`` answers. ``env`` adds variables."""
    port = free_port()
    environ = {**os.environ, "GEOWARN_DATABASE_URL": url, "GEOWARN_WARNING_ENGINE": "false",
               "GEOWARN_LOG_LEVEL": "WARNING", **env}  # fmt: skip
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "geowarn.api.app:create_app", "--port", str(port),
         "--log-level", "warning", "--no-access-log"], env=environ,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    return server, base
