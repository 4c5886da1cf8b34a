"""GeoJSON (RFC 7946) in and out: shapely geometries ↔ dicts, FeatureCollections."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import shapely
from shapely.geometry import mapping, shape

from geowarn.errors import InvalidInput


def to_geojson(geom: Any) -> dict[str, Any] | None:
    if geom is None:
        return None
    if isinstance(geom, dict):
        return geom
    return dict(mapping(geom))


def _bad(reason: str) -> InvalidInput:
    return InvalidInput(f"invalid GeoJSON geometry: {reason}", message_zh=f"GeoJSON 几何无效：{reason}")


def from_geojson(value: dict[str, Any], *, allowed: tuple[str, ...]) -> Any:
    """A shapely geometry from a GeoJSON geometry or Feature, checked for type, range and validity."""
    if value.get("type") == "Feature":
        value = value.get("geometry") or {}
    try:
        geom = shape(value)
    except Exception as exc:  # shapely raises several types for malformed input
        raise _bad(str(exc)) from None
    if geom.geom_type not in allowed:
        raise _bad(f"expected {' or '.join(allowed)}, got {geom.geom_type}")
    if geom.is_empty:
        raise _bad("empty geometry")
    x0, y0, x1, y1 = geom.bounds
    if x0 < -180 or x1 > 180 or y0 < -90 or y1 > 90:
        raise _bad("coordinates must be longitude, latitude in degrees (EPSG:4326 / CGCS2000)")
    if not geom.is_valid:
        raise _bad(shapely.is_valid_reason(geom))
    return geom


def to_multipolygon(value: dict[str, Any] | None) -> Any:
    """A MultiPolygon from a GeoJSON Polygon or MultiPolygon (None stays None)."""
    if value is None:
        return None
    geom = from_geojson(value, allowed=("Polygon", "MultiPolygon"))
    return shapely.MultiPolygon([geom]) if geom.geom_type == "Polygon" else geom


def feature_collection(features: Iterable[dict[str, Any]], **members: Any) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features), **members}


def feature(geometry: Any, properties: dict[str, Any], ident: Any = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "Feature", "geometry": to_geojson(geometry), "properties": properties}
    if ident is not None:
        out["id"] = ident
    return out
