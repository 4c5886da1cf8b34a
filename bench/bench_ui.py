"""The web UI's figures (issue 6), in Debian's Chromium driven by Playwright against a real server.

* First meaningful paint of the map: milliseconds from navigation start until the site layer has drawn
  every site in view (``performance.mark('map-sites-drawn')`` after the next animation frame), with the
  demo county (181 sites) and with 300,000 sites in the county (the demo plus synthetic sites spread
  over its townships). A fresh page each run, token already in sessionStorage; the median of
  ``--repeat`` runs.
* Panning at 300,000 sites: the map is dragged with the mouse (60 steps a drag, 8 drags in turn) while
  a requestAnimationFrame loop records every frame interval; the longest interval, the 99th percentile,
  and the redraw that follows each drag (the site layer's own timing) are reported.
* API p99 of the map's calls at 200 requests/s: an open-loop load generator (httpx, asyncio) sends
  the map's requests round-robin at a constant arrival rate for ``--seconds``; latency counts from the
  scheduled send time, so a slow server is not hidden by a waiting client (no coordinated omission).
* ``--screenshots``: the main screens of the demo after its typhoon replay, into docs/screenshots/. As in
  ``geowarn demo``, the replay's warnings are sent through the built-in local gateway before the shots, and
  one abnormal patrol is reported through the API (the demo world has no field reports of its own).

``--workers N`` serves with N uvicorn processes (default as ``geowarn serve``: one per CPU on PostgreSQL,
one on SQLite); ``--load-only`` runs the API load test alone, without the browser.

Run: ``.venv/bin/python -m bench.bench_ui [--backend sqlite|postgresql] [--sites 300000] [--repeat 5]
[--seconds 30] [--rate 200] [--workers N] [--load-only] [--screenshots]``
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import shapely
from sqlalchemy import select

from bench.bench_zoning import SITE_COLS, site_rows
from bench.common import fresh_database, machine, serve_app, table
from geowarn.admin.models import AdminUnit
from geowarn.db import Database
from geowarn.demo import DemoSummary, build_demo_county

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
MAP_CALLS = [
    "/api/map/sites",
    "/api/map/boundaries",
    "/api/map/zones",
    "/api/map/stations",
    "/api/monitoring/latest",
    "/api/alerts?status=open&limit=1000",
    "/api/shelters?limit=1000",
    "/api/products?limit=50",
]


def token(base: str, summary: DemoSummary, username: str = "admin") -> str:
    user = next(u for u in summary.users if u.username == username)
    r = httpx.post(f"{base}/api/auth/token", data={"username": username, "password": user.password}, timeout=60)
    r.raise_for_status()
    return str(r.json()["access_token"])


def add_sites(db: Database, n: int, seed: int = 6) -> int:
    """``n`` synthetic sites inside the demo county, each in the township that contains it (plain SQL)."""
    with db.read() as s:
        towns = s.execute(select(AdminUnit.code, AdminUnit.geom).where(AdminUnit.level == "township")).all()
    rng = np.random.default_rng(seed)
    union = shapely.union_all([g for _, g in towns])
    x0, y0, x1, y1 = union.bounds
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    codes: list[np.ndarray] = []
    got = 0
    while got < n:
        x = rng.uniform(x0, x1, n)
        y = rng.uniform(y0, y1, n)
        code = np.full(n, "", dtype=object)
        for c, g in towns:
            code[shapely.contains_xy(g, x, y)] = c
        keep = code != ""
        xs.append(x[keep])
        ys.append(y[keep])
        codes.append(code[keep])
        got += int(keep.sum())
    x, y, code = (np.concatenate(a)[:n] for a in (xs, ys, codes))
    rows = site_rows(x, y, seed=seed)
    for r, c in zip(rows, code, strict=True):
        r["code"] = "U" + r["code"]
        r["unit_code"] = r["township_code"] = str(c)
    with db.raw_writer() as conn:
        if db.is_postgres:
            raw = conn.connection.driver_connection
            with raw.cursor() as cur, cur.copy(f"COPY hazard_site ({', '.join(SITE_COLS)}) FROM STDIN") as cp:
                for r in rows:
                    cp.write_row([r[c] for c in SITE_COLS])
        else:
            conn.exec_driver_sql(
                f"INSERT INTO hazard_site ({', '.join(SITE_COLS)}) VALUES ({', '.join('?' for _ in SITE_COLS)})",
                [tuple(r["wkb"] if c == "geom" else r[c] for c in SITE_COLS) for r in rows],
            )
    if db.is_postgres:
        with db.engine.connect() as c:
            c.exec_driver_sql("ANALYZE hazard_site")
            c.commit()
    return n


# --- the browser -------------------------------------------------------------------------------

FRAME_LOOP = """() => { window.__frames = []; let last = performance.now();
  const loop = (t) => { window.__frames.push(t - last); last = t;
    if (!window.__stopFrames) requestAnimationFrame(loop); };
  window.__stopFrames = false; requestAnimationFrame(loop); }"""
LAYER = "(() => { let v = 0; window.__gwMap.eachLayer((l) => { if (l.drawn !== undefined) v = l.%s; }); return v; })()"


def new_page(browser: Any, base: str, tok: str, *, width: int = 1400, height: int = 900) -> Any:
    ctx = browser.new_context(viewport={"width": width, "height": height})
    ctx.add_init_script(f"sessionStorage.setItem('geowarn.token', {tok!r});")
    return ctx.new_page()


def first_paint(browser: Any, base: str, tok: str) -> tuple[float, int]:
    page = new_page(browser, base, tok)
    page.goto(f"{base}/#/map")
    page.wait_for_function("window.__gwPerf && window.__gwPerf['map-sites-drawn'] > 0", timeout=120_000)
    perf = page.evaluate("window.__gwPerf")
    page.context.close()
    return float(perf["map-sites-drawn"]), int(perf["sites"])


def panning(browser: Any, base: str, tok: str) -> dict[str, float]:
    page = new_page(browser, base, tok)
    page.goto(f"{base}/#/map")
    page.wait_for_function("window.__gwPerf && window.__gwPerf['map-sites-drawn'] > 0", timeout=120_000)
    page.wait_for_timeout(1500)  # the other layers settle
    page.evaluate(FRAME_LOOP)
    cx, cy = 600, 450
    for i in range(8):
        dx, dy = [(250, 0), (0, 180), (-250, 0), (0, -180)][i % 4]
        page.mouse.move(cx, cy)
        page.mouse.down()
        for k in range(1, 61):
            page.mouse.move(cx + dx * k / 60, cy + dy * k / 60)
        page.mouse.up()
        page.wait_for_timeout(250)
    page.evaluate("window.__stopFrames = true")
    frames = [f for f in page.evaluate("window.__frames") if f > 0][1:]
    draw_ms = page.evaluate(LAYER % "lastDrawMs")
    drawn = page.evaluate(LAYER % "drawn")
    page.context.close()
    arr = np.array(frames)
    return {"frames": len(arr), "max": float(arr.max()), "p99": float(np.percentile(arr, 99)),
            "median": float(np.median(arr)), "over_100": int((arr > 100).sum()), "redraw": float(draw_ms),
            "drawn": int(drawn)}  # fmt: skip


# --- the API under load --------------------------------------------------------------------------


async def _conn(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(host, port)


async def _get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    """One HTTP/1.1 request on a kept-alive connection; returns the status (the body is read and dropped)."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    chunked = False
    for line in head.split(b"\r\n"):
        k, _, v = line.partition(b":")
        if k.lower() == b"content-length":
            length = int(v)
        elif k.lower() == b"transfer-encoding" and b"chunked" in v.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        await reader.readexactly(length)
    return status


