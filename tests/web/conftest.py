"""A real uvicorn server on a free port with the demo county, and Debian's Chromium for Playwright."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from geowarn.config import Settings
from geowarn.db import Database

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    server: Any
    thread: threading.Thread


def start_server(db: Database | None, settings: Settings) -> LiveServer:
    """uvicorn in a thread serving ``create_app(db)``; returns once it accepts connections."""
    import uvicorn

    from geowarn.api import create_app

    port = free_port()
    config = uvicorn.Config(create_app(db, settings=settings), host="127.0.0.1", port=port, log_level="warning",
                            ws="none", lifespan="on")  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-web-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    return LiveServer(f"http://127.0.0.1:{port}", server, thread)


def stop_server(live: LiveServer) -> None:
    live.server.should_exit = True
    live.thread.join(timeout=15)


@pytest.fixture
def browser() -> Iterator[Any]:
    if not CHROMIUM.is_file():
        pytest.skip("Debian's Chromium (/usr/bin/chromium, package `chromium`) is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()
