"""The two calls the warning workflow makes, inside its own transaction, to disseminate a decision.

* :func:`on_alerts` — from :func:`geowarn.warning.transitions.apply_levels` when site alerts open,
  reopen, escalate, de-escalate or close, for the alert kinds people are told of
  (``warning.alerts.TOLD_KINDS``: engine rules and field reports; device and no-data alarms are
  technical and only go to the operators' alert list). The changes of one batch are disseminated
  together: one recipient resolution over all their sites (:func:`resolve_sites.for_sites`) and one
  write of their issues, recipients and outbox rows (:func:`outbox_batch.publish_many`).
  :func:`on_alert` is one change.
* :func:`on_product_issued` — from :func:`geowarn.warning.products.issue` when a version (initial,
  update or lift) of a regional product is issued.

Either writes the issue, recipients and outbox rows before the caller commits: the decision and its
messages are one transaction, so neither exists without the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from geowarn.config import get_settings
from geowarn.dissemination import resolve
from geowarn.dissemination.models import WarningIssue
from geowarn.dissemination.outbox import Warning, publish
from geowarn.dissemination.outbox_batch import publish_many
from geowarn.dissemination.resolve_sites import for_sites
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


@dataclass(frozen=True, slots=True)
class AlertChange:
    """A site alert's change, as :func:`geowarn.warning.transitions.apply_levels` recorded it."""

    alert: Alert
    action: str
    previous: Level
    now_ms: int


def on_alert(session: Session, alert: Alert, action: str, previous: Level, now_ms: int) -> WarningIssue | None:
    """Disseminate a site alert's change (see the module docstring)."""
    return on_alerts(session, [AlertChange(alert, action, previous, now_ms)])[0]


def on_alerts(session: Session, changes: Sequence[AlertChange]) -> list[WarningIssue | None]:
    """Disseminate the changes of distinct alerts together; the issue of each (None: nobody is told)."""
    out: list[WarningIssue | None] = [None] * len(changes)
    enabled, public_url = _enabled()
    todo = [i for i, c in enumerate(changes) if c.alert.site_id is not None and c.action in ALERT_ACTIONS]
    if not enabled or not todo:
        return out
    subjects = {i: f"alert:{changes[i].alert.id}" for i in todo}
    if len(set(subjects.values())) != len(todo):
        raise ValueError("one change per alert in a batch")
    told = _told(session, list(subjects.values()))
    sites = _sites(session, {changes[i].alert.site_id or 0 for i in todo})
    chosen: list[tuple[int, int, Warning, Level]] = []  # (change, site, warning, level to resolve at)
    for i in todo:
        c, subject = changes[i], subjects[i]
        site = sites.get(c.alert.site_id or 0)
        if site is None or (c.action == "closed" and subject not in told):
            continue  # nobody was told of an alert that ends: nobody is told it ended
        if c.action == "closed":
            kind, level = "lift", Level.NONE
        else:
            kind, level = ("update" if subject in told else "initial"), Level(c.alert.level)
        chosen.append((i, site.id, _warning(c, site, subject, kind, level), level if level else Level.BLUE))
    resolutions = for_sites(session, [(site_id, at) for _, site_id, _, at in chosen])
    items = [(w, res) for (_, _, w, _), res in zip(chosen, resolutions, strict=True)]
    for (i, _, _, _), issue in zip(chosen, publish_many(session, items, public_url=public_url), strict=True):
        out[i] = issue
    return out


def _told(session: Session, subjects: list[str]) -> set[str]:
    """The subjects with an issue already (their next one is an update or a lift)."""
    out: set[str] = set()
    for k in range(0, len(subjects), resolve.CHUNK):
        chunk = subjects[k : k + resolve.CHUNK]
        out.update(session.scalars(select(WarningIssue.subject).where(WarningIssue.subject.in_(chunk))))
    return out


def _sites(session: Session, ids: set[int]) -> dict[int, HazardSite]:
    wanted = sorted(ids)
    out: dict[int, HazardSite] = {}
    for k in range(0, len(wanted), resolve.CHUNK):
        chunk = wanted[k : k + resolve.CHUNK]
        out.update((s.id, s) for s in session.scalars(select(HazardSite).where(HazardSite.id.in_(chunk))))
    return out


def _warning(c: AlertChange, site: HazardSite, subject: str, kind: str, level: Level) -> Warning:
    title = f"{site.name}地质灾害{level.site_label if level else ''}预警{'解除' if kind == 'lift' else ''}"
    return Warning(
        subject=subject,
        kind=kind,
        warning_type="site",
        level=level,
        previous_level=c.previous,
        unit_code=site.unit_code,
        title=title,
        now_ms=c.now_ms,
        alert_id=c.alert.id,
        context={
            "site_name": f"{site.name}（{site.code}）",
            "site_id": site.id,
            "reason_zh": _reason_zh(c.alert),
            "lon": site.lon,
            "lat": site.lat,
            "hazard_type": site.hazard_type,
        },
    )


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