async def _load(base: str, tok: str, rate: float, seconds: float, connections: int = 64) -> dict[str, list[float]]:
    """Open loop: request i is due at start + i/rate; a pool of kept-alive connections (a minimal
    asyncio HTTP/1.1 client, light enough not to compete with the server for the two cores) takes
    the requests in order; latency counts from the due time."""
    host, port = base.removeprefix("http://").split(":")
    requests = {
        p: f"GET {p} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {tok}\r\n\r\n".encode() for p in MAP_CALLS
    }
    out: dict[str, list[float]] = {p: [] for p in MAP_CALLS}
    conns = [await _conn(host, int(port)) for _ in range(connections)]

    async def warm(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for p in MAP_CALLS:  # every connection, so every worker process has served each call once
            assert await _get(reader, writer, requests[p]) == 200

    await asyncio.gather(*(warm(r, w) for r, w in conns))  # not counted
    n = int(rate * seconds)
    queue: asyncio.Queue[int] = asyncio.Queue()
    errors = 0
    start = time.perf_counter() + 0.1

    async def feed() -> None:
        for i in range(n):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            queue.put_nowait(i)

    async def worker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal errors
        while True:
            i = await queue.get()
            if i < 0:
                return
            path = MAP_CALLS[i % len(MAP_CALLS)]
            if await _get(reader, writer, requests[path]) != 200:
                errors += 1
            out[path].append(time.perf_counter() - (start + i / rate))

    workers = [asyncio.create_task(worker(r, w)) for r, w in conns]
    await feed()
    for _ in workers:
        queue.put_nowait(-1)
    await asyncio.gather(*workers)
    for _, w in conns:
        w.close()
    if errors:
        raise RuntimeError(f"{errors} requests failed under load")
    return out


def load_rows(backend: str, base: str, tok: str, rate: float, seconds: float) -> list[list[Any]]:
    with ThreadPoolExecutor(1) as pool:  # Playwright's sync API owns this thread's event loop
        lat = pool.submit(asyncio.run, _load(base, tok, rate, seconds)).result()
    rows = []
    every = [v for vs in lat.values() for v in vs]
    for path, vs in [*lat.items(), ("all", every)]:
        ms = np.array(vs) * 1000
        p50, p95, p99 = (f"{np.percentile(ms, q):.1f}" for q in (50, 95, 99))
        rows.append([backend, f"{rate:.0f}/s", path, len(vs), p50, p95, f"**{p99}**" if path == "all" else p99,
                     f"{ms.max():.0f}"])  # fmt: skip
    return rows


# --- screenshots -----------------------------------------------------------------------------------


def send_warnings(db: Database, seconds: float = 20.0) -> None:
    """The demo's local gateway and dispatcher (as ``geowarn demo``) until the outbox is drained."""
    from geowarn.config import Settings
    from geowarn.dissemination.demo import start_demo_dissemination
    from geowarn.dissemination.models import OutboxMessage

    messages = start_demo_dissemination(db, Settings())
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with db.read() as s:
                if not s.scalar(
                    select(OutboxMessage.id).where(OutboxMessage.status.in_(("pending", "sending"))).limit(1)
                ):
                    break
            time.sleep(0.5)
        time.sleep(2)  # receipts
    finally:
        messages.stop()


def field_report(base: str, tok: str, site_id: int | None) -> None:
    """One abnormal patrol at a site, as a monitor's phone sends it (it opens a danger report)."""
    if site_id is None:
        return
    auth = {"Authorization": f"Bearer {tok}"}
    site = httpx.get(f"{base}/api/sites/{site_id}", headers=auth, timeout=60).json()
    signs = httpx.get(f"{base}/api/fieldwork/checklists/{site['hazard_type']}", headers=auth, timeout=60).json()
    patrol = {"client_uuid": str(uuid.uuid4()), "site_id": site_id, "kind": "in_season", "remarks": "后缘新增拉张裂缝",
              "patrolled_at": dt.datetime.now(dt.UTC).isoformat(), "checklist": {signs[0]["key"]: True}}  # fmt: skip
    r = httpx.post(f"{base}/api/fieldwork/patrols", data={"data": json.dumps(patrol)}, headers=auth, timeout=60)
    r.raise_for_status()


def screenshots(browser: Any, base: str, summary: DemoSummary, db: Database) -> list[str]:
    from geowarn.warning.models import Alert

    with db.read() as s:
        slope = s.scalar(select(Alert.site_id).where(Alert.rule_id == "tangent_angle").limit(1))
    SHOTS.mkdir(parents=True, exist_ok=True)
    tok = token(base, summary)
    field_report(base, tok, slope)
    shots = [("map", "#/map", 1400, 900), ("dashboard", "#/dashboard", 1400, 1300),
             ("site", f"#/site/{slope}", 1400, 2000), ("alerts", "#/alerts", 1400, 900),
             ("products", "#/products", 1400, 1000), ("dissemination", "#/dissemination", 1400, 1600),
             ("fieldwork", "#/fieldwork", 1400, 1500)]  # fmt: skip
    written = []
    for name, route, w, h in shots:
        page = new_page(browser, base, tok, width=w, height=h)
        page.goto(f"{base}/{route}")
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(2500)
        page.screenshot(path=str(SHOTS / f"{name}.png"))
        written.append(name)
        page.context.close()
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                              device_scale_factor=2)  # fmt: skip
    ctx.add_init_script(f"sessionStorage.setItem('geowarn.token', {token(base, summary, 'monitor')!r});")
    page = ctx.new_page()
    page.goto(f"{base}/#/phone")
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(1500)
    page.screenshot(path=str(SHOTS / "phone.png"))
    ctx.close()
    return [*written, "phone"]


