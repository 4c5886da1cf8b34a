"""``/api/fieldwork/patrols``: patrols (巡查) of sites by monitors, with photos, from a phone.

A patrol is sent as ``multipart/form-data``: the patrol as JSON in the ``data`` field and any number
of ``photos``. Sending the same patrol again (same ``client_uuid``) answers 200 with the stored
patrol instead of 201 — the phone may retry until it hears back.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Query, Response, UploadFile, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from geowarn.api.deps import Reader, ReadSession, WriteSession, require
from geowarn.api.routes.auth import app_settings
from geowarn.api.schemas.common import Page
from geowarn.api.scoping import get_scoped, page, scope_filter
from geowarn.auth.models import User
from geowarn.auth.roles import Permission
from geowarn.auth.scope import unit_filter
from geowarn.config import Settings
from geowarn.errors import InvalidInput, PhotoTooLarge
from geowarn.fieldwork.domain import CHINA, checklist_for
from geowarn.fieldwork.models import FieldPhoto, HazardEvent, Patrol
from geowarn.fieldwork.patrols import Upload, add_photos, submit_patrol
from geowarn.fieldwork.photos import photo_file
from geowarn.fieldwork.schemas import ChecklistItemPublic, PatrolIn, PatrolPublic, PhotoPublic
from geowarn.inventory.domain import HazardType
from geowarn.inventory.models import HazardSite

router = APIRouter(prefix="/fieldwork", tags=["fieldwork: patrols"])

Reporter = Annotated[User, require(Permission.REPORT)]
SettingsDep = Annotated[Settings, Depends(app_settings)]
Photos = Annotated[list[UploadFile], File(description="JPEG/PNG/WebP photos; EXIF is read, then stripped")]


def parse_json_field(model: type[PatrolIn], text: str) -> PatrolIn:
    """The JSON ``data`` field of a form, validated; errors answer 422 like a JSON body's."""
    try:
        return model.model_validate_json(text)
    except ValidationError as exc:
        errors = [
            {**e, "loc": ("body", "data", *e["loc"])} for e in exc.errors(include_url=False, include_context=False)
        ]
        raise RequestValidationError(errors) from None


def read_uploads(files: list[UploadFile], settings: Settings) -> list[Upload]:
    """The bytes of each file, refusing (413) as soon as one exceeds the photo limit."""
    limit = int(settings.photo_max_mb * 1024 * 1024)
    out = []
    for f in files[:20]:
        data = f.file.read(limit + 1)
        if len(data) > limit:
            raise PhotoTooLarge(f"photo exceeds {settings.photo_max_mb} MB", message_zh="照片超过大小上限")
        out.append(Upload(f.filename, data))
    if len(files) > 20:
        raise InvalidInput("at most 20 photos per request", message_zh="每次最多上传20张照片")
    return out


def present(session: Session, patrol: Patrol) -> PatrolPublic:
    out = PatrolPublic.model_validate(patrol)
    out.event_id = session.scalar(select(HazardEvent.id).where(HazardEvent.patrol_id == patrol.id))
    out.photos = [PhotoPublic.model_validate(p) for p in patrol.photos]
    return out


@router.post("/patrols", response_model=PatrolPublic, status_code=status.HTTP_201_CREATED)
def post_patrol(
    response: Response,
    session: WriteSession,
    user: Reporter,
    settings: SettingsDep,
    data: Annotated[str, Form(max_length=20_000, description="the patrol as JSON (PatrolIn)")],
    photos: Photos = [],  # noqa: B006  (FastAPI copies defaults)
) -> PatrolPublic:
    body = parse_json_field(PatrolIn, data)
    patrol, created = submit_patrol(session, settings, user, body, read_uploads(photos, settings))
    if not created:
        response.status_code = status.HTTP_200_OK
    session.refresh(patrol, ["photos"])
    return present(session, patrol)


@router.post("/patrols/{patrol_id}/photos", response_model=list[PhotoPublic], status_code=status.HTTP_201_CREATED)
def post_patrol_photos(
    patrol_id: int, session: WriteSession, user: Reporter, settings: SettingsDep, photos: Photos
) -> list[PhotoPublic]:
    """Photos sent after the patrol (a slow connection sends the text first)."""
    patrol = get_scoped(session, Patrol, patrol_id, user)
    site = session.get(HazardSite, patrol.site_id)
    assert site is not None
    rows = add_photos(
        session,
        settings,
        user,
        read_uploads(photos, settings),
        unit_code=patrol.unit_code,
        site=(site.lon, site.lat),
        patrol_id=patrol.id,
    )
    return [PhotoPublic.model_validate(r) for r in rows]


@router.get("/patrols", response_model=Page[PatrolPublic])
def list_patrols(
    session: ReadSession,
    user: Reader,
    site_id: int | None = None,
    unit: Annotated[str | None, Query(pattern=r"^\d{6,12}$")] = None,
    since: dt.date | None = None,
    result: Annotated[str | None, Query(pattern=r"^(normal|abnormal)$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[PatrolPublic]:
    stmt = (
        select(Patrol)
        .where(scope_filter(Patrol, user))
        .options(selectinload(Patrol.photos))
        .order_by(Patrol.patrolled_at.desc(), Patrol.id.desc())
    )
    if site_id is not None:
        stmt = stmt.where(Patrol.site_id == site_id)
    if unit:
        stmt = stmt.where(unit_filter(Patrol.unit_code, unit))
    if since is not None:
        stmt = stmt.where(Patrol.patrolled_at >= dt.datetime.combine(since, dt.time(), CHINA).astimezone(dt.UTC))
    if result:
        stmt = stmt.where(Patrol.result == result)
    rows, total = page(session, stmt, limit, offset)
    return Page[PatrolPublic](items=[present(session, p) for p in rows], total=total, limit=limit, offset=offset)


@router.get("/patrols/{patrol_id}", response_model=PatrolPublic)
def get_patrol(patrol_id: int, session: ReadSession, user: Reader) -> PatrolPublic:
    return present(session, get_scoped(session, Patrol, patrol_id, user))


@router.get("/photos/{photo_id}", response_class=FileResponse)
def get_photo(photo_id: int, session: ReadSession, user: Reader, settings: SettingsDep) -> FileResponse:
    """The stored (re-encoded, EXIF-free) photo."""
    photo = get_scoped(session, FieldPhoto, photo_id, user)
    return FileResponse(
        photo_file(settings.data_dir, photo.path),
        media_type=photo.media_type,
        filename=f"photo-{photo.id}{photo_file(settings.data_dir, photo.path).suffix}",
    )


@router.get("/checklists/{hazard_type}", response_model=list[ChecklistItemPublic])
def get_checklist(hazard_type: HazardType, user: Reader) -> list[ChecklistItemPublic]:
    """The patrol checklist of a hazard type (the phone caches it for offline use)."""
    return [ChecklistItemPublic(key=i.key, zh=i.zh) for i in checklist_for(hazard_type.value)]
