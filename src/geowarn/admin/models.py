"""The administrative unit tree."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from geowarn.db import Base, BBoxMixin, Geometry, TimestampMixin


class AdminUnit(BBoxMixin, TimestampMixin, Base):
    """A province, city, county, township (乡镇/街道) or village (村/居), with an optional boundary."""

    __tablename__ = "admin_unit"

    code: Mapped[str] = mapped_column(String(12), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    level: Mapped[str] = mapped_column(String(10))
    parent_code: Mapped[str | None] = mapped_column(String(12), index=True)
    geom: Mapped[Any] = mapped_column(Geometry("MULTIPOLYGON"), nullable=True)

    __table_args__ = (
        Index("ix_admin_unit_name", "name"),
        Index("ix_admin_unit_geom", "geom", postgresql_using="gist").ddl_if(dialect="postgresql"),
    )
