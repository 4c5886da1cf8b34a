"""A paho-mqtt client that reads the socket in chunks and hands deliveries over in batches.

paho's network loop reads one packet per ``select()`` and the socket a few bytes at a time (command
byte, each length byte, then the body), then builds an ``MQTTMessage``, matches the topic against the
callbacks and calls ``on_message`` under two locks, for every message: about 100 µs of Python per
message, which capped one worker near 7,000 messages/s before any database work. Acknowledging was
one queued packet, one wake-up byte and one ``send()`` per message.

:class:`BatchingClient` keeps paho for everything but the hot path: connecting, reconnecting,
keep-alive and subscribing are paho's. It overrides the packet reader to ``recv()`` up to 64 KiB at a
time and to cut every complete packet out of its buffer; QoS 0/1 ``PUBLISH`` packets of MQTT 3.1/3.1.1
become :class:`Delivery` tuples passed to ``on_deliveries`` once per chunk, and every other packet
(CONNACK, SUBACK, PINGRESP, QoS 2, all of MQTT 5) goes to paho's own handler unchanged.
:meth:`BatchingClient.ack_many` queues the PUBACKs of a whole batch as one write.

In manual-ack mode paho keeps no state for received QoS 1 messages (it only sends the PUBACK when
``ack()`` is called), so nothing paho relies on is skipped. This uses paho's private reader interface
(``_packet_read``, ``_in_packet``, ``_packet_handle``, ``_packet_queue``), checked at import: if a
paho release changes it, :data:`FAST_PATH` is false and the worker uses paho's public callbacks.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from typing import Any, NamedTuple

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.exception import MalformedPacket

log = logging.getLogger(__name__)

_READ_CHUNK = 65536
_PUBLISH = 0x30
_PUBACK_HEADER = 0x4002  # PUBACK packet type and remaining length 2, followed by the packet id

FAST_PATH = all(
    hasattr(mqtt.Client, name) for name in ("_packet_read", "_packet_handle", "_packet_queue", "_sock_recv")
)


class Delivery(NamedTuple):
    """One message from the broker; ``mid`` and ``qos`` are what its acknowledgement needs."""

    topic: str
    payload: bytes
    mid: int
    qos: int


def _in_packet(command: int = 0, body: bytearray | None = None) -> Any:
    """paho's record of the packet being read: empty, or ``body`` read whole (typed ``Any``: paho's type is private)."""
    return {"command": command, "have_remaining": int(body is not None), "remaining_count": [], "remaining_mult": 1,
            "remaining_length": len(body or b""), "packet": body or bytearray(), "to_process": 0, "pos": 0}  # fmt: skip


class BatchingClient(mqtt.Client):
    """paho's client with a chunked reader for ``PUBLISH`` and one write for a batch's PUBACKs."""

    def __init__(self, *args: Any, on_deliveries: Callable[[list[Delivery]], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_deliveries = on_deliveries
        self._rbuf = bytearray()
        self._rsock: object = None

    def _packet_read(self) -> MQTTErrorCode:
        if self._sock is not self._rsock:  # a new connection: what was left of the old one is void
            self._rbuf.clear()
            self._rsock = self._sock
        try:
            data = self._sock_recv(_READ_CHUNK)
        except BlockingIOError:
            return MQTTErrorCode.MQTT_ERR_AGAIN
        except OSError as err:
            self._easy_log(mqtt.MQTT_LOG_ERR, "failed to receive on socket: %s", err)
            return MQTTErrorCode.MQTT_ERR_CONN_LOST
        if not data:
            return MQTTErrorCode.MQTT_ERR_CONN_LOST
        buf = self._rbuf
        buf += data
        with self._msgtime_mutex:
            self._last_bytes_received = mqtt.time_func()
        rc, used = self._split(buf)
        del buf[:used]
        return rc

    def _split(self, buf: bytearray) -> tuple[MQTTErrorCode, int]:
        """Handle every complete packet at the start of ``buf``; the result code and bytes used."""
        fast = self._protocol != MQTTProtocolVersion.MQTTv5
        deliveries: list[Delivery] = []
        pos, n = 0, len(buf)
        rc = MQTTErrorCode.MQTT_ERR_SUCCESS
        while n - pos >= 2:
            length, mult, i = 0, 1, pos + 1  # remaining length: 1 to 4 bytes, 7 bits each
            while i < n:
                b = buf[i]
                length += (b & 127) * mult
                mult <<= 7
                i += 1
                if b < 128:
                    break
                if i - pos > 4:
                    return MQTTErrorCode.MQTT_ERR_PROTOCOL, pos
            else:
                break  # the length itself is incomplete
            end = i + length
            if end > n:
                break
            command = buf[pos]
            qos = (command >> 1) & 3
            if fast and command & 0xF0 == _PUBLISH and qos < 2 and length >= 2:
                t_end = i + 2 + ((buf[i] << 8) | buf[i + 1])
                start = t_end + 2 if qos else t_end
                if start > end:
                    return MQTTErrorCode.MQTT_ERR_PROTOCOL, pos
                mid = (buf[t_end] << 8) | buf[t_end + 1] if qos else 0
                topic = buf[i + 2 : t_end].decode("utf-8", "replace")
                deliveries.append(Delivery(topic, bytes(buf[start:end]), mid, qos))
            else:
                if deliveries:  # keep the broker's order around other packets
                    self.on_deliveries(deliveries)
                    deliveries = []
                rc = self._handle_one(command, buf[i:end])
            pos = end
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                break
        if deliveries:
            self.on_deliveries(deliveries)
        return rc, pos

    def _handle_one(self, command: int, body: bytearray) -> MQTTErrorCode:
        self._in_packet = _in_packet(command, body)
        try:
            return self._packet_handle()
        except MalformedPacket as exc:
            self._easy_log(mqtt.MQTT_LOG_DEBUG, "Received malformed packet: %s", exc)
            return MQTTErrorCode.MQTT_ERR_PROTOCOL
        finally:
            self._in_packet = _in_packet()

    def ack_many(self, deliveries: list[Delivery]) -> None:
        """Acknowledge deliveries: the QoS 1 PUBACKs as one queued write, anything else through paho."""
        mids = [d.mid for d in deliveries if d.qos == 1]
        for d in deliveries:
            if d.qos == 2:
                self.ack(d.mid, d.qos)
        if not mids:
            return
        if not FAST_PATH or not self._manual_ack:
            for mid in mids:
                self.ack(mid, 1)
            return
        packets = struct.pack(f">{len(mids)}I", *[(_PUBACK_HEADER << 16) | mid for mid in mids])
        self._packet_queue(mqtt.PUBACK, packets, 0, 0)
