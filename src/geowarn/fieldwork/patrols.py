"""Storing patrols (巡查) and their photos; an abnormal patrol opens a danger report (险情).

A patrol is recognised by the UUID the phone generated when it was typed, so a patrol kept offline
and sent again (once or many times, even concurrently) is stored once; photos sent again with it
are recognised by their SHA-256 and stored once per patrol.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from geowarn.api.scoping import check_ref, get_scoped
from geowarn.auth.models import User
from geowarn.auth.scope import in_scope
from geowarn.config import Settings
from geowarn.errors import Conflict, InvalidInput
from geowarn.fieldwork.domain import (
    CHINA,
    PATROL_KIND_ZH,
    PatrolKind,
    PatrolResult,
    assess,
    check_answers,
    distance_m,
)
from geowarn.fieldwork.models import FieldPhoto, HazardEvent, HazardEventVersion, Patrol
from geowarn.fieldwork.photos import check_photo, store_photo
from geowarn.fieldwork.schemas import PatrolIn
from geowarn.inventory.domain import SiteStatus
from geowarn.inventory.models import HazardSite
from geowarn.warning.models import Alert
from geowarn.warning.product_models import RegionalProduct

#: Namespace of the UUIDs of events opened by patrols (derived from the patrol's UUID: idempotent too).
EVENT_NS = uuid.UUID("6f1c0e52-8d0b-4a3e-9a51-3c1f0e7a2b30")


@dataclass(frozen=True, slots=True)
class Upload:
    """A file of a multipart request: the name the client gave (never used for storage) and the bytes."""

    filename: str | None
    data: bytes


def _utc(t: dt.datetime) -> dt.datetime:
    return t.astimezone(dt.UTC) if t.tzinfo else t.replace(tzinfo=dt.UTC)


def add_photos(
    session: Session,
    settings: Settings,
    user: User,
    uploads: Sequence[Upload],
    *,
    unit_code: str,
    site: tuple[float, float] | None,
    patrol_id: int | None = None,
    event_id: int | None = None,
) -> list[FieldPhoto]:
    """Check, re-encode and store ``uploads`` for a patrol or an event; a photo already stored is skipped.

    All photos are checked before any is written, so one bad file rejects the request cleanly.
    """
    checked = [
        check_photo(u.data, max_bytes=int(settings.photo_max_mb * 1024 * 1024), max_pixels=settings.photo_max_pixels)
        for u in uploads
    ]
    owner = FieldPhoto.patrol_id == patrol_id if patrol_id is not None else FieldPhoto.event_id == event_id
    known = set(session.scalars(select(FieldPhoto.sha256).where(owner)))
    month = dt.datetime.now(CHINA).strftime("%Y/%m")
    out: list[FieldPhoto] = []
    for photo in checked:
        if photo.sha256 in known:
            continue
        known.add(photo.sha256)
        far, dist = False, None
        if site is not None and photo.lon is not None and photo.lat is not None:
            dist = round(distance_m(photo.lon, photo.lat, site[0], site[1]), 1)
            far = dist > settings.patrol_max_distance_m
        row = FieldPhoto(
            unit_code=unit_code,
            patrol_id=patrol_id,
            event_id=event_id,
            path=store_photo(settings.data_dir, photo, month),
            sha256=photo.sha256,
            media_type=photo.media_type,
            size=len(photo.content),
            width=photo.width,
            height=photo.height,
            taken_at=photo.taken_at,
            exif_lon=photo.lon,
            exif_lat=photo.lat,
            exif_distance_m=dist,
            far_from_site=far,
            uploaded_by=user.username,
        )
        session.add(row)
        out.append(row)
    session.flush()
    return out


def _existing(session: Session, user: User, client_uuid: str) -> Patrol | None:
    patrol = session.scalar(select(Patrol).where(Patrol.client_uuid == client_uuid))
    if patrol is not None and not in_scope(user.unit_code, patrol.unit_code):
        # Another unit's patrol: do not reveal it, do not touch it.
        raise Conflict("client_uuid already used", message_zh="该记录编号已被使用，请重新生成")
    return patrol


def _open_danger(session: Session, user: User, site: HazardSite, patrol: Patrol, signs: list[str]) -> HazardEvent:
    """The danger report (险情) an abnormal patrol becomes: a quick report the county sees at once."""
    text = "；".join(signs) or (patrol.remarks or "巡查发现异常")
    data = {
        "source": "patrol",
        "patrol_id": patrol.id,
        "signs": signs,
        "description": text,
        "remarks": patrol.remarks,
        "threatened_people": site.threatened_people,
    }
    event = HazardEvent(
        client_uuid=str(uuid.uuid5(EVENT_NS, patrol.client_uuid)),
        unit_code=site.unit_code,
        kind="danger",
        hazard_type=site.hazard_type,
        place=site.location_text or site.name,
        lon=site.lon,
        lat=site.lat,
        occurred_at=patrol.patrolled_at,
        site_id=site.id,
        patrol_id=patrol.id,
        threatened_people=site.threatened_people,
        reported_by=user.username,
    )
    event.versions.append(
        HazardEventVersion(
            number=1,
            kind="quick",
            client_uuid=str(uuid.uuid5(EVENT_NS, "v1:" + patrol.client_uuid)),
            data=data,
            reported_by=user.username,
        )
    )
    session.add(event)
    return event


def submit_patrol(
    session: Session, settings: Settings, user: User, body: PatrolIn, uploads: Sequence[Upload] = ()
) -> tuple[Patrol, bool]:
    """Store a patrol (or recognise it as already stored); returns it and whether it is new.

    A site outside the monitor's unit is not found (404), like every scoped record.
    """
    patrol = _existing(session, user, body.client_uuid)
    if patrol is None:
        try:
            with session.begin_nested():
                patrol = _create(session, settings, user, body)
        except IntegrityError:
            # The same patrol arrived twice at once: the other request stored it.
            patrol = _existing(session, user, body.client_uuid)
            if patrol is None:
                raise
        else:
            site = session.get(HazardSite, patrol.site_id)
            assert site is not None
            add_photos(
                session,
                settings,
                user,
                uploads,
                unit_code=patrol.unit_code,
                site=(site.lon, site.lat),
                patrol_id=patrol.id,
            )
            return patrol, True
    if patrol.site_id != body.site_id:
        raise Conflict("client_uuid already used for another site", message_zh="该记录编号已用于其他隐患点")
    site = session.get(HazardSite, patrol.site_id)
    assert site is not None
    add_photos(
        session, settings, user, uploads, unit_code=patrol.unit_code, site=(site.lon, site.lat), patrol_id=patrol.id
    )
    return patrol, False


def _create(session: Session, settings: Settings, user: User, body: PatrolIn) -> Patrol:
    site = get_scoped(session, HazardSite, body.site_id, user)
    if site.status == SiteStatus.WRITTEN_OFF:
        raise Conflict(f"site {site.id} is written off", message_zh="该隐患点已核销，无需巡查")
    now = dt.datetime.now(dt.UTC)
    if _utc(body.patrolled_at) > now + dt.timedelta(minutes=10):
        raise InvalidInput("patrolled_at lies in the future", message_zh="巡查时间不能晚于当前时间")
    if body.kind == PatrolKind.WARNING_CHECK and body.alert_id is None and body.product_id is None:
        raise InvalidInput(
            "a warning-ordered check names the alert or product that ordered it",
            message_zh=f"{PATROL_KIND_ZH[PatrolKind.WARNING_CHECK]}须注明对应的预警",
        )
    check_ref(session, Alert, body.alert_id, user, "alert_id")
    check_ref(session, RegionalProduct, body.product_id, user, "product_id")
    answers, signs = check_answers(site.hazard_type, body.checklist)
    result = assess(body.result, signs)
    if (body.lon is None) != (body.lat is None):
        raise InvalidInput("lon and lat go together", message_zh="经度和纬度须同时填写")
    dist = None
    if body.lon is not None and body.lat is not None:
        dist = round(distance_m(body.lon, body.lat, site.lon, site.lat), 1)
    patrol = Patrol(
        client_uuid=body.client_uuid,
        site_id=site.id,
        unit_code=site.unit_code,
        kind=body.kind.value,
        patrolled_at=_utc(body.patrolled_at),
        reporter=user.username,
        person_id=user.person_id,
        checklist=answers,
        result=result.value,
        remarks=body.remarks,
        lon=body.lon,
        lat=body.lat,
        gps_accuracy_m=body.gps_accuracy_m,
        distance_m=dist,
        far_from_site=dist is not None and dist > settings.patrol_max_distance_m,
        alert_id=body.alert_id,
        product_id=body.product_id,
    )
    session.add(patrol)
    session.flush()
    if result == PatrolResult.ABNORMAL:
        _open_danger(session, user, site, patrol, [s.zh for s in signs])
        session.flush()
    return patrol


def event_of(session: Session, patrol_id: int) -> int | None:
    return session.scalar(select(HazardEvent.id).where(HazardEvent.patrol_id == patrol_id))


def patrol_payload(patrol: Patrol, event_id: int | None) -> dict[str, Any]:
    from geowarn.fieldwork.schemas import PatrolPublic, PhotoPublic

    out = PatrolPublic.model_validate(patrol)
    out.event_id = event_id
    out.photos = [PhotoPublic.model_validate(p) for p in patrol.photos]
    return out.model_dump(mode="json")
