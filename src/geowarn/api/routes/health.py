"""``GET /api/health``: liveness, backend, version and schema revision (no authentication)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

import geowarn
from geowarn.api.deps import DbDep
from geowarn.api.schemas.admin import Health

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
def health(db: DbDep) -> Health:
    try:
        with db.read() as s:
            revision = s.execute(text("SELECT version_num FROM alembic_version")).scalar()
        status = "ok"
    except SQLAlchemyError:
        revision, status = None, "degraded"
    return Health(status=status, backend=db.backend, version=geowarn.__version__, migration=revision)
