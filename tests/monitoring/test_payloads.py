"""Device payloads: both styles parse; hostile input is bounded and reported, never raised."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geowarn.monitoring.payloads import MAX_PAYLOAD_BYTES, parse_payload, parse_time_ms


def _dump(obj: object) -> bytes:
    return orjson.dumps(obj)


def test_national_style_gnss_with_health_and_time() -> None:
    msg = parse_payload(
        _dump(
            {
                "deviceId": "GP001",
                "apikey": "k",
                "data": {
                    "gpsTotalX": 1.5,
                    "gpsTotalY": -2,
                    "gpsTotalZ": "0.25",
                    "battery": 12.1,
                    "time": "2026-07-01 08:00:00",
                },
            }
        )
    )
    assert msg.device_code == "GP001" and msg.apikey == "k"
    assert [(r.channel, r.value) for r in msg.readings] == [
        ("gpsTotalX", 1.5),
        ("gpsTotalY", -2.0),
        ("gpsTotalZ", 0.25),
    ]
    # A naive time is China Standard Time.
    assert {r.t_ms for r in msg.readings} == {1782864000000}
    assert msg.health == {"battery": 12.1}
    assert msg.rejections == []


def test_national_style_several_readings_rain() -> None:
    msg = parse_payload(
        _dump(
            {
                "deviceId": "R1",
                "apikey": "k",
                "data": [
                    {"value": 0.5, "totalValue": 10.5, "ts": 1782864000},
                    {"value": 1.0, "totalValue": 11.5, "ts": 1782864600000},
                ],
            }
        )
    )
    assert [(r.channel, r.t_ms, r.value) for r in msg.readings] == [
        ("value", 1782864000000, 0.5), ("totalValue", 1782864000000, 10.5),
        ("value", 1782864600000, 1.0), ("totalValue", 1782864600000, 11.5),
    ]  # fmt: skip


def test_geowarn_style() -> None:
    msg = parse_payload(
        _dump(
            {
                "deviceId": "LF1",
                "apikey": "k",
                "readings": [
                    {"channel": "value", "t": "2026-07-01T00:00:00Z", "value": 3.2},
                    {"channel": "value", "value": 3.3},
                ],
            }
        )
    )
    assert [(r.t_ms, r.value) for r in msg.readings] == [(1782864000000, 3.2), (None, 3.3)]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "bad_json"),
        (b"[1,2,3]", "bad_shape"),
        (b'{"deviceId": "D", "apikey": "k"}', "bad_shape"),
        (b'{"deviceId": 5, "apikey": "k", "data": {}}', "bad_identity"),
        (b'{"deviceId": "' + b"x" * 100 + b'", "apikey": "k", "data": {}}', "bad_identity"),
        (b'{"apikey": "k", "data": {"value": 1}}', "bad_identity"),
        (b"\xff\xfe garbage", "bad_json"),
        (b"", "bad_json"),
    ],
)
def test_malformed_payloads_are_reported(raw: bytes, reason: str) -> None:
    msg = parse_payload(raw)
    assert msg.readings == []
    assert msg.rejections[0].reason == reason


def test_one_megabyte_message_is_refused_before_parsing() -> None:
    raw = b'{"deviceId": "D", "apikey": "k", "data": {"value": 1}, "pad": "' + b"a" * MAX_PAYLOAD_BYTES + b'"}'
    msg = parse_payload(raw)
    assert msg.rejections[0].reason == "too_large"


def test_deeply_nested_json_is_refused() -> None:
    nested: object = {"value": 1}
    for _ in range(200):
        nested = {"x": nested}
    msg = parse_payload(_dump({"deviceId": "D", "apikey": "k", "data": nested}))
    assert msg.readings == [] and msg.rejections[0].reason == "bad_value"
    deeper = b'{"deviceId":"D","apikey":"k","data":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert parse_payload(deeper).rejections[0].reason == "bad_json"


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e999", None, True, [1], {"a": 1}, "drop table"])
def test_non_finite_and_wrong_types_are_rejected_per_reading(value: object) -> None:
    raw = b'{"deviceId":"D","apikey":"k","data":{"value":' + _value_json(value) + b',"totalValue":2}}'
    msg = parse_payload(raw)
    assert [(r.channel, r.value) for r in msg.readings] == [("totalValue", 2.0)]
    assert [r.reason for r in msg.rejections] == ["bad_value"]


def _value_json(value: object) -> bytes:
    if value in ("NaN", "Infinity", "-Infinity", "1e999"):
        return str(value).encode()  # not valid JSON numbers for strict parsers: as strings below
    return _dump(value)


def test_sql_looking_strings_are_just_bad_values() -> None:
    msg = parse_payload(_dump({"deviceId": "D'; DROP TABLE observation;--", "apikey": "k", "data": {"value": 1}}))
    assert msg.device_code == "D'; DROP TABLE observation;--"  # it is data; the lookup will not find it


def test_bad_times() -> None:
    for t in ["yesterday", "2026-13-45T00:00:00", True, 1e400]:
        msg = parse_payload(b'{"deviceId":"D","apikey":"k","data":{"value":1,"time":' + _dump_time(t) + b"}}")
        assert msg.readings == [] and msg.rejections[0].reason == "bad_time", t


def _dump_time(t: object) -> bytes:
    return b"1e400" if t == 1e400 else _dump(t)


def test_parse_time_units() -> None:
    assert parse_time_ms(1782864000) == 1782864000000
    assert parse_time_ms(1782864000123) == 1782864000123
    assert parse_time_ms("2026-07-01T08:00:00+08:00") == 1782864000000


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    parse_payload(raw)


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.floats() | st.text(max_size=20) | st.integers(-(2**63), 2**63 - 1),
        lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=4),
        max_leaves=30,
    )
)
def test_arbitrary_json_in_data_never_raises(data: object) -> None:
    msg = parse_payload(
        orjson.dumps({"deviceId": "D", "apikey": "k", "data": data}, option=orjson.OPT_NON_STR_KEYS)
        if not isinstance(data, float) or data == data
        else b"{}"
    )
    for r in msg.readings:
        assert r.value == r.value and abs(r.value) != float("inf")
