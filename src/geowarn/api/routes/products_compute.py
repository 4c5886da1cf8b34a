"""``POST /api/products/compute``: upload rainfall grids, run the regional model, get a draft.

The first ``rain`` file is the warning period's rain (the next 24 hours' forecast, or the past 24
hours observed); the following ones are the antecedent days, newest first. An optional
``susceptibility`` raster holds grades 0-3 (not / low / medium / high), or GeoJSON polygons carry
them in a ``grade`` property (high/medium/low/none or 高易发/中易发/低易发/不易发); without it every cell is
treated as highly susceptible. The draft lists the areas per level and, per level and township,
the sites, risk zones, people and households in them; it then goes through the usual sign-off.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, File, Form, Response, UploadFile
from sqlalchemy import func, select

from geowarn.admin.models import AdminUnit
from geowarn.api.deps import WriteSession, require
from geowarn.api.routes.monitoring_data import json_response
from geowarn.api.routes.products import product_json
from geowarn.api.routes.transfer import _declared_size_within_limit, _save_upload
from geowarn.api.scoping import check_unit
from geowarn.auth.models import User
from geowarn.auth.roles import Permission
from geowarn.config import Settings
from geowarn.errors import InvalidInput
from geowarn.monitoring.models import Device, MonitoringStation, Sensor
from geowarn.monitoring.queries import rainfall_windows
from geowarn.regional.grid import Grid
from geowarn.regional.idw import idw
from geowarn.regional.model import ThresholdTable, susceptibility_from_geojson
from geowarn.regional.pipeline import run_regional
from geowarn.regional.readers import read_grid
from geowarn.regional.store import load_sites, load_townships, load_zones, version_content
from geowarn.warning import products as wf
from geowarn.warning.models import now_ms
from geowarn.warning.ruleset import QC_MAX_FLAG

router = APIRouter(prefix="/products", tags=["warning: regional products"])
CELL_DEG = 0.01


def gauge_grids(session: Any, unit: str, now: int) -> list[Grid]:
    """Daily rain of the last three days at the unit's gauges, interpolated (IDW) over its extent."""
    bounds = session.scalar(select(AdminUnit.geom).where(AdminUnit.code == unit))
    if bounds is None:
        raise InvalidInput(f"unit {unit} has no boundary to grid", message_zh=f"行政区 {unit} 没有边界，无法插值")
    west, south, east, north = bounds.bounds
    cols, rows = int((east - west) / CELL_DEG) + 2, int((north - south) / CELL_DEG) + 2
    like = Grid.regular(west - CELL_DEG / 2, north + CELL_DEG / 2, CELL_DEG, np.zeros((rows, cols)))
    lon_col, lat_col = (
        func.coalesce(Sensor.lon, MonitoringStation.lon),
        func.coalesce(Sensor.lat, MonitoringStation.lat),
    )
    located = session.execute(
        select(Sensor.id, lon_col, lat_col)
        .join(Device, Device.id == Sensor.device_id)
        .join(MonitoringStation, MonitoringStation.id == Device.station_id)
        .where(Sensor.sensor_type == "RAIN", Sensor.channel == "value")
    ).all()  # fmt: skip
    where = {int(i): (float(x), float(y)) for i, x, y in located}
    grids = []
    for day in range(3):
        # good and not-evaluated readings only, as the site rules read them: a suspect gauge reading
        # (a spike, a stuck counter) must not paint a warning area
        totals = rainfall_windows(session.connection(), now - day * 86_400_000, unit, max_flag=QC_MAX_FLAG)
        ids = [i for i in totals if i in where]
        if not ids and day == 0:
            raise InvalidInput("no rain gauge has reported in the last 24 hours",
                               message_zh="近24小时没有雨量站数据，无法插值")  # fmt: skip
        if not ids:  # an antecedent day without readings counts as unknown (0 in R_a)
            grids.append(Grid(np.full(like.shape, np.nan), like.transform, like.crs))
            continue
        lon, lat = [where[i][0] for i in ids], [where[i][1] for i in ids]
        grids.append(idw(lon, lat, [totals[i][24] for i in ids], like))
    return grids


Warner = Annotated[User, require(Permission.WARN)]
HOUR_MS = 3_600_000


@router.post("/compute", status_code=201)
def compute_product(
    session: WriteSession,
    user: Warner,
    settings: Annotated[Settings, Depends(_declared_size_within_limit)],
    rain: Annotated[
        list[UploadFile] | None, File(description="rain grids: warning period first, then past days")
    ] = None,
    susceptibility: Annotated[
        UploadFile | None, File(description="grades 0-3 raster on the same grid, or GeoJSON polygons with a 'grade'")
    ] = None,
    unit_code: Annotated[str | None, Form()] = None,
    title: Annotated[str | None, Form(max_length=200)] = None,
    k: Annotated[float, Form(gt=0, lt=1)] = 0.8,
    valid_hours: Annotated[int, Form(ge=1, le=72)] = 24,
    thresholds: Annotated[str | None, Form(description='JSON, e.g. {"high": [50, 70, 110, 160]}')] = None,
) -> Response:
    unit = unit_code or user.unit_code
    check_unit(session, user, unit)
    if rain and len(rain) > 10:
        raise InvalidInput("give 1 to 10 rain grids", message_zh="请上传1至10个降雨栅格")
    table = ThresholdTable()
    if thresholds:
        try:
            table = ThresholdTable.from_dict(json.loads(thresholds))
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"thresholds: {exc}", message_zh="阈值表格式错误") from None
    workdir = Path(tempfile.mkdtemp(prefix="geowarn-grids-"))
    try:
        grids, names = [], []
        if not rain:  # no grids: interpolate the unit's rain gauges (last three days)
            grids = gauge_grids(session, unit, now_ms())
            names = ["rain gauges (IDW), past 24 h", "rain gauges (IDW), 24-48 h", "rain gauges (IDW), 48-72 h"]
        for i, upload in enumerate(rain or []):
            (workdir / str(i)).mkdir()
            path = _save_upload(upload, workdir / str(i), settings.max_upload_mb)
            grids.append(read_grid(path))
            names.append(upload.filename or f"rain-{i}")
        sus = None
        if susceptibility is not None:
            (workdir / "s").mkdir()
            path = _save_upload(susceptibility, workdir / "s", settings.max_upload_mb)
            if path.suffix.lower() in (".geojson", ".json"):
                try:
                    doc = json.loads(path.read_bytes())
                except ValueError:
                    raise InvalidInput("susceptibility: not JSON", message_zh="易发性分区不是有效的 JSON") from None
                sus = susceptibility_from_geojson(doc, grids[0])
            else:
                sus = read_grid(path)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    sites, zones, towns = load_sites(session, unit), load_zones(session, unit), load_townships(session, unit)
    result = run_regional(grids, susceptibility=sus, table=table, k=k, sites=sites, zones=zones,
                          township_boundaries=towns)  # fmt: skip
    now = now_ms()
    inputs: dict[str, Any] = {
        "rain_files": names,
        "k": k,
        "susceptibility": susceptibility.filename if susceptibility else None,
        "thresholds": {str(g): list(v) for g, v in table.by_grade.items()},
    }
    content = version_content(result, sites, zones, valid_from_ms=now, valid_to_ms=now + valid_hours * HOUR_MS,
                              inputs=inputs, simplify_deg=0.0005)  # fmt: skip
    stamp = time.strftime("%Y年%m月%d日%H时", time.localtime(now / 1000))
    product = wf.create(session, user, unit, title or f"地质灾害气象风险预警（{stamp}）", content, now)
    return json_response(product_json(product, versions=True), status_code=201)
