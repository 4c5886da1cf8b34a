"""A geometry column that is PostGIS ``geometry(T, 4326)`` on PostgreSQL and WKB on SQLite.

Python sees shapely geometries on both backends. On PostgreSQL values cross the wire as WKB
(``ST_GeomFromWKB`` / ``ST_AsBinary``), so the column holds a real PostGIS geometry that GiST
indexes and PostGIS functions work on. The pyenv Python here cannot load SpatiaLite, so on SQLite
the column is a plain BLOB and spatial predicates are finished with shapely (see
``geowarn.spatial``).
"""

from __future__ import annotations

from typing import Any

import geoalchemy2  # noqa: F401  (teaches SQLAlchemy to reflect PostGIS columns)
import shapely
from sqlalchemy import LargeBinary
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement
from sqlalchemy.types import TypeDecorator, UserDefinedType

SRID = 4326


class PostgisGeometry(UserDefinedType[Any]):
    """DDL-only PostGIS type: ``geometry(<type>, 4326)``."""

    cache_ok = True

    def __init__(self, geometry_type: str = "GEOMETRY") -> None:
        self.geometry_type = geometry_type.upper()

    def get_col_spec(self, **kw: Any) -> str:
        return f"geometry({self.geometry_type},{SRID})"


class _FromWkb(FunctionElement[Any]):
    inherit_cache = True
    name = "geowarn_from_wkb"


class _AsWkb(FunctionElement[Any]):
    inherit_cache = True
    name = "geowarn_as_wkb"


@compiles(_FromWkb)
def _from_wkb_default(element: _FromWkb, compiler: Any, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(_FromWkb, "postgresql")
def _from_wkb_pg(element: _FromWkb, compiler: Any, **kw: Any) -> str:
    return f"ST_GeomFromWKB({compiler.process(element.clauses, **kw)}, {SRID})"


@compiles(_AsWkb)
def _as_wkb_default(element: _AsWkb, compiler: Any, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(_AsWkb, "postgresql")
def _as_wkb_pg(element: _AsWkb, compiler: Any, **kw: Any) -> str:
    return f"ST_AsBinary({compiler.process(element.clauses, **kw)})"


class Geometry(TypeDecorator[Any]):
    """Shapely geometry in WGS84 / CGCS2000 longitude-latitude (EPSG:4326 axis order x=lon, y=lat)."""

    impl = LargeBinary
    cache_ok = True

    def __init__(self, geometry_type: str = "GEOMETRY") -> None:
        super().__init__()
        self.geometry_type = geometry_type.upper()

    def load_dialect_impl(self, dialect: Any) -> Any:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(PostgisGeometry(self.geometry_type))
        return dialect.type_descriptor(LargeBinary())

    def bind_expression(self, bindvalue: Any) -> ColumnElement[Any]:
        fn = _FromWkb(bindvalue)
        fn.type = self
        return fn

    def column_expression(self, col: Any) -> ColumnElement[Any]:
        fn = _AsWkb(col)
        fn.type = self
        return fn

    def process_bind_param(self, value: Any, dialect: Any) -> bytes | None:
        if value is None:
            return None
        if isinstance(value, bytes | bytearray | memoryview):
            return bytes(value)
        return shapely.to_wkb(value, output_dimension=2)

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        if value is None:
            return None
        return shapely.from_wkb(bytes(value))

    def __repr__(self) -> str:
        return f"Geometry({self.geometry_type!r})"

    def copy(self, **kw: Any) -> Geometry:
        return Geometry(self.geometry_type)
