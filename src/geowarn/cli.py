"""The ``geowarn`` command: a thin layer over the library (one function per command)."""

from __future__ import annotations

import getpass
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from geowarn.config import get_settings
from geowarn.errors import FileRejected, GeowarnError
from geowarn.logs import configure_logging

app = typer.Typer(help="geowarn: 地质灾害与环境监测预警平台", no_args_is_help=True, pretty_exceptions_enable=False)
user_app = typer.Typer(help="Users and their roles (用户管理)", no_args_is_help=True)
app.add_typer(user_app, name="user")
devices_app = typer.Typer(help="Monitoring devices (监测设备)", no_args_is_help=True)
app.add_typer(devices_app, name="devices")
readings_app = typer.Typer(help="Monitoring readings (监测数据)", no_args_is_help=True)
app.add_typer(readings_app, name="readings")
console = Console()
err = Console(stderr=True)


def _db() -> Any:
    import geowarn.models  # noqa: F401  (every model and ORM listener, whatever the command imported)
    from geowarn.db import get_database

    return get_database()


def _migrate_quietly() -> None:
    from geowarn.db.migrate import upgrade

    upgrade(get_settings().database_url)


def _root_unit(db: Any) -> str:
    """The unit this installation serves: from the top of the unit tree, go down while a unit has
    exactly one child (a county install holds its province and city too, with one child each)."""
    from sqlalchemy import select

    from geowarn.admin.models import AdminUnit

    with db.read() as s:
        rows = s.execute(select(AdminUnit.code, AdminUnit.parent_code)).all()
    codes = {c for c, _ in rows}
    children: dict[str | None, list[str]] = {}
    for code, parent in rows:
        children.setdefault(parent if parent in codes else None, []).append(code)
    roots = children.get(None, [])
    if len(roots) != 1:
        raise typer.BadParameter("cannot tell which unit to use: pass --unit CODE", param_hint="--unit")
    unit = roots[0]
    while len(children.get(unit, [])) == 1:
        unit = children[unit][0]
    return unit


