"""Storage: one SQLAlchemy metadata, two backends (SQLite embedded, PostgreSQL/PostGIS)."""

from geowarn.db.base import Base, BBoxMixin, TimestampMixin, utcnow
from geowarn.db.engine import Database, get_database, set_database
from geowarn.db.types import Geometry

__all__ = [
    "BBoxMixin",
    "Base",
    "Database",
    "Geometry",
    "TimestampMixin",
    "get_database",
    "set_database",
    "utcnow",
]
