"""Shared pieces of the monitoring routes: the app's one Ingestor and time parameters."""

from __future__ import annotations

import threading
from typing import Annotated, Any

from fastapi import Depends, Request

from geowarn.api.deps import DbDep
from geowarn.errors import InvalidInput
from geowarn.monitoring.ingest import Ingestor
from geowarn.monitoring.payloads import parse_time_ms
from geowarn.warning.engine import attach, attach_notify

_LOCK = threading.Lock()


def app_ingestor(request: Request, db: DbDep) -> Ingestor:
    """The Ingestor of this app (made on first use), so HTTP ingestion and registry edits share one device cache."""
    state: Any = request.app.state
    ingestor: Ingestor | None = getattr(state, "ingestor", None)
    if ingestor is None:
        with _LOCK:
            ingestor = getattr(state, "ingestor", None)
            if ingestor is None:
                ingestor = Ingestor(db)
                engine = getattr(state, "warning_engine", None)
                if engine is not None:
                    attach(engine, ingestor)
                elif getattr(state, "notify_engine", False) and db.backend == "postgresql":
                    attach_notify(db, ingestor)
                state.ingestor = ingestor
    return ingestor


IngestorDep = Annotated[Ingestor, Depends(app_ingestor)]


def when_ms(value: str, name: str) -> int:
    """A time parameter: ISO 8601 (China time when no offset is given) or epoch milliseconds."""
    try:
        return parse_time_ms(value)
    except (ValueError, OverflowError) as exc:
        raise InvalidInput(
            f"{name}: not an ISO 8601 time or epoch milliseconds: {value!r}",
            message_zh=f"{name} 时间格式无效（应为 ISO 8601 或毫秒时间戳）",
        ) from exc
