"""Tables of the monitoring network.

Observation times are integer milliseconds since the Unix epoch (UTC) on both backends: bucket
arithmetic is identical SQL, bulk writes need no datetime conversion, and PostgreSQL partitions the
table by ranges of it (one partition a month, see ``monitoring.partitions``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from geowarn.db import Base, BBoxMixin, Geometry, TimestampMixin, utcnow


class MonitoringStation(BBoxMixin, TimestampMixin, Base):
    """A monitoring point (监测点) at a hazard site (or, later, an environmental site)."""

    __tablename__ = "monitoring_station"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    site_id: Mapped[int | None] = mapped_column(ForeignKey("hazard_site.id"), index=True)
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    geom: Mapped[Any] = mapped_column(Geometry("POINT"))
    unit_code: Mapped[str] = mapped_column(String(12), index=True)
    installed_on: Mapped[dt.date | None]
    status: Mapped[str] = mapped_column(String(16), default="active")

    devices: Mapped[list[Device]] = relationship(back_populates="station")

    __table_args__ = (
        Index("ix_monitoring_station_geom", "geom", postgresql_using="gist").ddl_if(dialect="postgresql"),
    )


class Device(TimestampMixin, Base):
    """A field device with its platform identity (deviceId) and a hashed key (apikey)."""

    __tablename__ = "device"

    id: Mapped[int] = mapped_column(primary_key=True)
    device_code: Mapped[str] = mapped_column(String(64), unique=True)  # the platform's deviceId
    station_id: Mapped[int] = mapped_column(ForeignKey("monitoring_station.id"), index=True)
    device_type: Mapped[str] = mapped_column(String(16))
    vendor: Mapped[str | None] = mapped_column(String(100))
    model: Mapped[str | None] = mapped_column(String(100))
    serial: Mapped[str | None] = mapped_column(String(100))
    apikey_hash: Mapped[str] = mapped_column(String(64))
    reporting_interval_s: Mapped[int] = mapped_column(Integer, default=600)
    installed_at: Mapped[dt.datetime | None]
    status: Mapped[str] = mapped_column(String(16), default="active")  # active / maintenance / retired
    last_seen_ms: Mapped[int | None] = mapped_column(BigInteger)
    battery: Mapped[float | None] = mapped_column(Float)
    signal: Mapped[float | None] = mapped_column(Float)
    unit_code: Mapped[str] = mapped_column(String(12), index=True)

    station: Mapped[MonitoringStation] = relationship(back_populates="devices")
    sensors: Mapped[list[Sensor]] = relationship(back_populates="device")


class Sensor(TimestampMixin, Base):
    """One measured quantity of a device (a payload channel), with its own QC settings."""

    __tablename__ = "sensor"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(100), unique=True)  # "<deviceId>.<channel>"
    device_id: Mapped[int] = mapped_column(ForeignKey("device.id"), index=True)
    sensor_type: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(32))
    quantity: Mapped[str] = mapped_column(String(40))
    unit: Mapped[str] = mapped_column(String(16))
    lon: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    depth_m: Mapped[float | None] = mapped_column(Float)
    qc_overrides: Mapped[dict[str, Any]] = mapped_column(default=dict)
    unit_code: Mapped[str] = mapped_column(String(12), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    device: Mapped[Device] = relationship(back_populates="sensors")


class Observation(Base):
    """One reading. The key (sensor, time) makes every write path idempotent.

    ``flag`` is the aggregate (worst) QARTOD flag; ``qc`` packs each test's flag in 4 bits.
    On SQLite the table is WITHOUT ROWID (clustered by its key); on PostgreSQL it is partitioned
    by month of ``t_ms`` with a BRIN index on time.
    """

    __tablename__ = "observation"

    sensor_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    t_ms: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    value: Mapped[float | None] = mapped_column(Float)
    flag: Mapped[int] = mapped_column(SmallInteger)
    qc: Mapped[int] = mapped_column(Integer, default=0)
    received_ms: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        Index("ix_observation_t_brin", "t_ms", postgresql_using="brin").ddl_if(dialect="postgresql"),
        {"sqlite_with_rowid": False, "postgresql_partition_by": "RANGE (t_ms)"},
    )


class SensorLatest(Base):
    """The latest reading of each sensor, kept in step on ingest: the map's one fast call.

    ``unit_code`` repeats the sensor's so the scoped query reads this table alone.
    """

    __tablename__ = "sensor_latest"

    sensor_id: Mapped[int] = mapped_column(ForeignKey("sensor.id", ondelete="CASCADE"), primary_key=True)
    unit_code: Mapped[str] = mapped_column(String(12), index=True)
    t_ms: Mapped[int] = mapped_column(BigInteger)
    value: Mapped[float | None] = mapped_column(Float)
    flag: Mapped[int] = mapped_column(SmallInteger)


class SensorQcState(Base):
    """What QC needs from a sensor's stored series, kept on ingest (``monitoring.qc_state``).

    Times are epoch ms of stored readings; NULL where the series has none yet. ``config_key`` is a
    digest of the QC config the state was built under (NULL: a placeholder row, to be built).
    """

    __tablename__ = "sensor_qc_state"

    sensor_id: Mapped[int] = mapped_column(ForeignKey("sensor.id", ondelete="CASCADE"), primary_key=True)
    config_key: Mapped[int | None] = mapped_column(BigInteger)
    max_t: Mapped[int | None] = mapped_column(BigInteger)  # latest stored time, any flag
    last_t: Mapped[int | None] = mapped_column(BigInteger)  # last usable time
    t1: Mapped[int | None] = mapped_column(BigInteger)  # last usable reading with a value ...
    v1: Mapped[float | None] = mapped_column(Float)
    q1: Mapped[int | None] = mapped_column(Integer)  # ... and its stored packed and aggregate flags
    f1: Mapped[int | None] = mapped_column(SmallInteger)
    t0: Mapped[int | None] = mapped_column(BigInteger)  # the one before it
    v0: Mapped[float | None] = mapped_column(Float)
    near_t: Mapped[int | None] = mapped_column(BigInteger)  # start of the flat run (steps below tolerance)
    near_lo: Mapped[float | None] = mapped_column(Float)
    near_hi: Mapped[float | None] = mapped_column(Float)
    exact_t: Mapped[int | None] = mapped_column(BigInteger)  # start of the run of exact repeats

    __table_args__ = ({"sqlite_with_rowid": False},)


class ObservationHourly(Base):
    """Hourly roll-up of each sensor's usable readings (flag good, not evaluated or suspect).

    Kept exact on ingest (counts, sums, extremes and the last reading merge incrementally; an hour
    whose readings change flag is recomputed from the raw rows), so hourly and daily charts over
    a year read 8,760 rows instead of half a million.
    """

    __tablename__ = "observation_hourly"

    sensor_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hour_ms: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    n: Mapped[int] = mapped_column(Integer)
    total: Mapped[float] = mapped_column(Float)
    vmin: Mapped[float] = mapped_column(Float)
    vmax: Mapped[float] = mapped_column(Float)
    last_t: Mapped[int] = mapped_column(BigInteger)
    last_v: Mapped[float] = mapped_column(Float)

    __table_args__ = ({"sqlite_with_rowid": False},)


class DeadLetter(Base):
    """A payload or reading that was not stored, with the raw bytes and the reason, for operators."""

    __tablename__ = "dead_letter"

    id: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    source: Mapped[str] = mapped_column(String(16))  # mqtt / http / file
    channel: Mapped[str | None] = mapped_column(String(300))  # MQTT topic, HTTP path or file name
    device_code: Mapped[str | None] = mapped_column(String(64), index=True)
    unit_code: Mapped[str | None] = mapped_column(String(12), index=True)
    reason: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(Text)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    payload_size: Mapped[int] = mapped_column(Integer)


class DeviceEvent(Base):
    """A device-health event (offline) with its start and, once it reports again, its end."""

    __tablename__ = "device_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("device.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    started_ms: Mapped[int] = mapped_column(BigInteger)
    ended_ms: Mapped[int | None] = mapped_column(BigInteger)
    unit_code: Mapped[str] = mapped_column(String(12), index=True)
    detail: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_device_event_open", "device_id", "kind", "ended_ms"),
        # one open event per device and kind, whichever process opens it (migration d5e9a1b3c7f4)
        Index("uq_device_event_open", "device_id", "kind", unique=True,
              sqlite_where=text("ended_ms IS NULL"), postgresql_where=text("ended_ms IS NULL")),
    )  # fmt: skip
