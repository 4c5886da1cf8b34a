"""MQTT end to end: publisher → Mosquitto → ``geowarn worker`` processes → database.

Measures readings stored per second from the first publish until the stored count equals the
published count (and checks it is exactly equal). Goals on PostgreSQL: >= 10,000 messages/s with
one reading per message; >= 100,000 readings/s with 50 readings per message.

The publisher is, by default, the C client ``mosquitto_pub -l -q 1`` (one message per line of a
file, QoS 1), in several processes of at most 60,000 messages each so that no MQTT packet id is
reused while its message is unacknowledged. Each counts the PUBACKs it received (``-d``), and the
benchmark fails unless every message was acknowledged. ``mosquitto_pub`` sends on one topic per
process, ``geowarn/bench-p<k>/up``: the worker identifies the device by the payload's ``deviceId``
and ``apikey``, not by the topic. ``--publisher=python`` uses one paho-mqtt client inside this
process instead, which publishes only about 7,500–10,500 messages/s on two cores.

The workers get ``--settle`` seconds (2) after connecting before the first publish, for their
start-up. Each row also gives the CPU seconds of the publisher, broker, workers and PostgreSQL (all its
processes working for this database) during the run, from ``/proc``, the CPU seconds the rest of
the machine used meanwhile ("others": the figures compare only when it is near zero) and the 1-minute
load average at the end.
Run: .venv/bin/python -m bench.bench_mqtt [sqlite|postgresql ...] [--small] [--workers=2,3]
     [--publisher=c|python] [--publishers=2] [--only=1|50] [--settle=2]
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import func, select, text

from bench.common import fresh_database, machine, table
from geowarn.monitoring.models import Observation
from geowarn.monitoring.service import register_device, register_station
from tests.monitoring.mqtt_helpers import Broker, Publisher, Worker

T0 = int(dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp() * 1000)
MOSQUITTO_PUB = shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub"
#: MQTT packet ids are 16 bits; a publisher process sends at most this many messages so that every
#: id in its queue is distinct (mosquitto_pub queues all of stdin before the acknowledgements).
MESSAGES_PER_PUBLISHER = 60_000
_TICK = os.sysconf("SC_CLK_TCK")


def register(db: object, n_devices: int) -> dict[str, str]:
    keys = {}
    with db.write("bench") as s:  # type: ignore[attr-defined]
        st = register_station(s, code="ST", name="bench", lon=118.9, lat=26.6, unit_code="350922100")
        for i in range(n_devices):
            r = register_device(s, st, device_type="LF", device_code=f"LF{i:05d}", reporting_interval_s=60)
            keys[r.device.device_code] = r.apikey
    return keys


def messages(keys: dict[str, str], n_messages: int, per_message: int) -> list[tuple[str, bytes]]:
    devices = sorted(keys)
    out = []
    for m in range(n_messages):
        d = devices[m % len(devices)]
        base = T0 + (m // len(devices)) * per_message * 60_000
        data = [{"value": round(1 + (k % 13) * 0.01, 2), "ts": base + k * 60_000} for k in range(per_message)]
        out.append((f"geowarn/{d}/up", orjson.dumps({"deviceId": d, "apikey": keys[d], "data": data})))
    return out


def stored_count(db: Any) -> int:
    """Readings stored so far, counted without parallel workers (they cost more than they save here)."""
    with db.read() as s:
        if db.backend == "postgresql":
            s.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
        return int(s.scalar(select(func.count()).select_from(Observation)) or 0)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def postgres_pids(database: str) -> list[int]:
    """The PostgreSQL processes working for this run: the backends of ``database`` and the server's own
    (writer, WAL writer, checkpointer…), not the backends of other databases on the same server."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() not in ("postgres", "postmaster"):
                    continue
                title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            is_backend = "127.0.0.1(" in title or "[local]" in title
            if not is_backend or f" {database} " in title:
                pids.append(int(entry.name))
    return pids


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy since boot (``/proc/stat``), to tell what others used meanwhile."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / _TICK  # all but idle and iowait; guest is in user


