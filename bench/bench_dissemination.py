"""Dissemination figures (issue 5): recipients, outbox, dispatcher throughput, CAP, alert-to-gateway latency.

* ``resolve``: recipients of a red regional warning covering every site of a synthetic province
  (default 30,000 sites, 250,000 households of 4 = 1,000,000 residents with phones; persons,
  township and county officials): ``resolve.for_areas`` warm (the register's people in the in-memory
  directory), cold (the first resolution, which reads them), and without the directory; the pure merge.
* ``publish``: the whole decision at county scale — resolve, render, write recipients and outbox rows
  in one transaction — for a red warning over 20,000 households (``hook.on_product_issued``).
* ``dispatch``: 20,000 SMS to the local recording gateway (real HTTP on 127.0.0.1), messages/s.
* ``cap``: 1,000 site alerts rendered as CAP 1.2 and validated against the schema.
* ``latency``: a dispatcher loop running; 200 site alerts opened one after another; time from the
  alert's commit to its first message accepted by the gateway (p50/p99).

Run: .venv/bin/python -m bench.bench_dissemination [--small] [--backend sqlite|postgresql] [--only resolve,cap,...]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import threading
import time
from typing import Any

import httpx
import numpy as np
import shapely
from sqlalchemy import insert, select

from bench.common import fresh_database, machine
from geowarn.admin.models import AdminUnit
from geowarn.db import Database
from geowarn.dissemination import directory, resolve
from geowarn.dissemination.cap import CapSchema
from geowarn.dissemination.channels import REGISTRY
from geowarn.dissemination.dispatcher import Dispatcher
from geowarn.dissemination.hook import on_product_issued
from geowarn.dissemination.localgw import LocalGateway
from geowarn.dissemination.models import OutboxMessage, WarningIssue
from geowarn.dissemination.recipients import Candidate, merge
from geowarn.inventory.models import HazardSite, Household, Person, Resident
from geowarn.warning import alerts
from geowarn.warning.levels import Level
from geowarn.warning.product_models import ProductArea, ProductVersion, RegionalProduct

T0 = 1_782_864_000_000
PROVINCE = "35"


def build(db: Database, n_sites: int, n_households: int, seed: int = 5) -> None:
    """Sites, households (4 residents each, one phone a person), persons and officials over 10 × 10 degrees."""
    rng = np.random.default_rng(seed)
    counties = [f"35{c // 10 + 1:02d}{c % 10 + 1:02d}" for c in range(100)]
    towns = [f"{c}{t + 100:03d}" for c in counties for t in range(10)]
    with db.raw_writer() as conn:
        conn.execute(
            insert(AdminUnit),
            [{"code": "35", "name": "省", "level": "province"}]
            + [{"code": c, "name": f"县{c}", "level": "county", "parent_code": "35"} for c in counties]
            + [{"code": t, "name": f"镇{t}", "level": "township", "parent_code": t[:6]} for t in towns],
        )
        persons = []
        for i in range(n_sites):
            t = towns[i % len(towns)]
            persons += [
                {"name": f"责任{i}", "phone": f"130{i:08d}", "roles": ["responsible"], "unit_code": t, "active": True},
                {"name": f"监测{i}", "phone": f"131{i:08d}", "roles": ["monitor"], "unit_code": t, "active": True},
            ]
        persons += [
            {"name": f"值班{u}", "phone": f"132{k:08d}", "roles": ["duty_official"], "unit_code": u, "active": True}
            for k, u in enumerate(towns + counties)
        ]
        conn.execute(insert(Person), persons)
        lon = rng.uniform(100, 110, n_sites)
        lat = rng.uniform(20, 30, n_sites)
        sites = [
            {
                "code": f"S{i}",
                "name": f"滑坡{i}",
                "hazard_type": "landslide",
                "lon": float(lon[i]),
                "lat": float(lat[i]),
                "geom": shapely.Point(lon[i], lat[i]),
                "minx": float(lon[i]),
                "maxx": float(lon[i]),
                "miny": float(lat[i]),
                "maxy": float(lat[i]),
                "unit_code": towns[i % len(towns)],
                "township_code": towns[i % len(towns)],
                "responsible_person_id": 2 * i + 1,
                "monitor_id": 2 * i + 2,
                "status": "registered",
                "extra": {},
                "threatened_households": 0,
                "threatened_people": 0,
                "threatened_property_yuan": 0,
                "monitoring_mode": "community",
                "version": 1,
            }
            for i in range(n_sites)
        ]
        for k in range(0, n_sites, 5000):
            conn.execute(insert(HazardSite), sites[k : k + 5000])
        for k in range(0, n_households, 10_000):
            rows, residents = [], []
            for h in range(k, min(n_households, k + 10_000)):
                s = h % n_sites
                x, y = float(lon[s] + rng.uniform(-0.002, 0.002)), float(lat[s] + rng.uniform(-0.002, 0.002))
                rows.append(
                    {
                        "id": h + 1,
                        "code": f"H{h}",
                        "head_name": f"户主{h}",
                        "phone": f"15{h:08d}0",
                        "size": 4,
                        "lon": x,
                        "lat": y,
                        "geom": shapely.Point(x, y),
                        "minx": x,
                        "maxx": x,
                        "miny": y,
                        "maxy": y,
                        "unit_code": towns[s % len(towns)],
                        "site_id": s + 1,
                    }
                )
                residents += [
                    {
                        "household_id": h + 1,
                        "name": f"居民{h}-{r}",
                        "unit_code": towns[s % len(towns)],
                        "phone": f"15{h:08d}{r}",
                    }
                    for r in range(4)
                ]
            conn.execute(insert(Household), rows)
            conn.execute(insert(Resident), residents)


def red_over(db: Database, box: tuple[float, float, float, float], unit: str = "35") -> Any:
    return [(4, shapely.box(*box))]


def _rss_mib() -> float:
    """Resident memory of this process now, MiB."""
    for line in open("/proc/self/status", encoding="ascii"):  # noqa: SIM115
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def bench_resolve(backend: str, n_sites: int, n_households: int) -> dict[str, Any]:
    with fresh_database(backend) as db:
        t0 = time.perf_counter()
        build(db, n_sites, n_households)
        built = time.perf_counter() - t0
        areas = red_over(db, (100, 20, 110, 30))
        directory.forget()
        rss_before = _rss_mib()
        times = []
        for _ in range(4):  # the first reads the register's people into the directory (cold)
            t0 = time.perf_counter()
            with db.read() as s:
                res = resolve.for_areas(s, "350101", areas)
            times.append(time.perf_counter() - t0)
        rss_after = _rss_mib()
        with db.read() as s:  # the same warning resolved without the directory (all read from the database)
            s.info.pop("database")
            t0 = time.perf_counter()
            uncached = resolve.for_areas(s, "350101", areas)
            uncached_s = time.perf_counter() - t0
        assert uncached.total == res.total
        cands = [
            Candidate(f"resident:{i}", "x", f"15{i:09d}", "350101100", "resident", "r") for i in range(n_households * 4)
        ]
        t0 = time.perf_counter()
        merged = merge(cands)
        merge_s = time.perf_counter() - t0
        return {
            "backend": backend,
            "sites": n_sites,
            "households": n_households,
            "residents": 4 * n_households,
            "build_s": built,
            "resolve_s": min(times[1:]),
            "resolve_cold_s": times[0],
            "resolve_without_directory_s": uncached_s,
            "rss_growth_mib": round(rss_after - rss_before),  # the directory and one resolution held
            "recipients": res.total,
            "merge_only_s": merge_s,
            "merged": len(merged),
        }


def bench_publish(backend: str, n_households: int) -> dict[str, Any]:
    """A red product over a county of ``n_households`` (2,000 sites): resolve + messages + outbox, one commit."""
    n_sites = 2000
    with fresh_database(backend) as db:
        build(db, n_sites, n_households)
        with db.write("bench") as s:
            p = RegionalProduct(
                code="P1", unit_code="350101", title="县地质灾害气象风险红色预警", status="issued", created_ms=T0
            )
            v = ProductVersion(
                product=p,
                number=1,
                kind="initial",
                state="issued",
                level=4,
                valid_from_ms=T0,
                valid_to_ms=T0 + 86_400_000,
                created_ms=T0,
                message="特大暴雨",
                inputs={},
                summary={},
            )
            s.add_all(
                [
                    p,
                    v,
                    ProductArea(
                        version=v, level=4, area_km2=1.0, geom=shapely.MultiPolygon([shapely.box(100, 20, 110, 30)])
                    ),
                ]
            )
            s.flush()
            vid = v.id
        t0 = time.perf_counter()
        with db.write("bench") as s:
            version = s.get(ProductVersion, vid)
            assert version is not None
            issue = on_product_issued(s, version, T0)
            assert issue is not None
            counts = (issue.recipients_count, issue.messages_count)
        dt_s = time.perf_counter() - t0
        return {
            "backend": backend,
            "households": n_households,
            "sites": n_sites,
            "recipients": counts[0],
            "messages": counts[1],
            "publish_s": dt_s,
        }


def bench_dispatch(backend: str, n: int) -> dict[str, Any]:
    with fresh_database(backend) as db:
        with db.write("bench") as s:
            issue = WarningIssue(
                subject="b:1",
                version=1,
                kind="initial",
                warning_type="regional",
                level=4,
                previous_level=0,
                unit_code="350101",
                issued_ms=T0,
                title="测试",
                cap_identifier="x",
                context={},
            )
            s.add(issue)
            s.flush()
            s.execute(
                insert(OutboxMessage),
                [
                    {
                        "issue_id": issue.id,
                        "channel": "sms",
                        "address": f"139{i:08d}",
                        "idem_key": f"{issue.id}:p{i}:sms",
                        "level": 4,
                        "subject": "测试",
                        "body": "【示范县自然资源局】红色预警：立即撤离！受威胁群众马上转移至避险点。" * 2,
                        "segments": 2,
                        "status": "pending",
                        "attempts": 0,
                        "next_attempt_ms": T0,
                        "created_ms": T0,
                        "unit_code": "350101100",
                    }
                    for i in range(n)
                ],
            )
        # The gateway runs in its own process, as a real one would (not competing for this one's GIL).
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "geowarn.dissemination.localgw", str(port)], stdout=subprocess.DEVNULL
        )
        url = f"http://127.0.0.1:{port}"
        d = Dispatcher(db, {"sms": REGISTRY["sms"](url)}, batch=2000, rates={"sms": 100_000})  # type: ignore[call-arg]
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    httpx.get(f"{url}/stats").raise_for_status()
                    break
                except httpx.HTTPError:
                    time.sleep(0.05)
            t0 = time.perf_counter()
            while d.run_once():
                pass
            dt_s = time.perf_counter() - t0
            while d.poll():  # delivery receipts come in pages
                pass
            stats = httpx.get(f"{url}/stats").json()
            with db.read() as s:
                undelivered = s.scalar(select(OutboxMessage.id).where(OutboxMessage.status != "delivered").limit(1))
        finally:
            d.close()
            proc.terminate()
            proc.wait(10)
        return {
            "backend": backend,
            "messages": n,
            "seconds": dt_s,
            "per_s": n / dt_s,
            "gateway": stats["messages"],
            "requests": stats["requests"],
            "all_delivered": undelivered is None,
            "max_requests_per_key": stats["max_key_requests"],
        }


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bench_cap(n: int = 1000) -> dict[str, Any]:
    from geowarn.dissemination.cap import CapArea, CapMessage, identifier, render

    schema = CapSchema()
    msgs = [
        CapMessage(
            identifier=identifier("350922", "ZRZY", T0 + i * 1000, i),
            sender="geowarn@350922.gov.cn",
            sent_ms=T0 + i * 1000,
            msg_type="Alert",
            level=Level(1 + i % 4),
            event="地质灾害监测预警",
            headline=f"滑坡{i}号隐患点警报",
            description="位移速率超过阈值",
            instruction="立即撤离",
            sender_name="示范县自然资源局",
            observed=True,
            areas=[CapArea(f"滑坡{i}", shapely.Point(119 + i * 1e-4, 26).buffer(0.002, 16), ["350922100"])],
        )
        for i in range(n)
    ]
    t0 = time.perf_counter()
    errors = sum(len(schema.errors(render(m))) for m in msgs)
    return {"messages": n, "seconds": time.perf_counter() - t0, "errors": errors}


def bench_latency(backend: str, n: int = 200) -> dict[str, Any]:
    with fresh_database(backend) as db:
        build(db, n, n)
        gw = LocalGateway().start()
        channels = {"sms": REGISTRY["sms"](gw.url), "inbox": REGISTRY["inbox"]()}  # type: ignore[call-arg]
        d = Dispatcher(db, channels, batch=500)
        stop = threading.Event()
        th = threading.Thread(target=d.run, args=(stop,), kwargs={"interval_s": 0.01, "housekeeping_s": 3600})
        th.start()
        commits: dict[int, float] = {}
        try:
            for i in range(n):
                with db.write("engine") as s:
                    out = alerts.apply_level(
                        s,
                        kind=alerts.SITE_RULE,
                        rule_id="rate",
                        unit_code="350101100",
                        level=Level.RED,
                        now_ms=int(time.time() * 1000),
                        site_id=i + 1,
                    )
                    assert out.alert is not None
                    aid = out.alert.id
                commits[aid] = time.time()
                time.sleep(0.02)
            time.sleep(1.0)
        finally:
            stop.set()
            th.join()
            d.close()
            gw.stop()
        with db.read() as s:
            issue_of = {i: a or 0 for i, a in s.execute(select(WarningIssue.id, WarningIssue.alert_id))}
        first: dict[int, float] = {}
        for m in gw.state.messages:
            aid = issue_of[int(m.key.split(":")[0])]
            first[aid] = min(first.get(aid, 1e18), m.t_ms / 1000)
        lat = sorted(first[a] - commits[a] for a in commits if a in first)
        return {
            "backend": backend,
            "alerts": n,
            "reached": len(lat),
            "p50_ms": 1000 * statistics.median(lat),
            "p99_ms": 1000 * lat[int(0.99 * (len(lat) - 1))],
        }


def main() -> None:
    small = "--small" in sys.argv
    backends = [sys.argv[sys.argv.index("--backend") + 1]] if "--backend" in sys.argv else ["sqlite", "postgresql"]
    only = sys.argv[sys.argv.index("--only") + 1].split(",") if "--only" in sys.argv else None

    def wanted(name: str) -> bool:
        return only is None or name in only

    print(machine())
    if wanted("cap"):
        print("cap", bench_cap())
    for b in backends:
        if wanted("dispatch"):
            print("dispatch", bench_dispatch(b, 2000 if small else 20_000))
        if wanted("latency"):
            print("latency", bench_latency(b, 50 if small else 200))
        if wanted("publish"):
            print("publish", bench_publish(b, 2000 if small else 20_000))
        if wanted("resolve"):
            print("resolve", bench_resolve(b, 3000 if small else 30_000, 25_000 if small else 250_000))


if __name__ == "__main__":
    main()