def _progress(*, auto_refresh: bool = True) -> Progress:
    """A progress bar on stderr; ``auto_refresh=False`` starts no refresh thread (call ``refresh``)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        auto_refresh=auto_refresh,
    )


@app.callback()
def _main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="debug logging")] = False) -> None:
    s = get_settings()
    configure_logging("DEBUG" if verbose else s.log_level, json=s.log_json)


@app.command()
def migrate(revision: Annotated[str, typer.Option(help="target revision")] = "heads") -> None:
    """Create or upgrade the database schema (Alembic) on SQLite or PostgreSQL/PostGIS."""
    from geowarn.db.migrate import current, upgrade

    url = get_settings().database_url
    upgrade(url, revision)
    console.print(f"database at revision [bold]{current(url)}[/] ({get_settings().backend})")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address")] = None,
    port: Annotated[int | None, typer.Option(help="port")] = None,
    workers: Annotated[
        int | None, typer.Option(min=0, max=64, help="processes (0: one per CPU on PostgreSQL, one on SQLite)")
    ] = None,
) -> None:
    """Serve the web application and API (http://127.0.0.1:8000 by default)."""
    import uvicorn

    s = get_settings()
    n = s.workers if workers is None else workers
    if n == 0:  # SQLite: one process keeps the single writer; more (--workers N) queue on its busy timeout
        n = (os.cpu_count() or 1) if s.backend == "postgresql" else 1
    _migrate_quietly()
    uvicorn.run("geowarn.api.app:create_app", factory=True, workers=n, host=host or s.host, port=port or s.port,
                log_level=s.log_level.lower())  # fmt: skip


@app.command()
def demo(
    seed: Annotated[int, typer.Option(help="seed of the generator")] = 2021,
    reset: Annotated[bool, typer.Option(help="rebuild even if the database already holds the demo")] = False,
    serve_after: Annotated[bool, typer.Option("--serve/--no-serve", help="serve the app afterwards")] = True,
    port: Annotated[int | None, typer.Option(help="port")] = None,
    event: Annotated[bool, typer.Option("--event/--no-event", help="replay a typhoon (rain + a failing slope)")] = True,
    speed: Annotated[float, typer.Option(min=1, max=100_000, help="replay speed (simulated seconds a second)")] = 360,
) -> None:
    """Build the demo county (示范县: 149 sites, 32 steep slopes) and serve it; a typhoon of the past
    36 hours is replayed in its first minutes (``--speed``), unless ``--no-event``."""
    from sqlalchemy import func, select

    from geowarn.demo import build_demo_county
    from geowarn.demo.live import start_demo_network
    from geowarn.inventory.models import HazardSite

    s = get_settings()
    if reset and s.backend == "sqlite":
        path = Path(s.database_url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
    _migrate_quietly()
    db = _db()
    with db.read() as session:
        existing = session.scalar(select(func.count()).select_from(HazardSite)) or 0
    if existing and not reset:
        console.print(f"the database already holds {existing} sites; use --reset to rebuild the demo")
    else:
        with console.status("building the demo county…"):
            summary = build_demo_county(db, seed=seed)
        for line in summary.lines():
            console.print(line)
    with console.status("starting the monitoring network and back-filling 24 hours of readings…"):
        live, sent = start_demo_network(
            db, seed=seed, mqtt_url=s.mqtt_url, start=serve_after, event=event, speed=speed,
            warning_engine=s.warning_engine,
        )  # fmt: skip
    console.print(
        f"monitoring network: {len(live.sim.devices)} devices, {sent:,} reports back-filled"
        + (f", publishing to {s.mqtt_url} (run geowarn worker)" if s.mqtt_url else "")
    )
    if event:
        minutes = 36 * 3600 / speed / 60
        console.print(f"typhoon replay: the last 36 hours in {minutes:.1f} minutes (×{speed:g}); watch /api/alerts")
    if serve_after:
        from geowarn.dissemination.demo import start_demo_dissemination

        messages = start_demo_dissemination(db, s)
        console.print(f"warning messages go to the local gateway {messages.gateway.url} (read them at /messages)")
        # the simulator sweeps device health itself, after its replay of the past (serve's sweep would
        # find every device silent for hours while the replay catches up)
        os.environ["GEOWARN_SERVE_HEALTH_SWEEP"] = "false"
        get_settings.cache_clear()
        try:
            serve(host=None, port=port)
        finally:
            messages.stop()
            live.stop()


@app.command()
def worker(
    client_id: Annotated[str | None, typer.Option(help="MQTT client id; keep it stable across restarts")] = None,
    mqtt_url: Annotated[str | None, typer.Option(help="broker, e.g. mqtt://127.0.0.1:1883")] = None,
) -> None:
    """Ingest device messages from the MQTT broker (several workers share the load)."""
    import signal
    import socket
    import time

    from geowarn.monitoring.ingest import Ingestor
    from geowarn.monitoring.mqtt import BrokerAddress, MqttWorker
    from geowarn.warning.engine import attach, attach_notify, build_engine
    from geowarn.warning.sweep import EVERY_S, health_sweep

    s = get_settings()
    url = mqtt_url or s.mqtt_url
    if not url:
        raise typer.BadParameter("no broker: set GEOWARN_MQTT_URL or pass --mqtt-url", param_hint="--mqtt-url")
    _migrate_quietly()
    db = _db()
    cid = client_id or f"geowarn-worker-{socket.gethostname()}"
    mqtt_worker = MqttWorker(
        Ingestor(db),
        BrokerAddress.parse(url),
        topic=s.mqtt_topic,
        group=s.mqtt_group,
        client_id=cid,
        batch_size=s.mqtt_batch,
        batch_ms=s.mqtt_batch_ms,
    )
    last_check = [0.0]

    def offline_check() -> None:
        if time.monotonic() - last_check[0] >= EVERY_S:
            last_check[0] = time.monotonic()  # a failed sweep waits its minute too
            health_sweep(db, int(time.time() * 1000), missed_intervals=s.offline_after_intervals)

    engine = None
    if s.warning_engine and s.warning_engine_process and db.backend == "postgresql":
        attach_notify(db, mqtt_worker.ingestor)  # a `geowarn engine` process evaluates
    elif s.warning_engine:
        engine, _ = build_engine(db, flap_minutes=s.warning_flap_minutes)
        attach(engine, mqtt_worker.ingestor)
        engine.start()
    signal.signal(signal.SIGTERM, lambda *_: mqtt_worker.stop())
    err.print(f"worker {cid} consuming {s.mqtt_topic} from {url}")
    try:
        mqtt_worker.run(idle_hook=offline_check)
    except KeyboardInterrupt:
        mqtt_worker.stop()
    finally:
        if engine is not None:
            engine.stop()
    t = mqtt_worker.totals
    err.print(f"stopped: {t.accepted} stored, {t.duplicate} duplicates, {t.rejected} rejected")


@app.command(name="engine")
def engine_command() -> None:
    """Evaluate site warnings for readings stored by workers and the API (PostgreSQL LISTEN/NOTIFY;
    set GEOWARN_WARNING_ENGINE_PROCESS=true for those processes)."""
    import signal
    import threading

    from geowarn.warning.engine import build_engine, listen
    from geowarn.warning.sweep import start_sweeping

    s = get_settings()
    _migrate_quietly()
    db = _db()
    if db.backend != "postgresql":
        raise typer.BadParameter("the engine process needs PostgreSQL (SQLite evaluates in-process)")
    engine, _ = build_engine(db, flap_minutes=s.warning_flap_minutes)
    engine.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    start_sweeping(db, s.offline_after_intervals, stop)
    err.print("warning engine listening for stored readings")
    try:
        listen(db, engine, stop)
    except KeyboardInterrupt:
        pass
    finally:
        engine.stop()
    err.print(f"stopped after {engine.evaluations:,} site evaluations")


@app.command(name="dispatch")
def dispatch_command(
    once: Annotated[bool, typer.Option("--once", help="send everything due, then exit")] = False,
    timeout: Annotated[float, typer.Option(help="with --once: give up after this many seconds")] = 600.0,
    lease: Annotated[float, typer.Option(help="seconds a claimed batch is reserved before recovery")] = 30.0,
    batch: Annotated[int | None, typer.Option(help="messages claimed at a time (default: settings)")] = None,
) -> None:
    """Send the warning outbox (SMS, voice, WeCom, DingTalk, e-mail, webhooks, inbox) with retries,
    rate limits, receipts and escalation of unconfirmed orange/red warnings (issue 5); queue the
    zero-report reminders at each deadline (issue 7, GEOWARN_ZERO_REPORT_REMINDERS)."""
    import contextlib
    import signal
    import threading

    from geowarn.dissemination.dispatcher import Dispatcher

    s = get_settings()
    _migrate_quietly()
    db = _db()
    d = Dispatcher.from_settings(db, s, lease_s=lease)
    d.batch = batch or d.batch
    if s.zero_report_reminders:
        from geowarn.fieldwork.reminders import ReminderSchedule

        d.tasks.append(ReminderSchedule.from_settings(db, s))
    try:
        if once:
            st = d.drain(timeout_s=timeout)
        else:
            stop = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            err.print(f"dispatching ({', '.join(sorted(d.channels))})")
            with contextlib.suppress(KeyboardInterrupt):
                d.run(stop)
            st = d.stats
    finally:
        d.close()
    err.print(f"sent {st.sent:,}, delivered {st.delivered:,}, retried {st.retried:,}, failed {st.failed:,}, "
              f"recovered {st.recovered_sent:,} sent / {st.recovered_pending:,} to resend")  # fmt: skip


@app.command(name="import")
def import_(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="file to import")],
    kind: Annotated[str, typer.Option(help="sites, risk_zones, households, shelters or units")] = "sites",
    unit: Annotated[str | None, typer.Option(help="administrative code every row must belong to")] = None,
    crs: Annotated[str | None, typer.Option(help="source CRS when the file does not say, e.g. EPSG:4528")] = None,
    mapping: Annotated[Path | None, typer.Option(help="YAML or JSON: column header -> field")] = None,
    skip_bad: Annotated[bool, typer.Option(help="commit the good rows; write the bad ones to --reject-file")] = False,
    reject_file: Annotated[Path | None, typer.Option(help="CSV of rejected rows with reasons")] = None,
    actor: Annotated[str | None, typer.Option(help="who is importing (recorded in the audit log)")] = None,
) -> None:
    """Import a ledger or GIS file (CSV, XLSX, GeoJSON, Shapefile, GeoPackage); re-import updates by code."""
    import yaml

    from geowarn.io.importer import import_file

    _migrate_quietly()
    db = _db()
    scope = unit or _root_unit(db)
    user_mapping = None
    if mapping is not None:
        user_mapping = yaml.safe_load(mapping.read_text(encoding="utf-8"))
        if not isinstance(user_mapping, dict):
            raise typer.BadParameter("the mapping file must be a mapping of header to field", param_hint="--mapping")
    if skip_bad and reject_file is None:
        reject_file = file.with_name(file.stem + ".rejected.csv")
    # No refresh thread: a process with one thread may fork the reader of a large file (io.pipeline).
    with _progress(auto_refresh=False) as bar:
        task = bar.add_task(f"importing {file.name}", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total or None)
            bar.refresh()

        try:
            result = import_file(
                db,
                file,
                kind=kind,
                actor=actor or f"cli:{getpass.getuser()}",
                scope_unit=scope,
                source_crs=crs,
                mapping=user_mapping,
                skip_bad=skip_bad,
                reject_path=reject_file,
                progress=progress,
            )
        except FileRejected as exc:
            bar.stop()
            _print_problems(exc)
            raise typer.Exit(2) from exc
    console.print(
        f"[green]imported[/] {result.total} rows: {result.created} created, {result.updated} updated, "
        f"{result.unchanged} unchanged, {result.rejected} rejected"
    )
    if result.rejected and result.reject_path:
        console.print(f"rejected rows and reasons: {result.reject_path}")