def workers(args: argparse.Namespace, backend: str) -> int:
    """As ``geowarn serve`` without ``--workers``: one process per CPU on PostgreSQL, one on SQLite."""
    if args.workers:
        return int(args.workers)
    return (os.cpu_count() or 1) if backend == "postgresql" else 1


def run(args: argparse.Namespace, backend: str, browser: Any) -> dict[str, Any]:
    from geowarn.demo.live import start_demo_network

    result: dict[str, Any] = {"backend": backend, "workers": workers(args, backend)}
    env = {"UVICORN_WORKERS": str(result["workers"])}
    with fresh_database(backend) as db:
        summary = build_demo_county(db, seed=2021)
        live, _ = start_demo_network(db, event=True, speed=20_000, start=True)
        try:
            live.replay_done.wait(300)
            live.engine.wait_idle(300)
        finally:
            live.stop()
        if args.screenshots:
            send_warnings(db)
        server, base = serve_app(db.url, **env)
        try:
            tok = token(base, summary)
            if args.screenshots and browser is not None:
                result["screenshots"] = screenshots(browser, base, summary, db)
            if browser is not None:
                paints = [first_paint(browser, base, tok) for _ in range(args.repeat)]
                result["demo_fmp"] = (statistics.median(p for p, _ in paints), paints[0][1])
            label = f"{backend}, {result['workers']} worker{'s' if result['workers'] > 1 else ''}"
            result["uptime"] = os.getloadavg()
            result["load"] = [row for rate in args.rate for row in load_rows(label, base, tok, rate, args.seconds)]
            result["uptime_after"] = os.getloadavg()
        finally:
            server.terminate()
            server.wait(timeout=30)
        if args.sites and browser is not None:
            add_sites(db, args.sites - summary.hazard_sites - summary.steep_slopes)
            server, base = serve_app(db.url, **env)
            try:
                tok = token(base, summary)
                t = []
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    r = httpx.get(f"{base}/api/map/sites", headers={"Authorization": f"Bearer {tok}"}, timeout=120)
                    t.append(time.perf_counter() - t0)
                    r.raise_for_status()
                result["sites_api"] = (statistics.median(t) * 1000, len(r.content) / 1e6)
                paints = [first_paint(browser, base, tok) for _ in range(args.repeat)]
                result["big_fmp"] = (statistics.median(p for p, _ in paints), paints[0][1])
                result["pan"] = panning(browser, base, tok)
            finally:
                server.terminate()
                server.wait(timeout=30)
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", action="append")
    ap.add_argument("--sites", type=int, default=300_000, help="sites in the county for the big map (0: skip)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--rate", type=float, nargs="*", default=[200.0], help="requests/s of the load test (none: skip)")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--screenshots", action="store_true")
    ap.add_argument("--workers", type=int, default=0, help="uvicorn processes (0: as geowarn serve)")
    ap.add_argument("--load-only", action="store_true", help="the API load test alone, no browser")
    args = ap.parse_args()

    results = []
    if args.load_only:
        for backend in args.backend or ["sqlite", "postgresql"]:
            results.append(run(args, backend, None))
    else:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                for backend in args.backend or ["sqlite", "postgresql"]:
                    results.append(run(args, backend, browser))
            finally:
                browser.close()
    print(f"Web UI ({machine()}, {dt.date.today().isoformat()}; Chromium headless, software rendering):\n")
    rows = []
    for r in results:
        if "demo_fmp" not in r:
            continue
        rows.append([r["backend"], f"demo county ({r['demo_fmp'][1]} sites)", f"**{r['demo_fmp'][0]:.0f} ms**"])
        if "big_fmp" in r:
            rows.append([r["backend"], f"{r['big_fmp'][1]:,} sites", f"**{r['big_fmp'][0]:.0f} ms**"])
    if rows:
        print(table(["backend", "map", "first meaningful paint (median)"], rows))
    pans = [r for r in results if "pan" in r]
    if pans:
        print()
        print(table(
            ["backend", "sites", "/api/map/sites (median, size)", "frames", "median frame", "p99 frame",
             "longest frame", "frames > 100 ms", "redraw after a drag (sites drawn)"],
            [[r["backend"], f"{r['big_fmp'][1]:,}", f"{r['sites_api'][0]:.0f} ms, {r['sites_api'][1]:.1f} MB",
              r["pan"]["frames"], f"{r['pan']['median']:.1f} ms", f"{r['pan']['p99']:.1f} ms",
              f"**{r['pan']['max']:.0f} ms**", r["pan"]["over_100"],
              f"{r['pan']['redraw']:.0f} ms ({r['pan']['drawn']:,})"] for r in pans],
        ))  # fmt: skip
    loads = [row for r in results for row in r.get("load", [])]
    if loads:
        print(f"\nThe map's API calls for {args.seconds:.0f} s at each rate (open loop, demo county):\n")
        print(table(["backend", "rate", "call", "requests", "p50 ms", "p95 ms", "p99 ms", "max ms"], loads))
        for r in results:
            if "uptime" in r:
                print(f"load average ({r['backend']}): before {r['uptime']}, after {r['uptime_after']}")
    for r in results:
        if r.get("screenshots"):
            print(
                f"\nscreenshots ({r['backend']}): " + ", ".join(f"docs/screenshots/{n}.png" for n in r["screenshots"])
            )


if __name__ == "__main__":
    main()
