"""The MQTT adapter: a worker that subscribes, ingests in batches and acknowledges after commit.

At-least-once end to end: the worker subscribes with QoS 1 on a persistent session (fixed client
id, clean_session false) and acknowledges a message only after the transaction holding its
readings has committed (paho-mqtt ``manual_ack``). A worker killed in between never acknowledged,
so the broker delivers again when it returns, and the idempotent write (sensor, time) stores each
reading once. Several workers share the load through a shared subscription ``$share/<group>/<topic>``.

Broker settings matter for "nothing lost": Mosquitto's ``max_queued_messages`` (default 1000)
bounds what it keeps for a disconnected persistent client; set it to 0 (no limit) or large enough
for the longest outage you plan for, and enable ``persistence`` so a broker restart keeps queues.
For throughput, raise ``max_inflight_messages`` (default 20): the worker acknowledges a whole batch
after one commit, so a broker that lets only 20 messages in flight caps each batch at 20.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import paho.mqtt.client as mqtt

from geowarn.monitoring.ingest import Ingestor, IngestReport, RawPayload
from geowarn.monitoring.mqtt_client import FAST_PATH, BatchingClient, Delivery

log = logging.getLogger(__name__)

IDLE_GAP_S = 0.005


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str
    port: int
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        u = urlparse(url if "://" in url else f"mqtt://{url}")
        if u.scheme not in ("mqtt", "tcp"):
            raise ValueError(f"unsupported MQTT URL scheme {u.scheme!r} (use mqtt://host:port)")
        return cls(u.hostname or "127.0.0.1", u.port or 1883, u.username, u.password)


def shared_topic(group: str, topic: str) -> str:
    return f"$share/{group}/{topic}" if group else topic


class MqttWorker:
    """Consumes device messages from the broker into the database until ``stop()``."""

    def __init__(
        self,
        ingestor: Ingestor,
        broker: BrokerAddress,
        *,
        topic: str,
        group: str,
        client_id: str,
        batch_size: int = 1000,
        batch_ms: int = 100,
        on_batch: Any = None,
    ) -> None:
        self.ingestor = ingestor
        self.broker = broker
        self.topic = shared_topic(group, topic)
        self.batch_size = batch_size
        self.batch_ms = batch_ms
        self.on_batch = on_batch
        # The network thread puts lists of deliveries (all the messages of one socket read).
        self._inbox: queue.Queue[list[Delivery]] = queue.Queue()
        self._carry: list[Delivery] = []  # taken from the inbox beyond the last batch's size
        self._stop = threading.Event()
        self.connected = threading.Event()
        self.totals = IngestReport()
        self.client: mqtt.Client
        if FAST_PATH:
            self.client = BatchingClient(
                mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False, manual_ack=True,
                on_deliveries=self._inbox.put,
            )  # fmt: skip
        else:
            self.client = mqtt.Client(
                mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False, manual_ack=True
            )
        if broker.username:
            self.client.username_pw_set(broker.username, broker.password)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.max_inflight_messages_set(max(batch_size, 20))
        self.client.reconnect_delay_set(min_delay=1, max_delay=10)

    def _on_connect(self, client: mqtt.Client, _u: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            log.warning("MQTT connect refused", extra={"reason": str(reason)})
            return
        client.subscribe(self.topic, qos=1)
        self.connected.set()
        log.info("MQTT connected", extra={"topic": self.topic})

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.connected.clear()
        if not self._stop.is_set():
            log.warning("MQTT disconnected; reconnecting", extra={"reason": str(reason)})

    def _on_message(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        # Only what paho handles itself arrives here (QoS 2, MQTT 5, or a paho without the fast path).
        self._inbox.put([Delivery(message.topic, bytes(message.payload), message.mid, message.qos)])

    def start(self) -> None:
        self.client.connect_async(self.broker.host, self.broker.port, keepalive=30)
        self.client.loop_start()

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def run(self, *, idle_hook: Any = None) -> None:
        """Process batches until stopped. ``idle_hook`` runs about once a second (offline checks)."""
        self.start()
        last_idle = time.monotonic()
        try:
            while not self._stop.is_set():
                batch = self._take_batch()
                if batch:
                    self._process(batch)
                if idle_hook is not None and time.monotonic() - last_idle >= 1.0:
                    try:
                        idle_hook()
                    except Exception:  # a health check must not stop ingestion (a database blip, say)
                        log.exception("idle check failed; ingestion goes on")
                    last_idle = time.monotonic()
        finally:
            self.close()

    def _take_batch(self) -> list[Delivery]:
        batch = self._carry
        if not batch:
            try:
                batch = self._inbox.get(timeout=0.2)
            except queue.Empty:
                return []
        deadline = time.monotonic() + self.batch_ms / 1000
        while len(batch) < self.batch_size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                # Close the batch as soon as the flow pauses: a broker that allows only N messages
                # in flight sends no more until these are acknowledged, so waiting longer gains nothing.
                batch.extend(self._inbox.get(timeout=min(remaining, IDLE_GAP_S)))
            except queue.Empty:
                break
        batch, self._carry = batch[: self.batch_size], batch[self.batch_size :]
        return batch

    def _process(self, batch: list[Delivery]) -> None:
        now = int(time.time() * 1000)
        payloads = [RawPayload(m.payload, "mqtt", m.topic, now) for m in batch]
        while True:
            try:
                report = self.ingestor.ingest(payloads, now_ms=now)
                break
            except Exception:  # the database is away: keep the messages unacknowledged and retry
                log.exception("ingest failed; retrying in 1 s")
                if self._stop.wait(1.0):
                    return
        # Only now: the readings are committed.
        if isinstance(self.client, BatchingClient):
            self.client.ack_many(batch)
        else:
            for m in batch:
                self.client.ack(m.mid, m.qos)
        self.totals.accepted += report.accepted
        self.totals.duplicate += report.duplicate
        self.totals.rejected += report.rejected
        self.totals.reasons.update(report.reasons)
        if self.on_batch is not None:
            self.on_batch(report)
