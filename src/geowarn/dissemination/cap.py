"""CAP 1.2 (OASIS Common Alerting Protocol, ITU-T X.1303) messages for public warnings.

China's profile (国家突发事件预警信息发布系统): the identifier is the 6-digit administrative code
(GB/T 2260) of the issuing unit + the issuing body's code + the send time ``YYYYMMDDHHMMSS`` + a
sequence number; times carry +08:00. Levels map to CAP as the national four-colour scheme does:

=======  ========  ===========  ==========================  ==========================
level    severity  urgency      certainty (forecast/data)   responseType
=======  ========  ===========  ==========================  ==========================
blue     Minor     Future       Possible / Observed         Monitor
yellow   Moderate  Expected     Likely / Observed           Prepare
orange   Severe    Expected     Likely / Observed           Evacuate
red      Extreme   Immediate    Likely / Observed           Evacuate
=======  ========  ===========  ==========================  ==========================

CAP polygons have no holes; an area with holes is sent as its outer rings (a slightly larger area
warned is the safe side) and simplified to at most ``MAX_POINTS`` vertices a polygon.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import shapely
from lxml import etree

from geowarn.warning.levels import Level

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
CST = dt.timezone(dt.timedelta(hours=8))
MAX_POINTS = 500

SEVERITY = {Level.BLUE: "Minor", Level.YELLOW: "Moderate", Level.ORANGE: "Severe", Level.RED: "Extreme"}
URGENCY = {Level.BLUE: "Future", Level.YELLOW: "Expected", Level.ORANGE: "Expected", Level.RED: "Immediate"}
FORECAST_CERTAINTY = {Level.BLUE: "Possible", Level.YELLOW: "Likely", Level.ORANGE: "Likely", Level.RED: "Likely"}
RESPONSE = {Level.BLUE: "Monitor", Level.YELLOW: "Prepare", Level.ORANGE: "Evacuate", Level.RED: "Evacuate"}


def cap_time(ms: int) -> str:
    """``2026-07-01T08:00:00+08:00`` (CAP forbids fractions of a second and "Z")."""
    return dt.datetime.fromtimestamp(ms // 1000, CST).isoformat(timespec="seconds")


def identifier(admin_code: str, body_code: str, sent_ms: int, sequence: int) -> str:
    """China-style identifier: admin code (6) + issuing body + YYYYMMDDHHMMSS + 4-digit sequence."""
    if len(admin_code) < 6 or not admin_code[:6].isdigit():
        raise ValueError(f"not an administrative code: {admin_code!r}")
    stamp = dt.datetime.fromtimestamp(sent_ms // 1000, CST).strftime("%Y%m%d%H%M%S")
    return f"{admin_code[:6]}{body_code}{stamp}{sequence % 10_000:04d}"


@dataclass(frozen=True, slots=True)
class Reference:
    sender: str
    identifier: str
    sent_ms: int

    def text(self) -> str:
        return f"{self.sender},{self.identifier},{cap_time(self.sent_ms)}"


@dataclass(slots=True)
class CapArea:
    description: str
    geometry: Any = None  # shapely (Multi)Polygon in lon/lat, or None
    geocodes: list[str] = field(default_factory=list)  # GB/T 2260 codes


@dataclass(slots=True)
class CapMessage:
    identifier: str
    sender: str
    sent_ms: int
    msg_type: str  # Alert / Update / Cancel
    level: Level
    event: str
    headline: str
    description: str
    instruction: str
    sender_name: str
    areas: list[CapArea]
    observed: bool = False  # from instruments (certainty Observed) rather than a forecast
    expires_ms: int | None = None
    onset_ms: int | None = None
    references: list[Reference] = field(default_factory=list)
    web: str | None = None
    status: str = "Actual"


def _polygon_texts(geometry: Any) -> list[str]:
    if geometry is None or shapely.is_empty(geometry):
        return []
    parts = list(geometry.geoms) if geometry.geom_type == "MultiPolygon" else [geometry]
    out = []
    for poly in parts:
        ring = shapely.Polygon(poly.exterior)
        tolerance = 0.0
        while len(ring.exterior.coords) > MAX_POINTS:
            tolerance = tolerance * 2 or 1e-4
            ring = shapely.Polygon(poly.exterior).simplify(tolerance, preserve_topology=True)
        coords = list(ring.exterior.coords)
        if len(coords) < 4:
            continue
        out.append(" ".join(f"{lat:.5f},{lon:.5f}" for lon, lat in coords))
    return out


def _sub(parent: Any, tag: str, text: str | None = None) -> Any:
    el = etree.SubElement(parent, f"{{{CAP_NS}}}{tag}")
    if text is not None:
        el.text = text
    return el


def render(msg: CapMessage) -> bytes:
    """The CAP 1.2 XML document (UTF-8, with declaration)."""
    if msg.msg_type not in ("Alert", "Update", "Cancel"):
        raise ValueError(f"msgType {msg.msg_type!r}")
    if msg.msg_type != "Alert" and not msg.references:
        raise ValueError("an Update or Cancel must reference the message it changes")
    level = msg.level if msg.level is not Level.NONE else Level.BLUE
    root = etree.Element(f"{{{CAP_NS}}}alert", nsmap={None: CAP_NS})
    _sub(root, "identifier", msg.identifier)
    _sub(root, "sender", msg.sender)
    _sub(root, "sent", cap_time(msg.sent_ms))
    _sub(root, "status", msg.status)
    _sub(root, "msgType", msg.msg_type)
    _sub(root, "scope", "Public")
    if msg.references:
        _sub(root, "references", " ".join(r.text() for r in msg.references))
    info = _sub(root, "info")
    _sub(info, "language", "zh-CN")
    _sub(info, "category", "Geo")
    _sub(info, "event", msg.event)
    _sub(info, "responseType", "AllClear" if msg.msg_type == "Cancel" else RESPONSE[level])
    _sub(info, "urgency", "Past" if msg.msg_type == "Cancel" else URGENCY[level])
    _sub(info, "severity", "Minor" if msg.msg_type == "Cancel" else SEVERITY[level])
    _sub(info, "certainty", "Observed" if msg.observed or msg.msg_type == "Cancel" else FORECAST_CERTAINTY[level])
    if msg.onset_ms is not None:
        _sub(info, "onset", cap_time(msg.onset_ms))
    if msg.expires_ms is not None:
        _sub(info, "expires", cap_time(msg.expires_ms))
    _sub(info, "senderName", msg.sender_name)
    _sub(info, "headline", msg.headline)
    _sub(info, "description", msg.description)
    _sub(info, "instruction", msg.instruction)
    if msg.web:
        _sub(info, "web", msg.web)
    for area in msg.areas:
        el = _sub(info, "area")
        _sub(el, "areaDesc", area.description)
        for poly in _polygon_texts(area.geometry):
            _sub(el, "polygon", poly)
        for code in area.geocodes:
            geo = _sub(el, "geocode")
            _sub(geo, "valueName", "GB/T 2260")
            _sub(geo, "value", code)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


#: The OASIS CAP 1.2 schema (unchanged copy of the standard's XSD), shipped to check every message.
SCHEMA_PATH = Path(__file__).with_name("CAP-v1.2.xsd")


class CapSchema:
    """The CAP 1.2 XML schema, loaded once (lxml), to check messages before they leave."""

    def __init__(self, xsd_path: Path = SCHEMA_PATH) -> None:
        self.schema = etree.XMLSchema(etree.parse(str(xsd_path)))

    def errors(self, document: bytes) -> list[str]:
        doc = etree.fromstring(document)
        if self.schema.validate(doc):
            return []
        return [f"line {e.line}: {e.message}" for e in self.schema.error_log]