class CpuMeter:
    """CPU seconds by role over a run; processes that exit before ``stop`` are read by the caller.

    "others" is what the rest of the machine used during the run: the figures are only comparable
    when it is near zero.
    """

    def __init__(self, database: str) -> None:
        self.database = database
        self.start_pg = {pid: cpu_seconds(pid) for pid in postgres_pids(database)}
        self.start_self = sum(os.times()[:2])
        self.start_machine = machine_busy_seconds()
        self.roles: dict[str, float] = {}

    def add(self, role: str, seconds: float) -> None:
        self.roles[role] = self.roles.get(role, 0.0) + seconds

    def stop(self, pids: dict[str, list[int]], before: dict[int, float]) -> None:
        for role, ids in pids.items():
            self.add(role, sum(cpu_seconds(p) - before.get(p, 0.0) for p in ids))
        pg = postgres_pids(self.database)
        self.add("postgres", sum(cpu_seconds(p) - self.start_pg.get(p, 0.0) for p in pg))
        self.add("bench", sum(os.times()[:2]) - self.start_self)
        ours = sum(self.roles.values())
        self.add("others", max(0.0, machine_busy_seconds() - self.start_machine - ours))

    def summary(self) -> str:
        order = ("publisher", "broker", "workers", "postgres", "bench", "others")
        return " / ".join(f"{self.roles.get(r, 0.0):.1f}" for r in order)


class CPublishers:
    """``mosquitto_pub -l -q 1`` processes reading their messages from files, started together."""

    def __init__(self, port: int, payloads: list[tuple[str, bytes]], n_procs: int, workdir: Path) -> None:
        n_procs = max(n_procs, math.ceil(len(payloads) / MESSAGES_PER_PUBLISHER))
        self.port = port
        self.files = []
        self.counts = []
        for k in range(n_procs):
            part = payloads[k::n_procs]
            path = workdir / f"pub{k}.lines"
            path.write_bytes(b"".join(body + b"\n" for _, body in part))
            self.files.append(path)
            self.counts.append(len(part))
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs = [workdir / f"pub{k}.log" for k in range(n_procs)]

    def start(self) -> None:
        for k, (path, log) in enumerate(zip(self.files, self.logs, strict=True)):
            # -d prints each PUBACK received, which wait_acked counts; -M 1000 messages in flight.
            argv = [MOSQUITTO_PUB, "-h", "127.0.0.1", "-p", str(self.port), "-q", "1", "-l", "-d", "-M", "1000",
                    "-i", f"bench-pub{k}", "-t", f"geowarn/bench-p{k}/up"]  # fmt: skip
            with path.open("rb") as stdin, log.open("wb") as out:
                self.procs.append(subprocess.Popen(argv, stdin=stdin, stdout=out, stderr=subprocess.STDOUT))

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def wait_acked(self, timeout: float, cpu: CpuMeter) -> None:
        """Wait for every process to exit (after its last PUBACK) and check each message was acknowledged."""
        deadline = time.monotonic() + timeout
        for proc, log, n in zip(self.procs, self.logs, self.counts, strict=True):
            # Reap through wait4 to read the child's CPU time, which /proc no longer has once it is gone.
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    proc.returncode = os.waitstatus_to_exitcode(status)
                    cpu.add("publisher", usage.ru_utime + usage.ru_stime)
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"mosquitto_pub {proc.pid} still running")
                time.sleep(0.005)
            text = log.read_text(errors="replace")
            acked = len(re.findall(r"received PUBACK \(Mid: \d+, RC:0\)", text))
            if proc.returncode != 0 or acked != n:
                raise RuntimeError(f"mosquitto_pub exited {proc.returncode} with {acked} of {n} acknowledged")

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def run(
    backend: str, n_messages: int, per_message: int, n_workers: int, publisher: str, n_pubs: int, settle_s: float
) -> list[object]:
    with fresh_database(backend) as db, tempfile.TemporaryDirectory() as tmp:
        keys = register(db, 2000)
        payloads = messages(keys, n_messages, per_message)
        broker = Broker(Path(tmp))
        broker.start()
        workers = [Worker(db.url, broker.url, f"bench-w{i}", Path(tmp) / f"w{i}.log") for i in range(n_workers)]
        for w in workers:
            w.env["GEOWARN_MQTT_BATCH"] = "2000"
            w.start()
        # A worker's start-up is not throughput: its first offline check (all 2,000 devices) and the
        # imports it needs run about 1 s after it connects, and would otherwise stall it mid-run.
        time.sleep(settle_s)
        cpub = CPublishers(broker.port, payloads, n_pubs, Path(tmp)) if publisher == "c" else None
        pub = None if cpub else Publisher(broker.port, client_id="bench-pub")
        expected = n_messages * per_message
        assert broker.proc is not None
        pids = {"broker": [broker.proc.pid], "workers": [w.proc.pid for w in workers if w.proc]}
        before = {p: cpu_seconds(p) for ids in pids.values() for p in ids}
        cpu = CpuMeter(db.url.rsplit("/", 1)[-1])
        try:
            t0 = time.perf_counter()
            if cpub:
                cpub.start()
                cpub.wait_acked(600, cpu)
            else:
                assert pub is not None
                for _topic, body in payloads:
                    pub.publish(_topic, body)
                pub.wait_acked(n_messages, timeout=600)
            t_pub = time.perf_counter() - t0
            stored = 0
            deadline = time.monotonic() + 900
            while time.monotonic() < deadline:
                stored = stored_count(db)
                if stored >= expected:
                    break
                # Counting 100,000 rows costs the database ~10 ms: poll every 50 ms only near the end.
                time.sleep(0.05 if stored >= 0.9 * expected else 0.25)
            elapsed = time.perf_counter() - t0
            cpu.stop(pids, before)
            if not cpub:  # the paho client runs in this process: its CPU is the benchmark's
                cpu.add("publisher", cpu.roles.pop("bench", 0.0))
        finally:
            if cpub:
                cpub.close()
            if pub:
                pub.close()
            for w in workers:
                w.terminate()
            broker.stop()
        exact = "yes" if stored == expected else f"NO ({stored})"
        pub_name = f"C ×{len(cpub.procs)}" if cpub else "Python ×1"
        return [backend, per_message, f"{n_messages:,}", n_workers, pub_name, f"{t_pub:.1f}", f"{elapsed:.1f}",
                f"{n_messages / elapsed:,.0f}", f"{expected / elapsed:,.0f}", exact, cpu.summary(),
                f"{os.getloadavg()[0]:.2f}"]  # fmt: skip


