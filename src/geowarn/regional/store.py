"""The regional model against the register: load sites and risk zones of a unit, and turn a run
into the content of a product version (areas in longitude/latitude, the summary)."""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely
from pyproj import Transformer
from sqlalchemy import select
from sqlalchemy.orm import Session

from geowarn.auth.scope import unit_filter
from geowarn.inventory.models import HazardSite, RiskZone
from geowarn.regional.exposure import Sites, Zones
from geowarn.regional.pipeline import RegionalResult
from geowarn.warning.products import VersionContent

ACTIVE = ("registered", "under_treatment")  # sites still in the register that people live under


def load_sites(session: Session, unit_code: str) -> Sites:
    rows = session.execute(
        select(HazardSite.id, HazardSite.lon, HazardSite.lat, HazardSite.township_code, HazardSite.threatened_people,
               HazardSite.threatened_households)
        .where(unit_filter(HazardSite.unit_code, unit_code), HazardSite.status.in_(ACTIVE))
        .order_by(HazardSite.id)
    ).all()  # fmt: skip
    cols: list[Any] = list(zip(*rows, strict=True)) if rows else [[] for _ in range(6)]
    return Sites(np.asarray(cols[0], np.int64), np.asarray(cols[1], float), np.asarray(cols[2], float),
                 np.asarray([c or "" for c in cols[3]], dtype=object), np.asarray([n or 0 for n in cols[4]], np.int64),
                 np.asarray([n or 0 for n in cols[5]], np.int64))  # fmt: skip


def load_zones(session: Session, unit_code: str) -> Zones:
    rows = session.execute(
        select(RiskZone.id, RiskZone.geom, RiskZone.people, RiskZone.households, RiskZone.unit_code)
        .where(unit_filter(RiskZone.unit_code, unit_code))
        .order_by(RiskZone.id)
    ).all()
    ids = np.asarray([r[0] for r in rows], np.int64)
    people = np.asarray([r[2] or 0 for r in rows], np.int64)
    households = np.asarray([r[3] or 0 for r in rows], np.int64)
    # a zone registered to a township or village (9 or 12 digits) belongs to that township
    towns = np.asarray([r[4][:9] if r[4] and len(r[4]) >= 9 else "" for r in rows], dtype=object)
    return Zones(ids, [r[1] for r in rows], people, households, towns)


def load_townships(session: Session, unit_code: str) -> Zones | None:
    """The boundaries of the townships in scope (those with one), as zones whose township is their own
    code, so a township with no site or risk zone still gets its level from the cells it covers."""
    from geowarn.admin.models import AdminUnit

    rows = session.execute(
        select(AdminUnit.code, AdminUnit.geom)
        .where(AdminUnit.level == "township", AdminUnit.geom.is_not(None), unit_filter(AdminUnit.code, unit_code))
        .order_by(AdminUnit.code)
    ).all()
    if not rows:
        return None
    n = len(rows)
    codes = np.asarray([r[0] for r in rows], dtype=object)
    none = np.zeros(n, np.int64)  # no people or households of their own: those are the sites' and zones'
    return Zones(np.arange(n, dtype=np.int64), [r[1] for r in rows], none, none, codes)


def version_content(
    result: RegionalResult, sites: Sites | None = None, zones: Zones | None = None, *, valid_from_ms: int,
    valid_to_ms: int,
    inputs: dict[str, Any], message: str | None = None, simplify_deg: float = 0.0,
) -> VersionContent:  # fmt: skip
    """What a product version says, from a model run (areas reprojected to lon/lat when needed).

    ``sites`` and ``zones`` are those the run was given; their levels and counts are already in
    ``result.exposure`` (the parameters stay for the callers that pass them)."""
    areas = dict(result.polygons)
    if not result.grid.crs.is_geographic:
        to_ll = Transformer.from_crs(result.grid.crs, "EPSG:4326", always_xy=True)
        areas = {lv: shapely.transform(g, lambda xy: np.column_stack(to_ll.transform(xy[:, 0], xy[:, 1])))
                 for lv, g in areas.items()}  # fmt: skip
    if simplify_deg:
        areas = {lv: shapely.simplify(g, simplify_deg, preserve_topology=True) for lv, g in areas.items()}
    summary = result.summary()
    if result.exposure is not None:
        by_level = result.exposure.by_level
        summary["site_ids"] = {str(lv): e.site_ids.tolist() for lv, e in by_level.items()}
        summary["zone_ids"] = {str(lv): e.zone_ids.tolist() for lv, e in by_level.items()}
    summary["model"] = result.config.to_dict()
    summary["timings_s"] = {k: round(v, 4) for k, v in result.timings_s.items()}
    return VersionContent(valid_from_ms, valid_to_ms, areas=areas, areas_km2=dict(result.areas_km2), summary=summary,
                          inputs=inputs, message=message)  # fmt: skip
