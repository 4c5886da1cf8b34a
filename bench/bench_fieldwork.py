"""Community monitoring in the field (issue 7): the two figures of the issue.

1. Zero-report status of 1,660 counties × 20 townships (33,200 townships) for a day: goal < 200 ms
   on PostgreSQL. All counties are placed under one province code so a single status query (a
   province user's view) covers them all; 92 % of townships have reported, 3 % are in an orange
   response (open alerts), one county is under a red regional product.
2. Household cards (避险明白卡) for a township of 5,000 households with 3 residents each:
   goal < 30 s; reading from the database and rendering are timed apart, memory reported
   (tracemalloc peak during the run and the process's peak RSS).

Run: .venv/bin/python -m bench.bench_fieldwork [--small] [--backend postgresql|sqlite|both]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import time
import uuid
from typing import Any

import shapely
from sqlalchemy import insert

from bench.common import fresh_database, machine, median_time, peak_rss_mib, table
from geowarn.admin.models import AdminUnit
from geowarn.auth.scope import unit_filter
from geowarn.db import Database
from geowarn.fieldwork import card_data, cards, zero_reports
from geowarn.fieldwork.domain import CHINA, ZeroReportCalendar
from geowarn.fieldwork.models import ZeroReport
from geowarn.inventory.models import HazardSite, Household, Person, Resident, Shelter
from geowarn.warning.models import Alert
from geowarn.warning.product_models import ProductVersion, RegionalProduct

DAY = dt.date(2026, 7, 1)
PROVINCE = "350000"
CAL = ZeroReportCalendar(season_start="04-01", season_end="10-15")


def _counties(n: int) -> list[str]:
    """``n`` county codes of one province: cities 3501…, counties 01…20 in each."""
    out = []
    city = 1
    while len(out) < n:
        out += [f"35{city:02d}{c:02d}" for c in range(1, 21)][: n - len(out)]
        city += 1
    return out


def seed_townships(db: Database, n_counties: int, per_county: int, rng: random.Random) -> int:
    counties = _counties(n_counties)
    units: list[dict[str, Any]] = [{"code": PROVINCE, "name": "福建省", "level": "province", "parent_code": None}]
    units += [{"code": c[:4] + "00", "name": f"{c[:4]}市", "level": "city", "parent_code": PROVINCE}
              for c in sorted({c[:4] for c in counties})]  # fmt: skip
    units += [{"code": c, "name": f"{c}县", "level": "county", "parent_code": c[:4] + "00"} for c in counties]
    towns = [f"{c}{t:03d}" for c in counties for t in range(100, 100 + per_county)]
    units += [{"code": t, "name": f"{t}镇", "level": "township", "parent_code": t[:6]} for t in towns]
    now = dt.datetime.now(dt.UTC)
    for u in units:
        u.update(created_at=now, updated_at=now)
    reports = [
        {"client_uuid": str(uuid.UUID(int=rng.getrandbits(128))), "unit_code": t, "report_date": DAY, "slot": 1,
         "nothing_new": True, "event_ids": [], "submitted_at": now, "submitted_by": "bench", "late": False}
        for t in towns if rng.random() < 0.92
    ]  # fmt: skip
    alerts = [
        {"kind": "site_rule", "rule_id": "rain", "unit_code": t + "001", "status": "open", "level": 3, "max_level": 3,
         "opened_ms": 0, "updated_ms": 0, "reason": {}, "flaps": 0, "open_key": f"bench:{t}"}
        for t in towns if rng.random() < 0.03
    ]  # fmt: skip
    lo = int(dt.datetime.combine(DAY, dt.time(), CHINA).timestamp() * 1000)
    with db.write(actor="bench") as s:
        for chunk in range(0, len(units), 5000):
            s.execute(insert(AdminUnit), units[chunk : chunk + 5000])
        for chunk in range(0, len(reports), 5000):
            s.execute(insert(ZeroReport), reports[chunk : chunk + 5000])
        if alerts:
            s.execute(insert(Alert), alerts)
        p = RegionalProduct(code="BENCH-RED", unit_code=counties[0], title="红色预警", status="issued", level=4,
                            current_version=1, created_ms=lo)  # fmt: skip
        s.add(p)
        s.flush()
        s.add(ProductVersion(product_id=p.id, number=1, kind="initial", state="issued", level=4, valid_from_ms=lo,
                             valid_to_ms=lo + 86_400_000, created_ms=lo, inputs={}, summary={}))  # fmt: skip
    if db.is_postgres:  # a settled database, as autovacuum leaves it
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE admin_unit, zero_report, alert")
    return len(towns)


def bench_status(backend: str, n_counties: int, per_county: int) -> list[Any]:
    rng = random.Random(7)
    with fresh_database(backend) as db:
        n = seed_townships(db, n_counties, per_county, rng)
        now = dt.datetime.combine(DAY, dt.time(18), CHINA)

        def run() -> zero_reports.DayStatus:
            with db.read() as s:
                return zero_reports.status(s, PROVINCE, DAY, CAL, 3, now)

        seconds, state = median_time(run, repeat=7)

        def county() -> zero_reports.DayStatus:
            with db.read() as s:
                return zero_reports.status(s, _counties(1)[0], DAY, CAL, 3, now)

        county_s, _ = median_time(county, repeat=7)
    return [backend, f"{n_counties:,} × {per_county} = {n:,}", f"{seconds * 1000:.0f} ms",
            f"{county_s * 1000:.1f} ms", f"{len(state.missing):,}", state.elevated]  # fmt: skip


def seed_households(db: Database, n: int, rng: random.Random) -> str:
    town = "350922100"
    now = dt.datetime.now(dt.UTC)
    with db.write(actor="bench") as s:
        s.add_all([
            AdminUnit(code="350922", name="古田县", level="county", parent_code="350900"),
            AdminUnit(code=town, name="大桥镇", level="township", parent_code="350922"),
        ])  # fmt: skip
        people = [Person(name=f"监测员{i}", phone=f"139{i:08d}", roles=["monitor"], unit_code=town) for i in range(60)]
        s.add_all(people)
        s.flush()
        shelters = [Shelter(code=f"SH{i}", name=f"第{i}避险点", lon=119.0, lat=26.0, geom=shapely.Point(119.0, 26.0),
                            capacity=300, address=f"大桥镇{i}号", unit_code=town, contact_id=people[i].id)
                    for i in range(20)]  # fmt: skip
        sites = [HazardSite(code=f"S{i:03d}", name=f"大桥镇{i}号滑坡", hazard_type="landslide", lon=119.0, lat=26.0,
                            geom=shapely.Point(119.0, 26.0), unit_code=town, township_code=town,
                            monitor_id=people[i % 60].id, responsible_person_id=people[(i + 1) % 60].id,
                            extra={"evacuation_route": f"沿{i}号村道向东撤离"})
                 for i in range(50)]  # fmt: skip
        s.add_all(shelters + sites)
        s.flush()
        rows = [{"code": f"HH{i:05d}", "head_name": f"户主{i}", "phone": f"138{i:08d}", "size": 3,
                 "address": f"大桥镇某村{i}号", "lon": 119.0, "lat": 26.0, "geom": shapely.Point(119.0, 26.0),
                 "unit_code": town + "001",
                 "site_id": sites[i % 50].id, "shelter_id": shelters[i % 20].id, "created_at": now,
                 "updated_at": now} for i in range(n)]  # fmt: skip
        s.execute(insert(Household), rows)
        ids = [h for (h,) in s.execute(Household.__table__.select().with_only_columns(Household.id))]
        residents = [{"household_id": h, "name": f"成员{h}-{k}", "relation": ("户主", "配偶", "子女")[k],
                      "vulnerable": rng.random() < 0.2, "unit_code": town + "001", "created_at": now,
                      "updated_at": now} for h in ids for k in range(3)]  # fmt: skip
        for chunk in range(0, len(residents), 5000):
            s.execute(insert(Resident), residents[chunk : chunk + 5000])
    return town


def _rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def bench_cards(backend: str, n: int) -> list[Any]:
    """Timed without tracemalloc (it slows fontTools several-fold); memory as RSS growth and peak RSS."""
    rng = random.Random(11)
    font = cards.find_cjk_font()
    with fresh_database(backend) as db:
        town = seed_households(db, n, rng)
        rss0 = _rss_mib()
        t0 = time.perf_counter()
        with db.read() as s:
            content = card_data.household_cards(s, unit_filter(Household.unit_code, town), personal=True)
        t1 = time.perf_counter()
        pdf = cards.render_household_cards(content, font)
        t2 = time.perf_counter()
        rss1 = _rss_mib()
    assert len(content) == n
    return [
        backend,
        f"{n:,}",
        f"{t1 - t0:.2f} s",
        f"{t2 - t1:.2f} s",
        f"{t2 - t0:.2f} s",
        f"{len(pdf) / 2**20:.1f} MiB",
        f"{rss1 - rss0:+.0f} MiB",
        f"{peak_rss_mib():.0f} MiB",
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--backend", choices=["postgresql", "sqlite", "both"], default="both")
    args = parser.parse_args()
    backends = ["postgresql", "sqlite"] if args.backend == "both" else [args.backend]
    counties, households = (166, 500) if args.small else (1660, 5000)
    print(f"machine: {machine()}, {dt.date.today()}")
    status_rows = [bench_status(b, counties, 20) for b in backends]
    print(table(["backend", "townships", "status (province)", "status (one county)", "missing", "elevated"],
                status_rows))  # fmt: skip
    card_rows = [bench_cards(b, households) for b in backends]
    print(table(["backend", "households", "read", "render", "total", "PDF", "RSS growth", "peak RSS"],
                card_rows))  # fmt: skip


if __name__ == "__main__":
    main()