def _option(name: str, default: str) -> str:
    for a in sys.argv[1:]:
        if a.startswith(f"--{name}="):
            return a.split("=", 1)[1]
    return default


def main() -> None:
    backends = [a for a in sys.argv[1:] if not a.startswith("--")] or ["postgresql", "sqlite"]
    scale = 0.2 if "--small" in sys.argv else 1.0  # --small: 20,000 and 2,000 messages
    worker_counts = [int(n) for n in _option("workers", "2,3").split(",")]
    publisher = _option("publisher", "c")
    n_pubs = int(_option("publishers", "2"))
    sizes = [int(n) for n in _option("only", "1,50").split(",")]
    settle_s = float(_option("settle", "2"))
    if publisher not in ("c", "python"):
        raise SystemExit("--publisher is c or python")
    rows = []
    for backend in backends:
        for n_workers in worker_counts:
            if 1 in sizes:
                rows.append(run(backend, int(100_000 * scale), 1, n_workers, publisher, n_pubs, settle_s))
            if 50 in sizes:
                rows.append(run(backend, int(10_000 * scale), 50, n_workers, publisher, n_pubs, settle_s))
    print(f"MQTT end to end ({machine()}; publisher, Mosquitto, workers and database share the machine):\n")
    print(table(["backend", "readings/msg", "messages", "workers", "publisher", "publish s", "all stored s",
                 "messages/s", "readings/s", "stored = published",
                 "CPU s: publisher / broker / workers / postgres / bench / others", "load 1 min"], rows))  # fmt: skip


if __name__ == "__main__":
    main()