def _print_problems(exc: FileRejected, limit: int = 50) -> None:
    from rich.table import Table

    err.print(f"[red]文件未导入 / file rejected[/]: {exc.message_zh}")
    table = Table("行 row", "字段 field", "原因 reason", "值 value")
    for p in exc.problems[:limit]:
        table.add_row(str(p.row), p.field, p.reason, "" if p.value is None else str(p.value)[:40])
    err.print(table)
    if len(exc.problems) > limit:
        err.print(f"… and {len(exc.problems) - limit} more problems")
    err.print("nothing was written; fix the file or use --skip-bad to import the good rows")


@app.command()
def export(
    file: Annotated[Path, typer.Argument(help="output file; the format follows the suffix")],
    kind: Annotated[str, typer.Option(help="sites, risk_zones, households, shelters or units")] = "sites",
    unit: Annotated[str | None, typer.Option(help="administrative code to export")] = None,
    crs: Annotated[str, typer.Option(help="target CRS")] = "EPSG:4326",
    personal_data: Annotated[bool, typer.Option(help="include unmasked phones and ID numbers")] = False,
) -> None:
    """Export the register to CSV, XLSX, GeoJSON, Shapefile or GeoPackage."""
    from geowarn.io.exporter import export_file

    db = _db()
    scope = unit or _root_unit(db)
    with console.status(f"exporting {kind}…"):
        n = export_file(db, file, kind=kind, scope_unit=scope, personal_data=personal_data, target_crs=crs)
    console.print(f"wrote {n} rows to {file}")


