"""A private Mosquitto broker and a worker subprocess for fault tests (kill, restart)."""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Broker:
    """Mosquitto on a free loopback port with persistence and unbounded queues for offline sessions."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.dir = workdir
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {workdir}/\nmax_queued_messages 0\nmax_inflight_messages 2000\n"
            f"log_dest file {workdir}/mosquitto.log\n"
            # Run as the test's own user: started as root, mosquitto would switch to 'mosquitto', which
            # cannot write its persistence file into pytest's private directory (and queues would be lost).
            f"user {getpass.getuser()}\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)  # a clean stop saves the persistence file
            self.proc.wait(timeout=10)
            self.proc = None


class Worker:
    """``geowarn worker`` as a real process that a test can kill with SIGKILL."""

    def __init__(self, db_url: str, mqtt_url: str, client_id: str, log: Path) -> None:
        self.env = {
            **os.environ,
            "GEOWARN_DATABASE_URL": db_url,
            "GEOWARN_MQTT_URL": mqtt_url,
            "GEOWARN_MQTT_BATCH": "200",
            "GEOWARN_LOG_LEVEL": "INFO",
        }
        self.client_id = client_id
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "geowarn", "worker", "--client-id", self.client_id],
                env=self.env,
                stdout=out,
                stderr=out,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.log.read_text(errors="replace").count("MQTT connected") > self._connects:
                self._connects += 1
                return
            if self.proc.poll() is not None:
                raise RuntimeError(self.log.read_text(errors="replace"))
            time.sleep(0.05)
        raise RuntimeError("worker did not connect:\n" + self.log.read_text(errors="replace"))

    _connects = 0

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class Publisher:
    """A QoS 1 publisher on a persistent session that keeps unacknowledged messages across reconnects."""

    def __init__(self, port: int, client_id: str = "test-publisher") -> None:
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        self.client.max_queued_messages_set(0)
        self.client.max_inflight_messages_set(100)
        self.client.reconnect_delay_set(0.1, 1)
        self.acked = 0
        self.published = 0
        self._lock = threading.Lock()
        self.client.on_publish = self._on_publish
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_publish(self, *_: object) -> None:
        with self._lock:
            self.acked += 1

    #: MQTT packet ids are 16 bits: with more than 65,535 unacknowledged publishes queued, paho
    #: reuses ids and loses messages, so the publisher waits when this many are outstanding.
    MAX_OUTSTANDING = 20_000

    def publish(self, topic: str, payload: bytes) -> None:
        self.published += 1
        while self.published - self.acked > self.MAX_OUTSTANDING:
            time.sleep(0.001)
        self.client.publish(topic, payload, qos=1)

    def wait_acked(self, n: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.acked >= n:
                return
            time.sleep(0.05)
        raise TimeoutError(f"only {self.acked} of {n} publishes acknowledged")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
