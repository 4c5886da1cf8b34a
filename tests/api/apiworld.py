"""The API tests' world: a small county with two townships, records of every kind in each, users and an API client.

County 350922; township A 350922100 ("ALPHA" in every name) and township B 350922101 ("BETA" in
every name, so a leak of B into A's responses is visible in the body text).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import shapely
from fastapi.testclient import TestClient
from sqlalchemy import select

from geowarn.admin.models import AdminUnit
from geowarn.auth.service import create_user
from geowarn.db import Database
from geowarn.inventory.models import (
    HazardSite,
    Household,
    Organisation,
    Person,
    Resident,
    RiskZone,
    RiskZoneSite,
    Shelter,
    SiteStatusChange,
)
from geowarn.io.models import ImportBatch, ImportRejection
from geowarn.monitoring.models import (
    DeadLetter,
    DeviceEvent,
    Observation,
    ObservationHourly,
    Sensor,
    SensorLatest,
)
from geowarn.monitoring.partitions import ensure_partitions
from geowarn.monitoring.service import register_device, register_station
from geowarn.warning.models import Alert, Silence, open_key
from geowarn.warning.product_models import ProductVersion, RegionalProduct

COUNTY, TOWN_A, TOWN_B = "350922", "350922100", "350922101"
PASSWORD = "correct horse battery"


@dataclass
class Side:
    """The ids of one township's records."""

    unit: str
    org: int = 0
    person: int = 0
    site: int = 0
    zone: int = 0
    shelter: int = 0
    household: int = 0
    resident: int = 0
    batch: int = 0
    admin: int = 0
    station: int = 0
    device: int = 0
    sensor: int = 0  # the rain gauge's interval-rainfall sensor
    letter: int = 0
    event: int = 0
    alert: int = 0
    silence: int = 0
    product: int = 0
    device_key: str = ""
    users: dict[str, int] = field(default_factory=dict)


@dataclass
class World:
    a: Side
    b: Side
    county_admin: int
    unitless_letter: int = 0


#: The time of the world's readings (2026-07-01 08:00 China time).
T_OBS = 1_782_864_000_000


def _monitoring(s: Any, side: Side, tag: str, lon: float, lat: float) -> None:
    """A station at the site with one rain gauge, a reading, an open offline event and a dead letter."""
    st = register_station(
        s, code=f"{tag}-ST1", name=f"{tag}监测点", lon=lon, lat=lat, unit_code=side.unit, site_id=side.site
    )
    reg = register_device(s, st, device_type="RAIN", device_code=f"{tag}-D1", reporting_interval_s=600)
    sensor = s.scalars(select(Sensor).where(Sensor.code == f"{tag}-D1.value")).one()
    if s.get_bind().dialect.name == "postgresql":  # the month's partition, as the ingestion path makes it
        ensure_partitions(s.connection(), T_OBS, T_OBS)
    s.add(Observation(sensor_id=sensor.id, t_ms=T_OBS, value=1.5, flag=1, qc=0x1111, received_ms=T_OBS))
    s.add(SensorLatest(sensor_id=sensor.id, unit_code=side.unit, t_ms=T_OBS, value=1.5, flag=1))
    s.add(ObservationHourly(sensor_id=sensor.id, hour_ms=T_OBS, n=1, total=1.5, vmin=1.5, vmax=1.5, last_t=T_OBS,
                            last_v=1.5))  # fmt: skip
    event = DeviceEvent(device_id=reg.device.id, kind="offline", started_ms=T_OBS + 1_800_000, unit_code=side.unit)
    letter = DeadLetter(
        source="mqtt", channel=f"geowarn/{tag}-D1/up", device_code=f"{tag}-D1", unit_code=side.unit,
        reason="unauthorised", detail="apikey does not match", payload=f'{{"deviceId":"{tag}-D1"}}'.encode(),
        payload_size=len(tag) + 15,
    )  # fmt: skip
    s.add_all([event, letter])
    s.flush()
    side.station, side.device, side.sensor, side.device_key = st.id, reg.device.id, sensor.id, reg.apikey
    side.event, side.letter = event.id, letter.id
    _warnings(s, side, tag, lon, lat)


def _warnings(s: Any, side: Side, tag: str, lon: float, lat: float) -> None:
    """An open yellow alert at the site, a silence of its device and a draft regional product."""
    alert = Alert(
        kind="site_rule", site_id=side.site, rule_id="rain_24h", rule_name=f"{tag}降雨", unit_code=side.unit,
        status="open", level=2, max_level=2, opened_ms=T_OBS, updated_ms=T_OBS, reason={"tag": tag},
        open_key=open_key("site_rule", "rain_24h", side.site, None),
    )  # fmt: skip
    silence = Silence(device_id=side.device, unit_code=side.unit, start_ms=T_OBS, end_ms=T_OBS + 3_600_000,
                      reason=f"{tag}维护")  # fmt: skip
    product = RegionalProduct(code=f"{side.unit}-20260701-01", unit_code=side.unit, title=f"{tag}预警",
                              status="draft", created_ms=T_OBS)  # fmt: skip
    s.add_all([alert, silence, product])
    s.flush()
    s.add(ProductVersion(product_id=product.id, number=1, kind="initial", state="draft", level=1,
                         valid_from_ms=T_OBS, valid_to_ms=T_OBS + 86_400_000, created_ms=T_OBS,
                         message=f"{tag}预警", inputs={}, summary={}))  # fmt: skip
    s.flush()
    side.alert, side.silence, side.product = alert.id, silence.id, product.id


def _box(x0: float, y0: float, x1: float, y1: float) -> Any:
    return shapely.MultiPolygon([shapely.box(x0, y0, x1, y1)])