@app.command()
def stats(
    unit: Annotated[str | None, typer.Option(help="administrative code (default: the whole installation)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="recompute the statistics summary table from the sites first (repair)")
    ] = False,
) -> None:
    """Statistics of the register by township, type, scale, status and monitoring mode."""
    from geowarn.inventory.stats import compute_stats, render_stats
    from geowarn.inventory.summary import rebuild_summary

    db = _db()
    scope = unit or _root_unit(db)
    if rebuild:
        with db.write("cli") as session:
            n = rebuild_summary(session.connection(), unit)  # no --unit: every site
        err.print(f"统计汇总表已重建：{unit or '全部'}，{n} 行")
    with db.read() as session:
        result = compute_stats(session, scope)
    if as_json:
        sys.stdout.write(json.dumps(result, ensure_ascii=False, indent=2, default=str) + "\n")
    else:
        console.print(render_stats(result))


@user_app.command("create")
def user_create(
    username: str,
    role: Annotated[str, typer.Option(help="administrator, operator, monitor or viewer")],
    unit: Annotated[str, typer.Option(help="administrative code the user is bound to")],
    password: Annotated[str | None, typer.Option(help="password (prompted when omitted)")] = None,
) -> None:
    """Create a user bound to a unit."""
    from geowarn.auth.service import create_user

    pw = (
        password
        or os.environ.get("GEOWARN_NEW_PASSWORD")
        or typer.prompt("password", hide_input=True, confirmation_prompt=True)
    )
    _migrate_quietly()
    with _db().write(f"cli:{getpass.getuser()}") as s:
        user = create_user(s, username=username, password=pw, role=role, unit_code=unit)
    console.print(f"created user [bold]{user.username}[/] ({role}, {unit})")


@user_app.command("list")
def user_list() -> None:
    """List users."""
    from rich.table import Table
    from sqlalchemy import select

    from geowarn.auth.models import User

    table = Table("username", "role", "unit", "active")
    with _db().read() as s:
        for u in s.scalars(select(User).order_by(User.username)):
            table.add_row(u.username, u.role, u.unit_code, "yes" if u.active else "no")
    console.print(table)


@user_app.command("passwd")
def user_passwd(username: str, password: Annotated[str | None, typer.Option()] = None) -> None:
    """Set a user's password."""
    from sqlalchemy import select

    from geowarn.auth.models import User
    from geowarn.auth.service import set_password

    pw = password or typer.prompt("new password", hide_input=True, confirmation_prompt=True)
    with _db().write(f"cli:{getpass.getuser()}") as s:
        user = s.scalars(select(User).where(User.username == username)).one_or_none()
        if user is None:
            err.print(f"no user {username!r}")
            raise typer.Exit(1)
        set_password(user, pw)
    console.print(f"password of {username} changed")


@devices_app.command("import")
def devices_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="CSV or XLSX device ledger")],
    unit: Annotated[str | None, typer.Option(help="administrative code every row must belong to")] = None,
    skip_bad: Annotated[bool, typer.Option(help="register the good rows; list the bad ones")] = False,
    keys_file: Annotated[Path | None, typer.Option(help="CSV to write generated apikeys to (keep it safe)")] = None,
    actor: Annotated[str | None, typer.Option(help="who is importing (recorded in the audit log)")] = None,
) -> None:
    """Register devices from a ledger (监测点编号, 设备编号, 设备类型…); re-import updates by deviceId."""
    import csv

    from geowarn.monitoring.files import import_devices

    _migrate_quietly()
    db = _db()
    try:
        with console.status(f"registering devices from {file.name}…"):
            result = import_devices(
                db,
                file,
                actor=actor or f"cli:{getpass.getuser()}",
                scope_unit=unit or _root_unit(db),
                skip_bad=skip_bad,
            )
    except FileRejected as exc:
        _print_problems(exc)
        raise typer.Exit(2) from exc
    console.print(
        f"[green]registered[/] {result.total} rows: {result.created} devices created, {result.updated} updated, "
        f"{result.stations_created} stations created, {result.rejected} rows rejected"
    )
    for p in result.problems[:50]:
        err.print(f"row {p.row} {p.field}: {p.reason} {p.value or ''}")
    if result.apikeys:
        target = keys_file or file.with_name(file.stem + ".apikeys.csv")
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # the keys are secrets: owner only
        with os.fdopen(fd, "w", encoding="utf-8-sig", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["设备编号", "apikey"])
            w.writerows(result.apikeys.items())
        console.print(f"{len(result.apikeys)} new apikeys written to {target} (shown nowhere else; keep it safe)")


