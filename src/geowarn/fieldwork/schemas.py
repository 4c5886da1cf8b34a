"""Request and response bodies of the field routes (pydantic; no I/O)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StrictBool, field_validator

from geowarn.api.schemas.common import Input, Latitude, Longitude, Public, UnitCode, UtcDatetime
from geowarn.fieldwork.domain import EventKind, PatrolKind, PatrolResult, WriteOffBasis
from geowarn.inventory.domain import HazardType


def _uuid(text: str) -> str:
    return str(uuid.UUID(text))


#: A client-generated UUID (any version), normalised to the canonical lower-case form.
ClientUuid = Annotated[str, Field(min_length=32, max_length=36), AfterValidator(_uuid)]
Aware = Annotated[dt.datetime, AfterValidator(lambda v: v if v.tzinfo else v.replace(tzinfo=dt.UTC))]
Count = Annotated[int, Field(ge=0, le=10_000_000)]


class PatrolIn(Input):
    """A patrol as the phone sends it (the ``data`` field of the multipart form)."""

    client_uuid: ClientUuid
    site_id: int
    kind: PatrolKind
    patrolled_at: Aware
    checklist: dict[str, StrictBool] = Field(default_factory=dict, max_length=64)
    result: PatrolResult = PatrolResult.NORMAL
    remarks: str | None = Field(default=None, max_length=2000)
    lon: Longitude | None = None
    lat: Latitude | None = None
    gps_accuracy_m: float | None = Field(default=None, ge=0, le=100_000)
    alert_id: int | None = None
    product_id: int | None = None


class PhotoPublic(Public):
    id: int
    media_type: str
    size: int
    width: int
    height: int
    taken_at: str | None
    exif_lon: float | None
    exif_lat: float | None
    exif_distance_m: float | None
    far_from_site: bool
    uploaded_at: UtcDatetime


class PatrolPublic(Public):
    id: int
    client_uuid: str
    site_id: int
    unit_code: str
    kind: str
    patrolled_at: UtcDatetime
    received_at: UtcDatetime
    reporter: str
    checklist: dict[str, Any]
    result: str
    remarks: str | None
    lon: float | None
    lat: float | None
    distance_m: float | None
    far_from_site: bool
    alert_id: int | None
    product_id: int | None
    event_id: int | None = None
    photos: list[PhotoPublic] = []


class ChecklistItemPublic(Public):
    key: str
    zh: str


class ZeroReportIn(Input):
    client_uuid: ClientUuid
    unit_code: UnitCode
    report_date: dt.date
    nothing_new: bool = True
    summary: str | None = Field(default=None, max_length=4000)
    event_ids: list[int] = Field(default_factory=list, max_length=200)


class ZeroReportPublic(Public):
    id: int
    client_uuid: str
    unit_code: str
    report_date: dt.date
    slot: int
    nothing_new: bool
    summary: str | None
    event_ids: list[Any]
    submitted_at: UtcDatetime
    submitted_by: str
    late: bool


class MissingTownship(Public):
    code: str
    name: str
    required: int
    reported: int
    overdue: int
    elevated: bool
    next_deadline: dt.datetime | None
    reminded_at: dt.datetime | None = None  # last reminder queued for the day (提醒时间)


class ZeroReportStatus(Public):
    unit_code: str
    date: dt.date
    in_season: bool
    townships: int
    elevated: int
    required: int
    reported: int
    complete: int
    missing: list[MissingTownship]


class ResponseIn(Input):
    unit_code: UnitCode
    level: int = Field(ge=3, le=4)
    start_date: dt.date
    end_date: dt.date
    reason: str | None = Field(default=None, max_length=2000)


class ResponsePublic(Public):
    id: int
    unit_code: str
    level: int
    start_date: dt.date
    end_date: dt.date
    declared_by: str
    reason: str | None


class Figures(Input):
    """The figures of a quick or follow-up report (灾险情速报/续报)."""

    dead: Count = 0
    missing: Count = 0
    injured: Count = 0
    threatened_people: Count = 0
    transferred_people: Count = 0
    loss_wan: float = Field(default=0, ge=0, le=1e9)  # 直接经济损失（万元）
    description: str | None = Field(default=None, max_length=4000)
    measures: str | None = Field(default=None, max_length=4000)


class EventIn(Figures):
    client_uuid: ClientUuid
    kind: EventKind
    hazard_type: HazardType
    unit_code: UnitCode
    place: str = Field(min_length=2, max_length=300)
    lon: Longitude | None = None
    lat: Latitude | None = None
    occurred_at: Aware
    site_id: int | None = None

    @field_validator("occurred_at")
    @classmethod
    def _not_future(cls, v: dt.datetime) -> dt.datetime:
        if v > dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10):
            raise ValueError("occurred_at lies in the future")
        return v


class FollowUpIn(Figures):
    client_uuid: ClientUuid
    place: str | None = Field(default=None, min_length=2, max_length=300)
    status: str | None = Field(default=None, pattern=r"^(open|closed)$")


class EventVersionPublic(Public):
    number: int
    kind: str
    data: dict[str, Any]
    reported_by: str
    reported_at: UtcDatetime


class EventPublic(Public):
    id: int
    client_uuid: str
    unit_code: str
    kind: str
    hazard_type: str
    place: str
    lon: float | None
    lat: float | None
    occurred_at: UtcDatetime
    site_id: int | None
    patrol_id: int | None
    new_site_id: int | None
    dead: int
    missing: int
    injured: int
    threatened_people: int
    transferred_people: int
    loss_wan: float
    status: str
    versions_count: int
    reported_by: str
    versions: list[EventVersionPublic] = []
    photos: list[PhotoPublic] = []


class RegisterSiteIn(Input):
    code: str = Field(min_length=2, max_length=40)
    name: str = Field(min_length=2, max_length=200)
    lon: Longitude | None = None
    lat: Latitude | None = None
    monitor_id: int | None = None
    responsible_person_id: int | None = None


class WriteOffIn(Input):
    site_id: int
    basis: WriteOffBasis
    evidence: str = Field(min_length=4, max_length=4000)
    effective_on: dt.date


class DecisionIn(Input):
    approve: bool
    comment: str | None = Field(default=None, max_length=2000)
    effective_on: dt.date


class WriteOffPublic(Public):
    id: int
    site_id: int
    unit_code: str
    basis: str
    evidence: str
    status: str
    applied_by: str
    applied_at: UtcDatetime
    decided_by: str | None
    decided_on: dt.date | None
    comment: str | None


class TargetIn(Input):
    target: int = Field(ge=0, le=100_000)


class PhoneCheckIn(Input):
    method: str = Field(pattern=r"^(call|sms)$")


class RaiseAlertIn(Input):
    level: int = Field(ge=1, le=4, description="1 blue … 4 red (注意/警示/警戒/警报)")
    comment: str | None = Field(default=None, max_length=2000)
