"""The web UI in a real browser (Playwright driving Debian's Chromium) against a live server.

The demo county is built, its monitoring network registered, and the app served by uvicorn. A
county officer logs in, sees the demo sites drawn on the map, a rain gauge reports a downpour
through ``POST /api/ingest``, the warning engine raises the 24-hour rainfall warning at the level
of the default rules (50/70/110/160 mm → blue/yellow/orange/red), the officer acknowledges it with
a comment; a township user sees only their township; a monitor's phone view shows their alerts; a
rejected import lists its rows' problems in the page; the officer edits a site's households, risk
zone and danger zone (``inventory_flow``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select

from geowarn.config import Settings
from geowarn.db import Database
from geowarn.demo import DemoSummary
from geowarn.dissemination.models import IssueRecipient, ResponseTask, TransferRecord, WarningIssue
from geowarn.fieldwork.models import HazardEvent, Patrol
from geowarn.inventory.models import HazardSite
from geowarn.monitoring.models import Device, MonitoringStation
from geowarn.monitoring.simulator import SimDevice
from geowarn.warning.models import Alert
from tests.conftest import BACKENDS, DEMO_2021_NETWORK, Datasets, demo_network_2021
from tests.web.conftest import LiveServer, start_server, stop_server
from tests.web.inventory_flow import edit_inventory

CHENGXI = "350922002"
RAIN_MM = [8.0] * 15  # 120 mm in 2.5 hours: the 24-hour rule's orange band (110 ≤ R < 160)
ORANGE = 3


def password(summary: DemoSummary, username: str) -> str:
    return next(u.password for u in summary.users if u.username == username)


def log_in(page: Any, server: LiveServer, summary: DemoSummary, username: str) -> None:
    page.goto(server.url + "/")
    page.wait_for_selector("#login:not(.hidden)")
    page.fill("#login-username", username)
    page.fill("#login-password", password(summary, username))
    page.click("#login-submit")
    page.wait_for_selector("#shell:not(.hidden)")


def open_map(page: Any, server: LiveServer) -> dict[str, Any]:
    page.goto(server.url + "/#/map")
    handle = page.wait_for_function(
        "() => window.__gwPerf && window.__gwPerf['map-sites-drawn'] > 0 && window.__gwPerf", timeout=30_000
    )
    perf: dict[str, Any] = handle.json_value()
    return perf


def painted_pixels(page: Any) -> int:
    return int(
        page.evaluate(
            """() => { const c = document.querySelector('canvas.gw-sites');
                 const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                 let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }"""
        )
    )


def pick_gauge(db: Database, devices: list[SimDevice]) -> tuple[SimDevice, int, str]:
    """A rain gauge on a site outside 城西街道 (so the township user must not see its warning)."""
    with db.read() as s:
        rows = s.execute(
            select(Device.device_code, HazardSite.id, HazardSite.name, HazardSite.unit_code)
            .join(MonitoringStation, MonitoringStation.id == Device.station_id)
            .join(HazardSite, HazardSite.id == MonitoringStation.site_id)
            .where(Device.device_type == "RAIN")
            .order_by(Device.device_code)
        ).all()
    code, site_id, name, _unit = next(r for r in rows if not r[3].startswith(CHENGXI))
    return next(d for d in devices if d.code == code), site_id, name


def feed_rain(server: LiveServer, gauge: SimDevice) -> None:
    now = int(time.time() * 1000)
    t0 = now - len(RAIN_MM) * 600_000
    total = 0.0
    data = []
    for i, mm in enumerate(RAIN_MM):
        total += mm
        data.append({"ts": t0 + (i + 1) * 600_000, "value": mm, "totalValue": total})
    body = orjson.dumps({"deviceId": gauge.code, "apikey": gauge.apikey, "data": data})
    r = httpx.post(server.url + "/api/ingest", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 2 * len(RAIN_MM)  # value and totalValue of each report


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, datasets: Datasets) -> Iterator[Database]:
    """The demo county of seed 2021 and its network (built once per backend, shared with other
    modules): this test's own copy."""
    demo_network_2021(datasets, request.param)
    with datasets.copy(request.param, DEMO_2021_NETWORK) as database:
        yield database


@pytest.fixture
def demo_server(db: Database, datasets: Datasets) -> Any:
    summary, devices = demo_network_2021(datasets, db.backend)
    server = start_server(db, Settings(warning_engine=True))
    try:
        yield summary, devices, server
    finally:
        stop_server(server)