@readings_app.command("import")
def readings_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="CSV or XLSX of readings")],
) -> None:
    """Load history readings (设备编号, 通道, 时间, 数值) through the ingestion path; bad rows are dead-lettered."""
    from geowarn.monitoring.files import import_readings
    from geowarn.monitoring.ingest import Ingestor

    _migrate_quietly()
    with _progress() as bar:
        task = bar.add_task(f"loading {file.name}", total=None)
        try:
            report = import_readings(
                Ingestor(_db()),
                file,
                progress=lambda done, total: bar.update(task, completed=done, total=total or None),
            )
        except FileRejected as exc:
            bar.stop()
            _print_problems(exc)
            raise typer.Exit(2) from exc
    console.print(
        f"[green]loaded[/] {report.accepted} readings stored, {report.duplicate} duplicates, {report.rejected} rejected"
    )
    for reason, n in sorted(report.reasons.items()):
        console.print(f"  rejected ({reason}): {n} readings (kept as dead letters: GET /api/monitoring/dead-letters)")


@app.command("zero-reports")
def zero_reports_command(
    unit: Annotated[str | None, typer.Option(help="county or province code (default: the installation)")] = None,
    date: Annotated[str | None, typer.Option(help="YYYY-MM-DD (default: today, China time)")] = None,
    reminders: Annotated[bool, typer.Option("--reminders", help="list who must be reminded now instead")] = False,
    send_reminders: Annotated[
        bool, typer.Option("--send-reminders", help="queue the reminders due now in the outbox (once)")
    ] = False,
) -> None:
    """Daily zero reports (每日零报告): townships still owing today's report, or the reminders to send."""
    import dataclasses
    import datetime as dt

    from geowarn.fieldwork import zero_reports
    from geowarn.fieldwork.domain import CHINA, calendar_from

    settings, db = get_settings(), _db()
    scope = unit or _root_unit(db)
    now = dt.datetime.now(dt.UTC)
    day = dt.date.fromisoformat(date) if date else now.astimezone(CHINA).date()
    cal = calendar_from(settings)
    if send_reminders:  # idempotent: what an earlier run (or the dispatcher) queued is not queued again
        from geowarn.fieldwork import reminders as zr_reminders

        lead = dt.timedelta(minutes=settings.zero_report_remind_before_minutes)
        with db.write(actor="cli") as s:
            sent = zr_reminders.send_due(s, scope, cal, settings.response_min_level, now, lead=lead)
        sys.stdout.write(json.dumps(dataclasses.asdict(sent), ensure_ascii=False, indent=2, default=str) + "\n")
        return
    with db.read() as s:
        if reminders:
            found = zero_reports.reminders(s, scope, day, cal, settings.response_min_level, now)
            data: Any = [dataclasses.asdict(r) for r in found]
        else:
            data = dataclasses.asdict(zero_reports.status(s, scope, day, cal, settings.response_min_level, now))
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


