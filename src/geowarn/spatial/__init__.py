"""Spatial questions with identical answers on both backends.

``core`` holds pure, vectorised functions over numpy arrays and shapely geometries; ``queries``
answers the same questions against the database: with PostGIS (GiST indexes, ``ST_Covers``,
geography distances on the WGS84 spheroid) on PostgreSQL, and with bounding-box columns plus
shapely and pyproj's geodesic (GeographicLib, as PostGIS uses) on SQLite.
"""

from geowarn.spatial.core import assign_points_to_polygons, geodesic_distance_m, points_in_polygons

__all__ = ["assign_points_to_polygons", "geodesic_distance_m", "points_in_polygons"]
