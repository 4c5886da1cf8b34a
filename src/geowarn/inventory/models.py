"""Tables of the register.

Every record carries ``unit_code``: the most precise administrative unit it belongs to (a village
where known, else the township, else the county). Scoping compares it by prefix.
Nothing in the register is deleted: a site leaves through its status lifecycle and every change
of status is kept in ``site_status_change``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Boolean, Date, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from geowarn.db import Base, BBoxMixin, Geometry, TimestampMixin, utcnow


class Organisation(TimestampMixin, Base):
    """A department or government body of a unit (县自然资源局, 某镇人民政府…)."""

    __tablename__ = "organisation"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    department: Mapped[str] = mapped_column(String(32))
    unit_code: Mapped[str] = mapped_column(String(12), index=True)


class Person(TimestampMixin, Base):
    """A responsible person, monitor, duty official or department contact."""

    __tablename__ = "person"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    phone: Mapped[str | None] = mapped_column(String(20))
    id_number: Mapped[str | None] = mapped_column(String(18))
    title: Mapped[str | None] = mapped_column(String(100))
    roles: Mapped[list[str]] = mapped_column(default=list)
    unit_code: Mapped[str] = mapped_column(String(12), index=True)
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    organisation: Mapped[Organisation | None] = relationship()

    __table_args__ = (Index("ix_person_name_phone", "name", "phone"),)


class HazardSite(BBoxMixin, TimestampMixin, Base):
    """A registered geological-hazard site (地质灾害隐患点) or steep cut slope (高陡边坡)."""

    __tablename__ = "hazard_site"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    hazard_type: Mapped[str] = mapped_column(String(24))
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    geom: Mapped[Any] = mapped_column(Geometry("POINT"))
    body_geom: Mapped[Any] = mapped_column(Geometry("MULTIPOLYGON"), nullable=True)
    danger_zone_geom: Mapped[Any] = mapped_column(Geometry("MULTIPOLYGON"), nullable=True)
    scale: Mapped[str | None] = mapped_column(String(12))
    volume_m3: Mapped[float | None] = mapped_column(Float)
    danger_grade: Mapped[str | None] = mapped_column(String(12))
    stability: Mapped[str | None] = mapped_column(String(16))
    threatened_households: Mapped[int] = mapped_column(Integer, default=0)
    threatened_people: Mapped[int] = mapped_column(Integer, default=0)
    # Kept in whole yuan so sums are exact on both backends; ledgers and the API speak 万元.
    threatened_property_yuan: Mapped[int] = mapped_column(BigInteger, default=0)
    unit_code: Mapped[str] = mapped_column(String(12))
    township_code: Mapped[str | None] = mapped_column(String(9))
    location_text: Mapped[str | None] = mapped_column(String(300))
    responsible_person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    monitor_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    monitoring_mode: Mapped[str] = mapped_column(String(16), default="community")
    status: Mapped[str] = mapped_column(String(20), default="registered")
    status_since: Mapped[dt.date | None] = mapped_column(Date)
    registered_on: Mapped[dt.date | None] = mapped_column(Date)
    remarks: Mapped[str | None] = mapped_column(Text)
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    version: Mapped[int] = mapped_column(Integer, default=1)

    responsible_person: Mapped[Person | None] = relationship(foreign_keys=[responsible_person_id])
    monitor: Mapped[Person | None] = relationship(foreign_keys=[monitor_id])
    status_history: Mapped[list[SiteStatusChange]] = relationship(back_populates="site", order_by="SiteStatusChange.at")

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        Index("ix_hazard_site_unit_code", "unit_code"),
        Index("ix_hazard_site_lon_lat", "lon", "lat"),
        Index("ix_hazard_site_geom", "geom", postgresql_using="gist").ddl_if(dialect="postgresql"),
        Index("ix_hazard_site_dz_geom", "danger_zone_geom", postgresql_using="gist").ddl_if(dialect="postgresql"),
    )


class SiteStatusChange(Base):
    """One step of a site's lifecycle: who moved it, when, why, on what evidence."""

    __tablename__ = "site_status_change"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("hazard_site.id"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    effective_on: Mapped[dt.date] = mapped_column(Date)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    reason: Mapped[str] = mapped_column(Text)
    evidence: Mapped[str | None] = mapped_column(Text)
    by_user: Mapped[str | None] = mapped_column(String(64))

    site: Mapped[HazardSite] = relationship(back_populates="status_history")


class RiskZone(BBoxMixin, TimestampMixin, Base):
    """A graded risk zone (风险区): managed beside the sites (隐患点+风险区双控)."""

    __tablename__ = "risk_zone"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    grade: Mapped[str] = mapped_column(String(8))
    geom: Mapped[Any] = mapped_column(Geometry("MULTIPOLYGON"))
    households: Mapped[int] = mapped_column(Integer, default=0)
    people: Mapped[int] = mapped_column(Integer, default=0)
    unit_code: Mapped[str] = mapped_column(String(12), index=True)
    remarks: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_risk_zone_geom", "geom", postgresql_using="gist").ddl_if(dialect="postgresql"),
        Index("ix_risk_zone_bbox", "minx", "maxx", "miny", "maxy"),
    )