@app.command("cards")
def cards_command(
    township: Annotated[str, typer.Argument(help="9-digit township code")],
    out: Annotated[Path, typer.Option("--out", "-o", help="PDF file to write")],
    kind: Annotated[str, typer.Option(help="households (避险明白卡) or sites (防灾工作明白卡)")] = "households",
) -> None:
    """Print the two cards (两卡) of a township to one PDF."""
    from geowarn.auth.scope import unit_filter
    from geowarn.fieldwork import card_data, cards
    from geowarn.inventory.models import HazardSite, Household

    settings, db = get_settings(), _db()
    font = cards.find_cjk_font(settings.cjk_font, settings.cjk_font_index)
    with db.read() as s:
        if kind == "sites":
            sites = card_data.site_cards(s, unit_filter(HazardSite.unit_code, township), True)
            pdf = cards.render_site_cards(sites, font)
        elif kind == "households":
            content = card_data.household_cards(s, unit_filter(Household.unit_code, township), True)
            pdf = cards.render_household_cards(content, font)
        else:
            raise typer.BadParameter("households or sites", param_hint="--kind")
    out.write_bytes(pdf)
    console.print(f"wrote {out} ({len(pdf) / 1024:.0f} KiB)")


def main() -> None:
    try:
        app()
    except GeowarnError as exc:
        err.print(f"[red]error:[/] {exc.message_zh if exc.message_zh != exc.message else exc.message}")
        sys.exit(2)
