"""Tables of regional weather-driven warning products (地质灾害气象风险预警产品).

A product is the warning for one unit and one period; each draft, update and lift is a new
``ProductVersion`` (every version kept, none edited once submitted). A version's warning areas are
polygons per level; sign-offs record who approved it for which department.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, SmallInteger, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from geowarn.db import Base, BBoxMixin, Geometry


class RegionalProduct(Base):
    """A regional warning from its first draft to its lifting."""

    __tablename__ = "regional_product"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    unit_code: Mapped[str] = mapped_column(String(12), index=True)
    title: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(12), default="draft")  # draft/review/issued/lifted/withdrawn
    level: Mapped[int] = mapped_column(SmallInteger, default=0)  # of the current (latest issued) version
    current_version: Mapped[int] = mapped_column(Integer, default=0)  # latest issued version number, 0 = none
    created_ms: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[str | None] = mapped_column(String(64))
    issued_ms: Mapped[int | None] = mapped_column(BigInteger)  # first issue
    lifted_ms: Mapped[int | None] = mapped_column(BigInteger)

    versions: Mapped[list[ProductVersion]] = relationship(back_populates="product", order_by="ProductVersion.number")


class ProductVersion(Base):
    """One version: its inputs, level grid summary, exposure, areas and workflow state."""

    __tablename__ = "product_version"

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("regional_product.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(8))  # initial / update / lift
    state: Mapped[str] = mapped_column(String(12), default="draft")  # draft/review/issued/superseded/rejected
    level: Mapped[int] = mapped_column(SmallInteger, default=0)
    valid_from_ms: Mapped[int] = mapped_column(BigInteger)
    valid_to_ms: Mapped[int] = mapped_column(BigInteger)
    message: Mapped[str | None] = mapped_column(Text)
    inputs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)  # per level and per township
    created_ms: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[str | None] = mapped_column(String(64))
    submitted_ms: Mapped[int | None] = mapped_column(BigInteger)
    issued_ms: Mapped[int | None] = mapped_column(BigInteger)
    issued_by: Mapped[str | None] = mapped_column(String(64))

    product: Mapped[RegionalProduct] = relationship(back_populates="versions")
    areas: Mapped[list[ProductArea]] = relationship(back_populates="version", order_by="ProductArea.level")
    signoffs: Mapped[list[ProductSignoff]] = relationship(back_populates="version", order_by="ProductSignoff.id")

    __table_args__ = (UniqueConstraint("product_id", "number", name="uq_product_version_number"),)


class ProductArea(BBoxMixin, Base):
    """The warning area of one level in a version (exclusive: cells at exactly that level)."""

    __tablename__ = "product_area"

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("product_version.id"), index=True)
    level: Mapped[int] = mapped_column(SmallInteger)
    area_km2: Mapped[float] = mapped_column(Float)
    geom: Mapped[Any] = mapped_column(Geometry("MULTIPOLYGON"))

    version: Mapped[ProductVersion] = relationship(back_populates="areas")

    __table_args__ = (Index("ix_product_area_geom", "geom", postgresql_using="gist").ddl_if(dialect="postgresql"),)


class ProductSignoff(Base):
    """A department's approval (or rejection) of a version under review."""

    __tablename__ = "product_signoff"

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("product_version.id"), index=True)
    department: Mapped[str] = mapped_column(String(24))  # natural_resources / weather
    decision: Mapped[str] = mapped_column(String(8))  # approve / reject
    username: Mapped[str] = mapped_column(String(64))
    t_ms: Mapped[int] = mapped_column(BigInteger)
    comment: Mapped[str | None] = mapped_column(Text)

    version: Mapped[ProductVersion] = relationship(back_populates="signoffs")

    __table_args__ = (UniqueConstraint("version_id", "department", name="uq_product_signoff_department"),)
