"""Register services: the lifecycle of a hazard site and small helpers shared by importers and the API.

A site never disappears from the database. It leaves the register (在册) only through the
lifecycle of ``inventory.domain.SITE_TRANSITIONS``: treatment (综合治理/工程治理) or relocation
(避险搬迁), then write-off (核销). Every step is kept as a :class:`SiteStatusChange`, and a
write-off needs evidence (acceptance report, relocation record…), as the county work plans require
(seed 003: "核销…须有治理工程验收或搬迁安置材料").
"""

from __future__ import annotations

import datetime as dt
import math

import shapely
from sqlalchemy.orm import Session

from geowarn.admin.codes import township_of
from geowarn.errors import InvalidInput, InvalidTransition
from geowarn.inventory.domain import SITE_STATUS_ZH, SITE_TRANSITIONS, SiteStatus
from geowarn.inventory.models import HazardSite, SiteStatusChange

__all__ = ["record_registration", "set_site_location", "township_code_of", "transition_site_status"]


def township_code_of(unit_code: str | None) -> str | None:
    """The nine-digit township (乡镇/街道) code of a unit code, or None above township level."""
    if not unit_code:
        return None
    return township_of(unit_code)


def set_site_location(site: HazardSite, lon: float, lat: float) -> None:
    """Place a site: longitude/latitude columns and the point geometry, kept together.

    The bounding-box columns follow on flush (``BBoxMixin``).
    """
    lon_f, lat_f = float(lon), float(lat)
    if not (math.isfinite(lon_f) and math.isfinite(lat_f)) or not (-180 <= lon_f <= 180 and -90 <= lat_f <= 90):
        raise InvalidInput(
            f"coordinates out of range: lon={lon!r}, lat={lat!r}",
            message_zh=f"坐标超出范围：经度 {lon}，纬度 {lat}",
        )
    site.lon = lon_f
    site.lat = lat_f
    site.geom = shapely.Point(lon_f, lat_f)


def _status(value: str | SiteStatus) -> SiteStatus:
    try:
        return SiteStatus(value)
    except ValueError as exc:
        raise InvalidInput(f"unknown site status {value!r}", message_zh=f"未知的隐患点状态：{value}") from exc


def record_registration(
    session: Session, site: HazardSite, *, effective_on: dt.date, actor: str, reason: str = "纳入地质灾害隐患点台账"
) -> SiteStatusChange:
    """The first history row of a newly registered site (from nothing to 在册)."""
    site.status = SiteStatus.REGISTERED.value
    site.status_since = effective_on
    change = SiteStatusChange(
        site=site,
        from_status=None,
        to_status=SiteStatus.REGISTERED.value,
        effective_on=effective_on,
        reason=reason,
        evidence=None,
        by_user=actor,
    )
    session.add(change)
    return change


def transition_site_status(
    session: Session,
    site: HazardSite,
    target: SiteStatus,
    *,
    reason: str,
    effective_on: dt.date,
    evidence: str | None,
    actor: str,
) -> SiteStatusChange:
    """Move a site along its lifecycle and keep the step in its history.

    Raises :class:`InvalidTransition` (HTTP 409) when ``SITE_TRANSITIONS`` does not allow the step,
    and :class:`InvalidInput` when the reason is empty or a write-off (核销) comes without evidence.
    The caller's session commits; with ``db.write(actor)`` the audit log records the change too.
    """
    current = _status(site.status)
    goal = _status(target)
    if goal not in SITE_TRANSITIONS[current]:
        allowed = "、".join(SITE_STATUS_ZH[s] for s in sorted(SITE_TRANSITIONS[current])) or "无"
        raise InvalidTransition(
            f"site {site.code}: {current.value} -> {goal.value} is not allowed",
            message_zh=(
                f"隐患点 {site.code} 不能由“{SITE_STATUS_ZH[current]}”变更为“{SITE_STATUS_ZH[goal]}”"
                f"（可变更为：{allowed}）"
            ),
            site_code=site.code,
            from_status=current.value,
            to_status=goal.value,
        )
    if not reason or not reason.strip():
        raise InvalidInput("a status change needs a reason", message_zh="变更隐患点状态须填写原因")
    if goal is SiteStatus.WRITTEN_OFF and not (evidence and evidence.strip()):
        raise InvalidInput(
            f"site {site.code}: a write-off needs evidence",
            message_zh=f"隐患点 {site.code} 核销须提供依据（治理工程验收或搬迁安置材料）",
        )
    change = SiteStatusChange(
        site=site,
        from_status=current.value,
        to_status=goal.value,
        effective_on=effective_on,
        reason=reason.strip(),
        evidence=evidence.strip() if evidence else None,
        by_user=actor,
    )
    session.add(change)
    site.status = goal.value
    site.status_since = effective_on
    return change
