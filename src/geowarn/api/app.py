"""The FastAPI application: every JSON route under ``/api``, errors as RFC 9457 problems.

``create_app(db)`` builds an app bound to one database (tests pass theirs); without one the
process's database from settings is used on first request.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

import geowarn
from geowarn.api import problems
from geowarn.api.routes import (
    alerts,
    audit,
    auth,
    dissemination,
    dissemination_response,
    fieldwork_cards,
    fieldwork_events,
    fieldwork_patrols,
    fieldwork_registry,
    fieldwork_reports,
    health,
    households,
    ingest,
    map,
    monitoring,
    monitoring_data,
    monitoring_health,
    monitoring_import,
    organisations,
    persons,
    products,
    products_compute,
    risk_zones,
    rules,
    shelters,
    site_lifecycle,
    sites,
    sites_spatial,
    stats,
    transfer,
    units,
    users,
)
from geowarn.config import Settings, get_settings
from geowarn.db import Database
from geowarn.web import mount_web

log = logging.getLogger(__name__)

#: Order matters where paths overlap: ``/sites/near`` must be matched before ``/sites/{site_id}``.
#: A request is matched against the routers in turn, so the hot paths come first: the map's layers
#: (every open map, at once) and device ingestion (matching ``/api/map/*`` last cost ~0.8 ms).
ROUTERS = (
    health.router,
    map.router,
    ingest.router,
    auth.router,
    units.router,
    sites_spatial.router,
    sites.router,
    site_lifecycle.router,
    risk_zones.router,
    shelters.router,
    households.router,
    persons.router,
    organisations.router,
    users.router,
    audit.router,
    stats.router,
    transfer.router,
    monitoring_import.router,  # before monitoring.router: /devices/import is not a device id
    monitoring.router,
    monitoring_data.router,
    monitoring_health.router,
    alerts.router,
    products_compute.router,  # before products.router: /products/compute is not a product id
    products.router,
    rules.router,
    dissemination.router,
    dissemination_response.router,
    fieldwork_patrols.router,
    fieldwork_reports.router,
    fieldwork_events.router,
    fieldwork_cards.router,
    fieldwork_registry.router,
)


def create_app(db: Database | None = None, *, settings: Settings | None = None) -> FastAPI:
    app = FastAPI(
        title="geowarn",
        version=geowarn.__version__,
        description="地质灾害监测预警平台 API — geological-hazard register, monitoring and warning.",
        openapi_url="/api/openapi.json",
        docs_url=None,  # served below from local files: the platform must work with no internet
        redoc_url=None,
        lifespan=_lifespan,
    )
    app.state.db = db
    app.state.settings = settings
    _warning_engine(app, db, settings or get_settings())
    problems.install(app)
    # Each router straight into the app: FastAPI then builds a router's routes on first use, whereas
    # one nested "/api" router made every app build all 150 routes up front (about 0.45 s).
    for router in ROUTERS:
        app.include_router(router, prefix="/api")
    _mount_vendor(app)
    mount_web(app)
    return app


def _warning_engine(app: FastAPI, db: Database | None, settings: Settings) -> None:
    """The site-warning engine fed by this app's HTTP ingestion, running while the app runs."""
    if not settings.warning_engine:
        return
    if settings.warning_engine_process:
        app.state.notify_engine = True  # app_ingestor notifies a `geowarn engine` process
        return
    from geowarn.db import get_database
    from geowarn.warning.engine import build_engine

    engine, overrides = build_engine(
        db if db is not None else get_database(), flap_minutes=settings.warning_flap_minutes
    )
    app.state.warning_engine, app.state.rule_overrides = engine, overrides


def _warm_directory() -> None:
    from geowarn.db import get_database
    from geowarn.dissemination import directory

    try:
        directory.warm(get_database())
    except Exception:  # a cache: the first resolution reads it instead
        log.warning("could not read the dissemination directory at start", exc_info=True)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    engine = getattr(app.state, "warning_engine", None)
    if engine is not None:
        engine.start()
    settings = get_settings()
    sweeping = threading.Event()
    if settings.mode != "test":  # read the register's people before the first big warning needs them
        threading.Thread(target=_warm_directory, name="warm-directory", daemon=True).start()
    if settings.mode != "test" and settings.serve_health_sweep:
        # devices that fall silent raise their events and alarms without a worker (HTTP-only counties)
        from geowarn.db import get_database
        from geowarn.warning.sweep import start_sweeping

        start_sweeping(get_database(), settings.offline_after_intervals, sweeping)
    try:
        yield
    finally:
        sweeping.set()
        if engine is not None:
            engine.stop()


def vendor_dir() -> Path:
    """Front-end libraries installed from npm at set-up (``node_modules`` of the checkout)."""
    configured = get_settings().web_vendor_dir
    return configured if configured is not None else Path(geowarn.__file__).resolve().parents[2] / "node_modules"


def _mount_vendor(app: FastAPI) -> None:
    root = vendor_dir()
    if root.is_dir():
        app.mount("/static/vendor", StaticFiles(directory=root), name="vendor")

    async def docs(_request: Request) -> HTMLResponse:
        if not (root / "swagger-ui-dist" / "swagger-ui-bundle.js").is_file():
            return HTMLResponse(
                "<p>API 文档需要前端库：请先运行 scripts/setup.sh（npm ci）。"
                "The API docs need the front-end libraries: run scripts/setup.sh (npm ci).</p>",
                status_code=503,
            )
        return get_swagger_ui_html(
            openapi_url="/api/openapi.json",
            title="geowarn API",
            swagger_js_url="/static/vendor/swagger-ui-dist/swagger-ui-bundle.js",
            swagger_css_url="/static/vendor/swagger-ui-dist/swagger-ui.css",
            swagger_favicon_url="/static/vendor/swagger-ui-dist/favicon-32x32.png",
        )

    app.add_route("/api/docs", docs, include_in_schema=False)


def api_routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path) the app serves under ``/api``, sorted.

    FastAPI before 0.120 flattens included routers into ``app.routes`` (``APIRoute``); newer
    versions keep them as included-router entries that expose ``effective_route_contexts``.
    Both are walked, so a test over this list sees every route.
    """
    found: set[tuple[str, str]] = set()

    def walk(routes: Any) -> None:
        for route in routes:
            contexts = getattr(route, "effective_route_contexts", None)
            if contexts is not None:
                for ctx in contexts():
                    original = ctx.original_route
                    if isinstance(original, APIRoute):
                        found.update((m, ctx.path_format) for m in (ctx.methods or ()) if m != "HEAD")
                continue
            if isinstance(route, APIRoute):
                found.update((m, route.path_format) for m in (route.methods or ()) if m != "HEAD")

    walk(app.routes)
    return sorted((m, p) for m, p in found if p.startswith("/api"))