class RiskZoneSite(Base):
    """Which sites lie in which risk zone (computed by point-in-polygon, or declared)."""

    __tablename__ = "risk_zone_site"

    zone_id: Mapped[int] = mapped_column(ForeignKey("risk_zone.id", ondelete="CASCADE"), primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("hazard_site.id", ondelete="CASCADE"), primary_key=True)


class Shelter(BBoxMixin, TimestampMixin, Base):
    """A shelter or assembly point (避险点/避难场所) with its capacity."""

    __tablename__ = "shelter"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    geom: Mapped[Any] = mapped_column(Geometry("POINT"))
    capacity: Mapped[int] = mapped_column(Integer, default=0)
    address: Mapped[str | None] = mapped_column(String(300))
    unit_code: Mapped[str] = mapped_column(String(12), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))

    __table_args__ = (Index("ix_shelter_geom", "geom", postgresql_using="gist").ddl_if(dialect="postgresql"),)


class Household(BBoxMixin, TimestampMixin, Base):
    """A threatened household (受威胁户): where it lives, what threatens it, where it goes."""

    __tablename__ = "household"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    head_name: Mapped[str] = mapped_column(String(50))
    phone: Mapped[str | None] = mapped_column(String(20))
    id_number: Mapped[str | None] = mapped_column(String(18))
    size: Mapped[int] = mapped_column(Integer, default=1)
    address: Mapped[str | None] = mapped_column(String(300))
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    geom: Mapped[Any] = mapped_column(Geometry("POINT"))
    unit_code: Mapped[str] = mapped_column(String(12), index=True)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("hazard_site.id"), index=True)
    risk_zone_id: Mapped[int | None] = mapped_column(ForeignKey("risk_zone.id"), index=True)
    shelter_id: Mapped[int | None] = mapped_column(ForeignKey("shelter.id"), index=True)

    residents: Mapped[list[Resident]] = relationship(back_populates="household")

    __table_args__ = (Index("ix_household_geom", "geom", postgresql_using="gist").ddl_if(dialect="postgresql"),)


class Resident(TimestampMixin, Base):
    """A member of a threatened household."""

    __tablename__ = "resident"

    id: Mapped[int] = mapped_column(primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(50))
    phone: Mapped[str | None] = mapped_column(String(20))
    id_number: Mapped[str | None] = mapped_column(String(18))
    relation: Mapped[str | None] = mapped_column(String(20))
    vulnerable: Mapped[bool] = mapped_column(Boolean, default=False)  # elderly, disabled, child
    unit_code: Mapped[str] = mapped_column(String(12), index=True)

    household: Mapped[Household] = relationship(back_populates="residents")
