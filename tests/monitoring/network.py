from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import shapely

from geowarn.db import Database
from geowarn.inventory.models import HazardSite
from geowarn.monitoring.service import register_device, register_station

T0 = int(dt.datetime(2026, 7, 1, tzinfo=dt.UTC).timestamp() * 1000)
INSTALLED = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


@dataclass
class Network:
    keys: dict[str, str]  # device code -> apikey
    sensors: dict[str, int]  # sensor code -> id


def build_network(db: Database, n_rain: int = 2, n_gnss: int = 1, unit: str = "350922100") -> Network:
    keys: dict[str, str] = {}
    sensors: dict[str, int] = {}
    with db.write("test") as s:
        site = HazardSite(
            code=f"S-{unit}",
            name="溪口村后山滑坡",
            hazard_type="landslide",
            lon=118.9,
            lat=26.6,
            geom=shapely.Point(118.9, 26.6),
            unit_code=unit,
            township_code=unit[:9],
        )
        s.add(site)
        s.flush()
        st = register_station(
            s, code=f"ST-{unit}", name="溪口村监测点", lon=118.9, lat=26.6, unit_code=unit, site_id=site.id
        )
        for i in range(n_rain):
            r = register_device(
                s, st, device_type="RAIN", device_code=f"R{unit}{i}", reporting_interval_s=600, installed_at=INSTALLED
            )
            keys[r.device.device_code] = r.apikey
        for i in range(n_gnss):
            r = register_device(
                s, st, device_type="GP", device_code=f"G{unit}{i}", reporting_interval_s=1800, installed_at=INSTALLED
            )
            keys[r.device.device_code] = r.apikey
        s.flush()
        from sqlalchemy import select

        from geowarn.monitoring.models import Sensor

        sensors = {x.code: x.id for x in s.scalars(select(Sensor))}
    return Network(keys, sensors)
