"""The two calls the warning workflow makes, inside its own transaction, to disseminate a decision.

* :func:`on_alert` — from :func:`geowarn.warning.alerts.apply_level` when a site alert opens,
  reopens, escalates, de-escalates or closes, for the alert kinds people are told of
  (``warning.alerts.TOLD_KINDS``: engine rules and field reports; device and no-data alarms are
  technical and only go to the operators' alert list).
* :func:`on_product_issued` — from :func:`geowarn.warning.products.issue` when a version (initial,
  update or lift) of a regional product is issued.

Either writes the issue, recipients and outbox rows before the caller commits: the decision and its
messages are one transaction, so neither exists without the other.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from geowarn.config import get_settings
from geowarn.dissemination import resolve
from geowarn.dissemination.models import WarningIssue
from geowarn.dissemination.outbox import Warning, publish
from geowarn.inventory.models import HazardSite
from geowarn.warning.levels import Level
from geowarn.warning.models import Alert
from geowarn.warning.product_models import ProductVersion

ALERT_ACTIONS = {"opened", "reopened", "escalated", "deescalated", "closed"}


def _enabled() -> tuple[bool, str]:
    s = get_settings()
    return s.dissemination, s.public_url


def _reason_zh(alert: Alert) -> str:
    name = alert.rule_name or alert.rule_id
    reason: dict[str, Any] = alert.reason or {}
    terms = reason.get("terms") or []
    parts = []
    for t in terms[:2] if isinstance(terms, list) else []:
        if isinstance(t, dict) and "series" in t and "value" in t:
            parts.append(f"{t['series']}={t['value']}")
    return name + (f"（{'，'.join(parts)}）" if parts else "")


def on_alert(session: Session, alert: Alert, action: str, previous: Level, now_ms: int) -> WarningIssue | None:
    """Disseminate a site alert's change (see the module docstring)."""
    enabled, public_url = _enabled()
    if not enabled or alert.site_id is None or action not in ALERT_ACTIONS:
        return None
    subject = f"alert:{alert.id}"
    told = session.scalar(select(WarningIssue.id).where(WarningIssue.subject == subject).limit(1)) is not None
    if action == "closed":
        if not told:
            return None
        kind, level = "lift", Level.NONE
    else:
        kind, level = ("update" if told else "initial"), Level(alert.level)
    site = session.get(HazardSite, alert.site_id)
    if site is None:
        return None
    res = resolve.for_site(session, site.id, level if level else Level.BLUE)
    title = f"{site.name}地质灾害{level.site_label if level else ''}预警{'解除' if kind == 'lift' else ''}"
    w = Warning(
        subject=subject,
        kind=kind,
        warning_type="site",
        level=level,
        previous_level=previous,
        unit_code=site.unit_code,
        title=title,
        now_ms=now_ms,
        alert_id=alert.id,
        context={
            "site_name": f"{site.name}（{site.code}）",
            "site_id": site.id,
            "reason_zh": _reason_zh(alert),
            "lon": site.lon,
            "lat": site.lat,
            "hazard_type": site.hazard_type,
        },
    )
    return publish(session, w, res, public_url=public_url)


def on_product_issued(session: Session, version: ProductVersion, now_ms: int) -> WarningIssue | None:
    """Disseminate an issued version of a regional product."""
    enabled, public_url = _enabled()
    if not enabled:
        return None
    product = version.product
    level = Level(version.level) if version.kind != "lift" else Level.NONE
    areas = [(a.level, a.geom) for a in version.areas] if version.kind != "lift" else []
    res = resolve.for_areas(session, product.unit_code, areas)
    kind = {"initial": "initial", "update": "update", "lift": "lift"}[version.kind]
    previous = session.scalar(
        select(WarningIssue.level)
        .where(WarningIssue.subject == f"product:{product.id}")
        .order_by(WarningIssue.version.desc())
        .limit(1)
    )
    w = Warning(
        subject=f"product:{product.id}",
        kind=kind,
        warning_type="regional",
        level=level,
        previous_level=Level(previous or 0),
        unit_code=product.unit_code,
        title=product.title,
        now_ms=now_ms,
        product_version_id=version.id,
        context={
            "product_code": product.code,
            "message": version.message,
            "version": version.number,
            "valid_from_ms": version.valid_from_ms,
            "valid_to_ms": version.valid_to_ms,
            "summary": {k: v for k, v in (version.summary or {}).items() if k != "townships"},
        },
    )
    return publish(session, w, res, public_url=public_url)