def _side(s: Any, unit: str, tag: str, x0: float) -> Side:
    side = Side(unit)
    org = Organisation(name=f"{tag}镇人民政府", department="government", unit_code=unit)
    s.add(org)
    s.flush()
    person = Person(
        name=f"{tag}张三",
        phone="13912345678" if tag == "ALPHA" else "13987654321",
        id_number="350922199001011234" if tag == "ALPHA" else "350922199202029876",
        roles=["responsible"],
        unit_code=unit,
        organisation_id=org.id,
        active=True,
    )
    s.add(person)
    s.flush()
    lon, lat = x0 + 0.05, 26.05
    site = HazardSite(
        code=f"{tag}-S1",
        name=f"{tag}滑坡",
        hazard_type="landslide",
        lon=lon,
        lat=lat,
        geom=shapely.Point(lon, lat),
        threatened_households=3,
        threatened_people=11,
        threatened_property_yuan=1_234_500,
        unit_code=unit,
        township_code=unit[:9],
        responsible_person_id=person.id,
        monitor_id=person.id,
        monitoring_mode="community",
        status="registered",
        status_since=dt.date(2021, 3, 1),
        extra={},
    )
    site.status_history.append(
        SiteStatusChange(
            from_status=None, to_status="registered", effective_on=dt.date(2021, 3, 1), reason="登记", by_user="seed"
        )
    )
    s.add(site)
    zone = RiskZone(
        code=f"{tag}-Z1",
        name=f"{tag}风险区",
        grade="high",
        geom=_box(x0 + 0.01, 26.01, x0 + 0.09, 26.09),
        households=3,
        people=11,
        unit_code=unit,
    )
    shelter = Shelter(
        code=f"{tag}-H1",
        name=f"{tag}避险点",
        lon=lon + 0.01,
        lat=lat,
        geom=shapely.Point(lon + 0.01, lat),
        capacity=50,
        unit_code=unit,
        contact_id=person.id,
    )
    s.add_all([zone, shelter])
    s.flush()
    s.add(RiskZoneSite(zone_id=zone.id, site_id=site.id))
    household = Household(
        code=f"{tag}-HH1",
        head_name=f"{tag}李四",
        phone="13811112222",
        id_number="350922198001015555",
        size=3,
        address=f"{tag}村1号",
        lon=lon,
        lat=lat + 0.001,
        geom=shapely.Point(lon, lat + 0.001),
        unit_code=unit,
        site_id=site.id,
        risk_zone_id=zone.id,
        shelter_id=shelter.id,
    )
    s.add(household)
    s.flush()
    resident = Resident(
        household_id=household.id,
        name=f"{tag}王五",
        phone="13733334444",
        id_number="350922201001016666",
        vulnerable=True,
        unit_code=unit,
    )
    batch = ImportBatch(
        actor="seed",
        kind="sites",
        filename=f"{tag.lower()}-ledger.csv",
        sha256="0" * 64,
        file_format="csv",
        unit_code=unit,
        rows_total=2,
        rows_created=1,
        rows_rejected=1,
        status="partial",
        summary=f"{tag} import",
    )
    s.add_all([resident, batch])
    s.flush()
    s.add(ImportRejection(batch_id=batch.id, row=2, field="经度", reason=f"{tag} bad", raw={"name": f"{tag}坏行"}))
    side.org, side.person, side.site, side.zone = org.id, person.id, site.id, zone.id
    side.shelter, side.household, side.resident, side.batch = shelter.id, household.id, resident.id, batch.id
    _monitoring(s, side, tag, lon, lat)
    low = tag.lower()
    for role in ("administrator", "operator", "monitor", "viewer"):
        u = create_user(s, f"{low}_{role}", PASSWORD, role, unit, display_name=f"{tag} {role}")
        side.users[role] = u.id
    side.admin = side.users["administrator"]
    return side


def build_world(db: Database) -> World:
    with db.write(actor="seed") as s:
        s.add_all(
            [
                AdminUnit(code="350900", name="宁德市", level="city", parent_code="350000"),
                AdminUnit(
                    code=COUNTY,
                    name="古田县",
                    level="county",
                    parent_code="350900",
                    geom=_box(119.0, 26.0, 119.2, 26.1),
                ),
                AdminUnit(
                    code=TOWN_A,
                    name="ALPHA甲镇",
                    level="township",
                    parent_code=COUNTY,
                    geom=_box(119.0, 26.0, 119.1, 26.1),
                ),
                AdminUnit(
                    code=TOWN_B,
                    name="BETA乙镇",
                    level="township",
                    parent_code=COUNTY,
                    geom=_box(119.1, 26.0, 119.2, 26.1),
                ),
                AdminUnit(code=TOWN_A + "001", name="ALPHA一村", level="village", parent_code=TOWN_A),
                AdminUnit(code=TOWN_B + "001", name="BETA一村", level="village", parent_code=TOWN_B),
            ]
        )
        s.flush()
        a = _side(s, TOWN_A, "ALPHA", 119.0)
        b = _side(s, TOWN_B, "BETA", 119.1)
        county = create_user(s, "county_admin", PASSWORD, "administrator", COUNTY)
        unitless = DeadLetter(
            source="http", channel="/api/ingest", device_code="NOPE-1", unit_code=None, reason="unknown_device",
            detail="deviceId 'NOPE-1' is not registered", payload=b'{"deviceId":"NOPE-1"}', payload_size=21,
        )  # fmt: skip
        s.add(unitless)
        s.flush()
        return World(a, b, county.id, unitless.id)


def login(client: TestClient, username: str, password: str = PASSWORD) -> dict[str, str]:
    r = client.post("/api/auth/token", data={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}
