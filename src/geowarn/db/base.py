"""Declarative base and the mixins every table shares."""

from __future__ import annotations

import datetime as dt
from typing import Any

import shapely
from sqlalchemy import JSON, DateTime, Float, MetaData, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JsonType = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {
        dt.datetime: DateTime(timezone=True),
        dict[str, Any]: JsonType,
        list[str]: JsonType,
    }


class TimestampMixin:
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class BBoxMixin:
    """Bounding-box columns kept in step with ``geom``: SQLite's spatial prefilter (no SpatiaLite)."""

    minx: Mapped[float | None] = mapped_column(Float)
    miny: Mapped[float | None] = mapped_column(Float)
    maxx: Mapped[float | None] = mapped_column(Float)
    maxy: Mapped[float | None] = mapped_column(Float)


def bbox_of(geom: Any) -> tuple[float | None, float | None, float | None, float | None]:
    if geom is None or shapely.is_empty(geom):
        return (None, None, None, None)
    x0, y0, x1, y1 = shapely.bounds(geom).tolist()
    return (x0, y0, x1, y1)


@event.listens_for(BBoxMixin, "before_insert", propagate=True)
@event.listens_for(BBoxMixin, "before_update", propagate=True)
def _sync_bbox(mapper: Any, connection: Any, target: Any) -> None:
    target.minx, target.miny, target.maxx, target.maxy = bbox_of(getattr(target, "geom", None))
