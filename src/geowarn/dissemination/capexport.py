"""Every disseminated warning version as a CAP 1.2 message, and an Atom feed of the active ones.

Built on :mod:`geowarn.dissemination.cap` (rendering, China's identifier, the level mapping, the
schema). An initial version is ``Alert``, an update ``Update`` and a lift ``Cancel``; updates and
cancels reference every earlier version of the same warning (CAP 1.2 §3.2.1 ``references``). The
area of a site alert is the site's danger zone (or a 200 m circle around the site when none is
registered) with the site's administrative code; a regional product's area is its warning polygons
with the townships' codes. The feed follows RFC 4287 (Atom) with one entry per active warning,
linking to its CAP document, as national CAP feeds do.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from xml.sax.saxutils import escape

import shapely
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from geowarn.dissemination.cap import CapArea, CapMessage, Reference, cap_time, render
from geowarn.dissemination.models import WarningIssue
from geowarn.dissemination.templates import action
from geowarn.inventory.models import HazardSite
from geowarn.warning.levels import Level
from geowarn.warning.product_models import ProductArea

MSG_TYPE = {"initial": "Alert", "update": "Update", "lift": "Cancel"}
EVENT = {"site": "地质灾害监测预警", "regional": "地质灾害气象风险预警"}


def sender_of(unit_code: str) -> str:
    return f"geowarn@{unit_code[:6]}.gov.cn"


def message_for(session: Session, issue: WarningIssue) -> CapMessage:
    earlier = session.scalars(
        select(WarningIssue)
        .where(WarningIssue.subject == issue.subject, WarningIssue.version < issue.version)
        .order_by(WarningIssue.version)
    ).all()
    refs = [Reference(sender_of(e.unit_code), e.cap_identifier, e.issued_ms) for e in earlier]
    level = Level(issue.level) if issue.kind != "lift" else Level(max((e.level for e in earlier), default=1) or 1)
    ctx: dict[str, Any] = issue.context or {}
    areas: list[CapArea] = []
    if issue.warning_type == "site":
        site = session.get(HazardSite, ctx.get("site_id")) if ctx.get("site_id") else None
        geom = None
        if site is not None:
            geom = site.danger_zone_geom
            if geom is None or shapely.is_empty(geom):
                geom = shapely.Point(site.lon, site.lat).buffer(0.002, 16)  # about 200 m
        areas.append(CapArea(str(ctx.get("site_name") or issue.title), geom, [issue.unit_code]))
        description = f"{ctx.get('site_name', '')}：{ctx.get('reason_zh', '')}"
        expires = None
    else:
        geoms = []
        if issue.product_version_id is not None:
            geoms = list(
                session.scalars(select(ProductArea.geom).where(ProductArea.version_id == issue.product_version_id))
            )
        union = shapely.union_all(geoms) if geoms else None
        names = "、".join(ctx.get("township_names") or []) or issue.title
        areas.append(CapArea(names, union, list(ctx.get("townships") or [issue.unit_code])))
        description = str(ctx.get("message") or issue.title)
        expires = ctx.get("valid_to_ms")
    instruction = action(issue.warning_type, Level(issue.level), issue.kind)
    return CapMessage(
        identifier=issue.cap_identifier,
        sender=sender_of(issue.unit_code),
        sent_ms=issue.issued_ms,
        msg_type=MSG_TYPE[issue.kind],
        level=level,
        event=EVENT[issue.warning_type],
        headline=issue.title,
        description=description or issue.title,
        instruction=instruction,
        sender_name=str(ctx.get("sender") or issue.unit_code),
        areas=areas,
        observed=issue.warning_type == "site",
        expires_ms=expires,
        references=refs,
    )


def cap_document(session: Session, issue: WarningIssue) -> bytes:
    return render(message_for(session, issue))


def active_issues(session: Session, scope: Any) -> list[WarningIssue]:
    """The latest version of every warning in scope that has not been lifted."""
    latest = (
        select(WarningIssue.subject, func.max(WarningIssue.version).label("v"))
        .where(scope)
        .group_by(WarningIssue.subject)
    ).subquery()
    stmt = (
        select(WarningIssue)
        .join(latest, (latest.c.subject == WarningIssue.subject) & (latest.c.v == WarningIssue.version))
        .where(WarningIssue.kind != "lift")
        .order_by(WarningIssue.issued_ms.desc(), WarningIssue.id.desc())
    )
    return list(session.scalars(stmt))


def atom_feed(issues: list[WarningIssue], base_url: str, feed_id: str) -> bytes:
    """An Atom feed (RFC 4287) with one entry per warning, linking to its CAP document."""
    updated = max((i.issued_ms for i in issues), default=int(dt.datetime.now(dt.UTC).timestamp() * 1000))
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="zh-CN">',
        "<title>地质灾害预警（生效中）</title>",
        f"<id>{escape(feed_id)}</id>",
        f"<updated>{cap_time(updated)}</updated>",
        f'<link rel="self" href="{escape(base_url)}/feed.atom"/>',
    ]
    for i in issues:
        level = Level(i.level)
        link = f"{base_url}/warnings/{i.id}/cap"
        out += [
            "<entry>",
            f"<id>urn:cap:{escape(i.cap_identifier)}</id>",
            f"<title>{escape(i.title)}</title>",
            f"<updated>{cap_time(i.issued_ms)}</updated>",
            f"<author><name>{escape(sender_of(i.unit_code))}</name></author>",
            f"<summary>{escape(level.colour)} {escape(i.kind)}</summary>",
            f'<link rel="alternate" type="application/cap+xml" href="{escape(link)}"/>',
            "</entry>",
        ]
    out.append("</feed>")
    return "\n".join(out).encode()