def test_season_in_the_browser(db: Database, demo_server: Any, browser: Any, tmp_path: Path) -> None:
    summary, devices, server = demo_server
    with db.read() as s:
        all_sites = s.scalar(select(func.count()).select_from(HazardSite)) or 0
        town_sites = s.scalar(select(func.count()).where(HazardSite.unit_code.startswith(CHENGXI))) or 0
    assert all_sites == summary.hazard_sites + summary.steep_slopes

    # 1. The county officer logs in; the map draws every demo site.
    officer = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    log_in(officer, server, summary, "admin")
    assert "管理员" in officer.inner_text("#who")
    perf = open_map(officer, server)
    assert perf["sites"] == all_sites
    assert painted_pixels(officer) > 4 * all_sites  # the points are on the canvas, not just counted
    assert officer.locator("#f-town option").count() == summary.townships + 1
    officer.wait_for_selector(".leaflet-interactive, .town-label")  # boundaries drawn (offline: no tiles)
    officer.screenshot(path=str(tmp_path / "map.png"))

    # 2. A downpour at a gauge: the 24-hour rainfall warning appears at orange.
    gauge, site_id, site_name = pick_gauge(db, devices)
    feed_rain(server, gauge)
    officer.goto(server.url + "/#/alerts")
    row = f'tr[data-site="{site_id}"][data-rule="rain_24h"]'
    deadline = time.monotonic() + 60
    while officer.locator(row).count() == 0:
        assert time.monotonic() < deadline, "no rain_24h warning appeared"
        officer.wait_for_timeout(500)
        officer.click("#a-refresh")
    assert officer.get_attribute(row, "data-level") == str(ORANGE)
    assert officer.locator(f"{row} .level-orange").count() == 1
    assert site_name in officer.inner_text(row)
    reason = officer.inner_text(f"{row} .reason")  # why: the rule's terms, values and thresholds
    assert "阈值" in reason and "24" in reason, reason
    forecast = officer.evaluate(
        "async () => (await import('/static/app/js/alerts.js'))"
        ".forecastText({t_failure_ms: 0, r2: 0.9712, n_points: 12})"
    )  # the inverse-velocity forecast as a deformation alert shows it: China time and fit quality
    assert "预测失稳时间 1970-01-01 08:00，拟合优度 R²=0.97，12 个点" in forecast, forecast

    # 3. Acknowledge it with a comment.
    comment = "已通知监测员现场核查，组织转移"
    officer.click(f"{row} button.ack")
    officer.fill("#ack-comment", comment)
    officer.click(".dialog button.ok")
    officer.wait_for_function(
        "([sel, text]) => (document.querySelector(sel + ' .ack-cell') || {}).textContent?.includes(text)",
        arg=[row, comment],
    )
    with db.read() as s:
        alert = s.scalars(select(Alert).where(Alert.site_id == site_id, Alert.rule_id == "rain_24h")).one()
        assert (alert.level, alert.acknowledged_by, alert.ack_comment) == (ORANGE, "admin", comment)
    officer.screenshot(path=str(tmp_path / "alerts.png"))

    # The site page: the gauge's chart, the warning in the site's history; an edit is saved.
    officer.goto(server.url + f"/#/site/{site_id}")
    officer.wait_for_selector("#sensors .chart[data-sensor] canvas", timeout=30_000)
    assert "24小时累计雨量" in officer.inner_text("#site-alerts")
    officer.click("#site-edit")
    officer.fill(".dialog textarea[name=remarks]", "汛期加密巡查")
    with officer.expect_navigation():  # saved, the page reloads
        officer.click(".dialog button.ok")
    with db.read() as s:
        assert s.scalar(select(HazardSite.remarks).where(HazardSite.id == site_id)) == "汛期加密巡查"

    # A viewer sees the households with their phones masked, as the API masks them.
    viewer = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    log_in(viewer, server, summary, "viewer")
    viewer.goto(server.url + f"/#/site/{site_id}")
    viewer.wait_for_selector("#households")
    phones = viewer.locator("#households tr td:nth-child(3)").all_inner_texts()
    assert phones and all("*" in p for p in phones if p)
    assert viewer.locator("#site-edit").count() == 0

    # The map lists the warning too.
    open_map(officer, server)
    officer.wait_for_selector(f'#alert-list [data-alert="{alert.id}"]')

    # A regional product from the gauges: draft, review, joint sign-off, issue — all in the page.
    officer.goto(server.url + "/#/products")
    officer.click("#compute-submit")
    officer.wait_for_selector("#product-card #act-submit", timeout=60_000)
    officer.click("#act-submit")
    try:
        officer.wait_for_selector('#version-table tr[data-state="review"]')
    except Exception:
        raise AssertionError(officer.inner_text("#toast") + officer.inner_text("#view")) from None
    officer.click('.act-sign[data-sign="natural_resources"]')
    officer.click(".dialog button.ok")
    officer.wait_for_selector('#version-table tr[data-state="review"] >> text=自然资源：同意')
    product_url = officer.evaluate("location.href")
    if officer.locator("#act-issue").count() == 0:  # the level needs the weather bureau's signature too
        forecaster = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
        log_in(forecaster, server, summary, "weather")
        forecaster.goto(product_url)
        forecaster.click('.act-sign[data-sign="weather"]')
        forecaster.click(".dialog button.ok")
        forecaster.wait_for_selector('#version-table tr[data-state="review"] >> text=气象：同意')
        assert forecaster.locator("#act-issue").count() == 0  # a forecaster signs but does not issue
        officer.reload()
    officer.click("#act-issue", timeout=30_000)
    officer.wait_for_selector('#product-card[data-status="issued"]')
    officer.screenshot(path=str(tmp_path / "products.png"))

    # 4. A township user sees only their township.
    town = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    log_in(town, server, summary, "chengxi")
    perf = open_map(town, server)
    assert 0 < perf["sites"] == town_sites < all_sites
    assert town.locator("#f-town option").count() == 2
    assert town.locator(f'#alert-list [data-alert="{alert.id}"]').count() == 0
    town.goto(server.url + "/#/alerts")
    town.wait_for_selector("#alert-table tr")
    assert town.locator(f'tr[data-alert="{alert.id}"]').count() == 0
    town.goto(server.url + f"/#/site/{site_id}")
    town.wait_for_selector("#site-page .error")
    assert "不存在" in town.inner_text("#site-page")
    town.goto(server.url + "/#/dashboard")
    town.wait_for_selector("#kpi-sites")
    hazard_in_town = summary.sites_by_township.get("城西街道")
    assert hazard_in_town is not None and f"{hazard_in_town} 处" in town.inner_text("#kpi-sites")

    # 5. A monitor on a phone: their view is the default, with their alerts.
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True).new_page()
    log_in(phone, server, summary, "monitor")
    phone.wait_for_selector("#my-alerts")
    assert phone.evaluate("location.hash") == "#/phone"
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390  # nothing wider than the phone

    # 6. A rejected import shows each row's problem in the page.
    officer.goto(server.url + "/#/import")
    csv = "code,name,hazard_type,lon,lat\nX1,坏点,volcano,118.9,26.6\nX2,坏点二,landslide,999,26.6\n".encode()
    officer.set_input_files("#import-file", files=[{"name": "bad.csv", "mimeType": "text/csv", "buffer": csv}])
    officer.click("#import-submit")
    officer.wait_for_selector("#problem-table")
    rows = officer.locator("#problem-table tr")
    assert rows.count() == 3  # heading + one problem per row
    assert "hazard_type" in rows.nth(1).inner_text() and "lon" in rows.nth(2).inner_text()

    # 7. 预警发布: the orange warning reached people; its recipients and transfer order are in the page.
    with db.read() as s:
        issue = s.scalars(select(WarningIssue).where(WarningIssue.alert_id == alert.id)).first()
        assert issue is not None, "the orange warning was not disseminated"
        issues_total = s.scalar(select(func.count()).select_from(WarningIssue)) or 0
        recipients = s.scalar(select(func.count()).where(IssueRecipient.issue_id == issue.id)) or 0
        orders = list(s.scalars(select(ResponseTask).where(ResponseTask.subject == issue.subject,
                                                           ResponseTask.kind == "transfer")))  # fmt: skip
    assert recipients > 0
    officer.goto(server.url + f"/#/dissemination/{issue.id}")
    officer.wait_for_selector(f'#issue-card[data-issue="{issue.id}"] #c-funnel canvas', timeout=30_000)
    assert officer.locator("#issue-table tr[data-issue]").count() == issues_total
    selected = f'#issue-table tr.selected[data-issue="{issue.id}"][data-level="{ORANGE}"] .level-orange'
    assert officer.locator(selected).count() == 1
    assert f"{recipients:,}" in officer.inner_text("#d-recipients")
    assert officer.locator("#recipient-table tr[data-recipient]").count() == recipients
    assert officer.locator("#timeline-table tr[data-town]").count() >= 1
    assert orders and orders[0].plan.get("households")  # orange: the township must move its households
    # Record one household moved, in the page.
    officer.click(f'.task[data-task="{orders[0].id}"] .add-transfer')
    officer.fill(".dialog input[name=people]", "3")
    officer.click(".dialog button.ok")
    officer.wait_for_selector(f'.task[data-task="{orders[0].id}"] td >> text=admin')
    with db.read() as s:
        moved = s.scalar(select(func.sum(TransferRecord.people)).where(TransferRecord.task_id == orders[0].id))
    assert moved == 3 and officer.inner_text("#d-transferred b").startswith("3 ")
    # A confirmation taken by phone (回访) for the first recipient not yet confirmed.
    first = officer.locator('#recipient-table tr[data-confirmed="0"]').first
    rid = int(first.get_attribute("data-recipient") or 0)
    first.locator("button.confirm").click()
    officer.wait_for_selector(f'#recipient-table tr[data-recipient="{rid}"][data-confirmed="1"]')
    with db.read() as s:
        assert s.scalar(select(IssueRecipient.ack_via).where(IssueRecipient.id == rid)) == "api"
    officer.screenshot(path=str(tmp_path / "dissemination.png"))
    viewer.goto(server.url + f"/#/dissemination/{issue.id}")  # the viewer sees the phones masked
    viewer.wait_for_selector("#recipient-table tr[data-recipient]")
    phones = viewer.locator("#recipient-table tr[data-recipient] td:nth-child(2)").all_inner_texts()
    assert any("*" in p for p in phones) and not any(p.isdigit() and len(p) == 11 for p in phones)
    assert viewer.locator("#recipient-table .confirm").count() == 0  # a viewer may not confirm for anyone
    officer.goto(server.url + "/#/dashboard")
    officer.wait_for_selector(f'#dissemination-summary tr[data-issue="{issue.id}"]')

    # 8. 巡查排查: an abnormal patrol (through the API, as a phone sends it) and its danger report.
    tok = httpx.post(server.url + "/api/auth/token", data={"username": "admin", "password": password(summary, "admin")})
    auth = {"Authorization": f"Bearer {tok.json()['access_token']}"}
    with db.read() as s:
        site = s.get(HazardSite, site_id)
        assert site is not None
        hazard_type, site_unit = site.hazard_type, site.unit_code
    signs = httpx.get(server.url + f"/api/fieldwork/checklists/{hazard_type}", headers=auth).json()
    patrol = {"client_uuid": str(uuid.uuid4()), "site_id": site_id, "kind": "in_season", "result": "normal",
              "patrolled_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "checklist": {signs[0]["key"]: True},
              "remarks": "后缘新增裂缝"}  # fmt: skip
    r = httpx.post(server.url + "/api/fieldwork/patrols", data={"data": orjson.dumps(patrol).decode()}, headers=auth)
    assert r.status_code == 201, r.text
    patrol_id = r.json()["id"]
    with db.read() as s:
        assert s.scalar(select(Patrol.result).where(Patrol.id == patrol_id)) == "abnormal"  # any sign seen
        event_id = s.scalar(select(HazardEvent.id).where(HazardEvent.patrol_id == patrol_id))
    assert event_id is not None
    officer.goto(server.url + "/#/fieldwork")
    officer.wait_for_selector(f'#patrol-table tr.abnormal[data-patrol="{patrol_id}"]')
    assert signs[0]["zh"] in officer.inner_text(f'#patrol-table tr[data-patrol="{patrol_id}"]')
    officer.wait_for_selector(f'#event-table tr[data-event="{event_id}"][data-kind="danger"]')
    assert officer.locator("#zero-table tr[data-town]").count() == summary.townships
    officer.wait_for_selector("#hygiene-table tr >> nth=1")  # the register's gaps load on their own
    officer.fill("#f-date", "2026-07-01")  # a flood-season day nobody reported: every township owes its report
    officer.dispatch_event("#f-date", "change")
    officer.wait_for_function(
        f"() => document.querySelectorAll('#zero-table tr.missing').length === {summary.townships}"
    )
    town_row = f'#zero-table tr[data-town="{site_unit[:9]}"]'
    with officer.expect_download(timeout=60_000) as dl:
        officer.click(f'{town_row} .card-pdf[data-kind="sites"]')
    pdf = Path(dl.value.path()).read_bytes()
    assert pdf.startswith(b"%PDF")
    officer.screenshot(path=str(tmp_path / "fieldwork.png"))
    officer.goto(server.url + f"/#/site/{site_id}")  # the patrol is in the site's history too
    officer.wait_for_selector('#site-patrols tr[data-result="abnormal"]')

    # 9. 台账编辑: households, a risk zone's grade and the danger zone, on a site page.
    edit_inventory(officer, server, db)
