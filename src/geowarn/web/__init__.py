"""The web application (地质灾害监测预警一张图): static ES modules served by geowarn itself.

No build step and no CDN: the pages under ``static/`` are plain ES modules; Leaflet and ECharts
come from ``node_modules`` (installed from npm by ``scripts/setup.sh``) through the
``/static/vendor`` mount of :mod:`geowarn.api.app`. Every datum is read through the scoped
``/api`` routes with the user's bearer token, so the browser sees exactly what the API allows.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

import geowarn
from geowarn.config import Settings, get_settings

STATIC = Path(__file__).resolve().parent / "static"


def _settings(request: Request) -> Settings:
    settings: Settings | None = getattr(request.app.state, "settings", None)
    return settings if settings is not None else get_settings()


def mount_web(app: FastAPI) -> None:
    """Serve the single-page app at ``/`` (its files under ``/static/app``) and its settings."""
    app.mount("/static/app", StaticFiles(directory=STATIC), name="web")

    async def index(_request: Request) -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")

    async def web_config(request: Request) -> JSONResponse:
        """Public settings of the page (no data): the base map and the version."""
        s = _settings(request)
        return JSONResponse(
            {"basemap_url": s.basemap_url, "basemap_attribution": s.basemap_attribution, "version": geowarn.__version__}
        )

    app.add_route("/", index, include_in_schema=False)
    app.add_route("/web-config.json", web_config, include_in_schema=False)
