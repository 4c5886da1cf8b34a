"""``GET /api/stats``: the register's headline figures for the caller's unit (隐患点统计)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from geowarn.api.deps import Reader, ReadSession
from geowarn.inventory.stats import compute_stats

router = APIRouter(tags=["stats"])


@router.get("/stats")
def register_stats(session: ReadSession, user: Reader) -> dict[str, Any]:
    return compute_stats(session, user.unit_code)
