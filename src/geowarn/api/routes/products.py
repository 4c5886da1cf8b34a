"""``/api/products``: regional weather-driven warning products and their workflow.

draft → review (submit) → sign-off by natural resources (and weather from yellow up) → issued;
then updates and the lift, each a new version. Every route is scoped to the caller's unit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from geowarn.api.deps import Reader, ReadSession, WriteSession, require
from geowarn.api.geojson import feature, feature_collection, to_multipolygon
from geowarn.api.routes.monitoring_common import when_ms
from geowarn.api.routes.monitoring_data import json_response
from geowarn.api.rows import page_rows
from geowarn.api.schemas.monitoring import iso_ms
from geowarn.api.scoping import check_unit, get_scoped, not_found, scope_filter
from geowarn.auth.models import User
from geowarn.auth.roles import Permission
from geowarn.spatial.core import WGS84
from geowarn.warning import products as wf
from geowarn.warning.levels import Level
from geowarn.warning.models import now_ms
from geowarn.warning.product_models import ProductArea, ProductVersion, RegionalProduct

router = APIRouter(prefix="/products", tags=["warning: regional products"])

Warner = Annotated[User, require(Permission.WARN)]


#: The product columns its JSON is made of, in the order ``_product_doc`` unpacks them: the list
#: reads these as plain rows (the map asks for it on each load), one product reads its object.
_FIELDS = ("id", "code", "unit_code", "title", "status", "level", "current_version", "created_ms", "created_by",
           "issued_ms", "lifted_ms")  # fmt: skip
#: The list's statement without its filters, built once, of table columns (see ``alerts._LIST``).
_PRODUCT = RegionalProduct.__table__.c
_LIST = select(*(_PRODUCT[f] for f in _FIELDS)).order_by(_PRODUCT.created_ms.desc(), _PRODUCT.id.desc())


def _product_doc(r: Sequence[Any]) -> dict[str, Any]:
    """The JSON of a product (without its versions) from the values of ``_FIELDS``."""
    ident, code, unit_code, title, status, lv, current_version, created_ms, created_by, issued_ms, lifted_ms = r
    level = Level(lv)
    return {
        "id": ident, "code": code, "unit_code": unit_code, "title": title, "status": status,
        "status_zh": wf.STATE_ZH.get(status, status), "level": lv, "colour": level.colour,
        "level_zh": level.regional_label, "current_version": current_version, "created": iso_ms(created_ms),
        "created_by": created_by, "issued": iso_ms(issued_ms), "lifted": iso_ms(lifted_ms),
    }  # fmt: skip


def product_json(p: RegionalProduct, *, versions: bool = False) -> dict[str, Any]:
    doc = _product_doc([getattr(p, f) for f in _FIELDS])
    if versions:
        doc["versions"] = [version_json(v) for v in p.versions]
    return doc


def version_json(v: ProductVersion) -> dict[str, Any]:
    return {
        "number": v.number, "kind": v.kind, "state": v.state, "state_zh": wf.STATE_ZH.get(v.state, v.state),
        "level": v.level, "colour": Level(v.level).colour, "valid_from": iso_ms(v.valid_from_ms),
        "valid_to": iso_ms(v.valid_to_ms), "message": v.message, "summary": v.summary, "inputs": v.inputs,
        "created": iso_ms(v.created_ms), "created_by": v.created_by, "submitted": iso_ms(v.submitted_ms),
        "issued": iso_ms(v.issued_ms), "issued_by": v.issued_by,
        "areas": [{"level": a.level, "area_km2": a.area_km2} for a in v.areas],
        "required_signoffs": wf.required_departments(v), "missing_signoffs": wf.missing_signoffs(v),
        "signoffs": [{"department": s.department, "decision": s.decision, "username": s.username,
                      "t": iso_ms(s.t_ms), "comment": s.comment} for s in v.signoffs],
    }  # fmt: skip


class ContentIn(BaseModel):
    valid_from: str
    valid_to: str
    message: str | None = Field(None, max_length=4000)
    areas: dict[int, dict[str, Any]] = Field(default_factory=dict, description="level (1-4) → GeoJSON (Multi)Polygon")
    summary: dict[str, Any] = Field(default_factory=dict)
    inputs: dict[str, Any] = Field(default_factory=dict)

    def content(self) -> wf.VersionContent:
        areas = {int(k): to_multipolygon(v) for k, v in self.areas.items()}
        km2 = {k: abs(WGS84.geometry_area_perimeter(g)[0]) / 1e6 for k, g in areas.items()}
        return wf.VersionContent(
            when_ms(self.valid_from, "valid_from"), when_ms(self.valid_to, "valid_to"), areas=areas,
            areas_km2=km2, summary=self.summary, inputs=self.inputs, message=self.message,
        )  # fmt: skip


class ProductIn(ContentIn):
    title: str = Field(min_length=2, max_length=200)
    unit_code: str


class VersionIn(ContentIn):
    kind: Literal["initial", "update", "lift"]


class SignIn(BaseModel):
    department: Literal["natural_resources", "weather"]
    decision: Literal["approve", "reject"]
    comment: str | None = Field(None, max_length=2000)


@router.get("")
def list_products(
    session: ReadSession,
    user: Reader,
    status: Annotated[str | None, Query(max_length=12)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    """Products in scope, newest first."""
    stmt = _LIST.where(scope_filter(_PRODUCT, user))
    if status:
        stmt = stmt.where(_PRODUCT.status == status)
    rows, total = page_rows(session, stmt, limit, offset)
    return json_response({"items": [_product_doc(r) for r in rows], "total": total})


@router.post("", status_code=201)
def create_product(body: ProductIn, session: WriteSession, user: Warner) -> Response:
    """A new product with its first version as a draft."""
    check_unit(session, user, body.unit_code)
    product = wf.create(session, user, body.unit_code, body.title, body.content(), now_ms())
    return json_response(product_json(product, versions=True), status_code=201)


@router.get("/{product_id}")
def get_product(product_id: int, session: ReadSession, user: Reader) -> Response:
    """A product with every version, its sign-offs and what each still needs."""
    return json_response(product_json(get_scoped(session, RegionalProduct, product_id, user), versions=True))


def _version(session: Session, product_id: int, number: int, user: User) -> ProductVersion:
    product = get_scoped(session, RegionalProduct, product_id, user, for_update=True)
    for v in product.versions:
        if v.number == number:
            return v
    raise not_found("product_version", f"{product.code}/{number}")


@router.get("/{product_id}/versions/{number}/areas")
def version_areas(product_id: int, number: int, session: ReadSession, user: Reader) -> Response:
    """The warning areas of a version as GeoJSON, one feature per level."""
    version = _version(session, product_id, number, user)
    areas = session.scalars(select(ProductArea).where(ProductArea.version_id == version.id).order_by(ProductArea.level))
    features = [
        feature(a.geom, {"level": a.level, "colour": Level(a.level).colour, "level_zh": Level(a.level).regional_label,
                         "area_km2": a.area_km2}, a.id)
        for a in areas
    ]  # fmt: skip
    return json_response(feature_collection(features, product=version.product.code, version=number))


@router.post("/{product_id}/versions", status_code=201)
def add_version(product_id: int, body: VersionIn, session: WriteSession, user: Warner) -> Response:
    """A new draft version: an update or a lift of an issued product (or a new initial one after a rejection)."""
    product = get_scoped(session, RegionalProduct, product_id, user, for_update=True)
    version = wf.draft_version(session, product, user, body.kind, body.content(), now_ms())
    return json_response(version_json(version), status_code=201)


@router.put("/{product_id}/versions/{number}")
def edit_version(product_id: int, number: int, body: ContentIn, session: WriteSession, user: Warner) -> Response:
    """Replace the content of a draft (a submitted version is frozen)."""
    version = _version(session, product_id, number, user)
    wf.edit_draft(session, version, body.content())
    session.flush()
    session.refresh(version)
    return json_response(version_json(version))


@router.post("/{product_id}/versions/{number}/submit")
def submit_version(product_id: int, number: int, session: WriteSession, user: Warner) -> Response:
    """Send a draft to review and sign-off."""
    version = _version(session, product_id, number, user)
    wf.submit(version, now_ms())
    return json_response(version_json(version))


@router.post("/{product_id}/versions/{number}/sign")
def sign_version(product_id: int, number: int, body: SignIn, session: WriteSession, user: Reader) -> Response:
    """Approve or reject a version under review for a department (the role must allow signing for it)."""
    version = _version(session, product_id, number, user)
    wf.sign(session, version, user, body.department, body.decision, body.comment, now_ms())
    return json_response(version_json(version))


@router.post("/{product_id}/versions/{number}/issue")
def issue_version(product_id: int, number: int, session: WriteSession, user: Warner) -> Response:
    """Issue a version with every required sign-off; it supersedes the version issued before."""
    version = _version(session, product_id, number, user)
    wf.issue(session, version, user, now_ms())
    return json_response(product_json(version.product, versions=True))
