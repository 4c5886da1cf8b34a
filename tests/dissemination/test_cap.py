"""CAP 1.2 messages validate against the OASIS schema and carry China's identifier and +08:00 times."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import shapely
from lxml import etree

from geowarn.dissemination.cap import SCHEMA_PATH, CapArea, CapMessage, CapSchema, Reference, identifier, render
from geowarn.warning.levels import Level

REFERENCE_XSD = Path(__file__).resolve().parents[3] / "shared" / "reference" / "CAP-v1.2.xsd"
NS = {"c": "urn:oasis:names:tc:emergency:cap:1.2"}
T0 = 1_782_864_000_000  # 2026-07-01 08:00 China time


@pytest.fixture(scope="module")
def schema() -> CapSchema:
    return CapSchema()  # the copy shipped in the package


def test_the_shipped_schema_is_the_reference_schema() -> None:
    if not REFERENCE_XSD.is_file():
        pytest.skip("../shared/reference is not next to this checkout")
    assert SCHEMA_PATH.read_bytes() == REFERENCE_XSD.read_bytes()


def _msg(level: Level, msg_type: str = "Alert", refs: list[Reference] | None = None, **kw: object) -> CapMessage:
    ring = shapely.Point(118.9, 26.6).buffer(0.1, 64)
    holed = shapely.Polygon(ring.exterior, [shapely.Point(118.9, 26.6).buffer(0.02).exterior])
    return CapMessage(
        identifier=identifier("350922", "41600", T0, 7),
        sender="geowarn@350922",
        sent_ms=T0,
        msg_type=msg_type,
        level=level,
        event="地质灾害气象风险预警",
        headline=f"示范县发布地质灾害气象风险{level.regional_label}预警",
        description="受台风影响，预计未来24小时示范县东部降雨量100毫米以上。",
        instruction="受威胁群众立即转移至避险点。",
        sender_name="示范县自然资源局、示范县气象局",
        expires_ms=T0 + 86_400_000,
        areas=[CapArea("城西街道、大桥镇", shapely.MultiPolygon([holed]), ["350922002", "350922103"])],
        references=refs or [],
        **kw,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("level", [Level.BLUE, Level.YELLOW, Level.ORANGE, Level.RED])
def test_every_level_is_valid_cap(schema: CapSchema, level: Level) -> None:
    doc = render(_msg(level))
    assert schema.errors(doc) == []
    root = etree.fromstring(doc)
    assert root.findtext("c:identifier", namespaces=NS) == "35092241600202607010800000007"
    assert root.findtext("c:sent", namespaces=NS) == "2026-07-01T08:00:00+08:00"
    severity = root.findtext("c:info/c:severity", namespaces=NS)
    assert (
        severity == {Level.BLUE: "Minor", Level.YELLOW: "Moderate", Level.ORANGE: "Severe", Level.RED: "Extreme"}[level]
    )
    polygon = root.findtext("c:info/c:area/c:polygon", namespaces=NS)
    pairs = polygon.split()
    assert pairs[0] == pairs[-1] and len(pairs) >= 4
    lat, lon = map(float, pairs[0].split(","))
    assert 26.4 < lat < 26.8 and 118.7 < lon < 119.1  # lat,lon order
    assert [g.text for g in root.iterfind("c:info/c:area/c:geocode/c:value", NS)] == ["350922002", "350922103"]
    assert root.findtext("c:info/c:language", namespaces=NS) == "zh-CN"


def test_update_and_cancel_reference_the_original(schema: CapSchema) -> None:
    first = Reference("geowarn@350922", identifier("350922", "41600", T0, 1), T0)
    update = render(_msg(Level.ORANGE, "Update", [first]))
    cancel = render(_msg(Level.ORANGE, "Cancel", [first]))
    for doc in (update, cancel):
        assert schema.errors(doc) == []
        assert etree.fromstring(doc).findtext("c:references", namespaces=NS) == (
            "geowarn@350922,35092241600202607010800000001,2026-07-01T08:00:00+08:00"
        )
    assert etree.fromstring(cancel).findtext("c:info/c:responseType", namespaces=NS) == "AllClear"
    with pytest.raises(ValueError, match="reference"):
        render(_msg(Level.RED, "Update"))


def test_huge_polygons_are_simplified_and_still_valid(schema: CapSchema) -> None:
    msg = _msg(Level.RED)
    msg.areas[0].geometry = shapely.Point(118.9, 26.6).buffer(0.3, 4000)
    doc = render(msg)
    assert schema.errors(doc) == []
    pairs = etree.fromstring(doc).findtext("c:info/c:area/c:polygon", namespaces=NS).split()
    assert 4 <= len(pairs) <= 500


def test_schema_catches_a_broken_message(schema: CapSchema) -> None:
    doc = render(_msg(Level.RED)).replace(b"<msgType>Alert</msgType>", b"<msgType>Shout</msgType>")
    assert any("msgType" in e for e in schema.errors(doc))


def test_a_thousand_messages_render_and_validate_quickly(schema: CapSchema) -> None:
    started = time.perf_counter()
    docs = [render(_msg(Level.ORANGE)) for _ in range(1000)]
    assert all(not schema.errors(d) for d in docs)
    assert time.perf_counter() - started < 60  # the figure (< 1 s) is measured in bench/, not here
