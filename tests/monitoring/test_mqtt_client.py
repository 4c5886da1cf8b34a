"""The worker's chunked MQTT reader: packets cut at any byte come out whole, in order, and acks go in one write."""

from __future__ import annotations

import struct

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import MQTTErrorCode

from geowarn.monitoring.mqtt_client import FAST_PATH, BatchingClient, Delivery

pytestmark = pytest.mark.skipif(not FAST_PATH, reason="this paho release has no private reader to override")


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (128 if n else 0))
        if not n:
            return bytes(out)


def publish(topic: str, payload: bytes, mid: int, qos: int) -> bytes:
    t = topic.encode()
    body = struct.pack(">H", len(t)) + t + (struct.pack(">H", mid) if qos else b"") + payload
    return bytes([0x30 | qos << 1]) + _remaining_length(len(body)) + body


class FakeSocket:
    """Hands out queued chunks, then would block; records what is sent."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.sent = bytearray()

    def recv(self, n: int) -> bytes:
        if not self.chunks:
            raise BlockingIOError
        chunk = self.chunks.pop(0)
        assert len(chunk) <= n
        return chunk

    def send(self, data: bytes) -> int:
        self.sent += data
        return len(data)

    def close(self) -> None:
        pass


def client() -> tuple[BatchingClient, list[Delivery]]:
    got: list[Delivery] = []
    c = BatchingClient(mqtt.CallbackAPIVersion.VERSION2, client_id="t", clean_session=False, manual_ack=True,
                       on_deliveries=got.extend)  # fmt: skip
    return c, got


def feed(c: BatchingClient, sock: FakeSocket) -> list[MQTTErrorCode]:
    c._sock = sock  # type: ignore[assignment]
    codes = []
    while sock.chunks:
        codes.append(c._packet_read())
    return codes


MESSAGES = [
    Delivery("geowarn/A/up", b'{"a":1}', 1, 1),
    Delivery("geowarn/B/up", b"x" * 300, 2, 1),  # two length bytes
    Delivery("geowarn/C/up", b"", 0, 0),
    Delivery("geowarn/\u4e2d/up", b"y" * 20_000, 65535, 1),  # three length bytes, a UTF-8 topic
]
PINGRESP = b"\xd0\x00"


def stream() -> bytes:
    parts = [publish(*m) for m in MESSAGES]
    return b"".join(parts[:2]) + PINGRESP + b"".join(parts[2:])


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 64, 301, 4096, 65536])
def test_packets_cut_anywhere_come_out_whole_in_order(size: int) -> None:
    data = stream()
    c, got = client()
    c._ping_t = 1.0  # a PINGREQ is outstanding: paho's own handler must see the PINGRESP
    codes = feed(c, FakeSocket([data[i : i + size] for i in range(0, len(data), size)]))
    assert set(codes) == {MQTTErrorCode.MQTT_ERR_SUCCESS}
    assert got == MESSAGES
    assert c._ping_t == 0
    assert c._rbuf == b""


def test_a_new_connection_drops_the_old_ones_partial_packet() -> None:
    c, got = client()
    whole = publish("geowarn/A/up", b"1", 7, 1)
    feed(c, FakeSocket([whole[:5]]))
    feed(c, FakeSocket([whole]))
    assert got == [Delivery("geowarn/A/up", b"1", 7, 1)]


def test_a_lost_connection_and_a_bad_length_are_reported() -> None:
    c, _ = client()
    assert feed(c, FakeSocket([b""])) == [MQTTErrorCode.MQTT_ERR_CONN_LOST]
    c, _ = client()
    assert feed(c, FakeSocket([b"\x32\xff\xff\xff\xff\x01"])) == [MQTTErrorCode.MQTT_ERR_PROTOCOL]


def test_ack_many_writes_the_qos1_pubacks_at_once() -> None:
    c, _ = client()
    sock = FakeSocket([])
    c._sock = sock  # type: ignore[assignment]
    c.ack_many(MESSAGES)
    assert bytes(sock.sent) == b"\x40\x02\x00\x01" + b"\x40\x02\x00\x02" + b"\x40\x02\xff\xff"
