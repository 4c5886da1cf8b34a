"""The workflow of a regional warning product: draft → review → issued → updated → lifted.

Rules (自然资源部、中国气象局 joint release of geological-hazard weather risk warnings; DOMAIN.md):

* Every draft, update and lift is a new version; a version can be edited only as a draft and is
  frozen once submitted, so every version that anyone reviewed is kept as it was.
* A version of level 3 (yellow) or above is issued only after approval by both a natural-resources
  signer and a weather signer (two different people); a blue version needs the natural-resources
  approval only. A rejection sends the version back (state ``rejected``); a new version is drafted.
* Issuing an update supersedes the previously issued version; issuing a lift ends the product.
  A lift lowers the danger, so it needs the natural-resources approval only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import shapely
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from geowarn.auth.models import User
from geowarn.auth.roles import Permission, has_permission
from geowarn.dissemination.hook import on_product_issued
from geowarn.errors import InvalidInput, InvalidTransition, PermissionDenied
from geowarn.warning.levels import Level
from geowarn.warning.product_models import ProductArea, ProductSignoff, ProductVersion, RegionalProduct

DEPARTMENTS: dict[str, Permission] = {
    "natural_resources": Permission.SIGN_NATURAL_RESOURCES,
    "weather": Permission.SIGN_WEATHER,
}
DEPARTMENT_ZH = {"natural_resources": "自然资源部门", "weather": "气象部门"}
STATE_ZH = {"draft": "草稿", "review": "待会商签发", "issued": "已发布", "superseded": "已更新替代",
            "rejected": "已退回", "lifted": "已解除", "withdrawn": "已撤回"}  # fmt: skip
CST = dt.timezone(dt.timedelta(hours=8))


@dataclass(slots=True)
class VersionContent:
    """What a version says: its areas per level, the summary, the validity and the message."""

    valid_from_ms: int
    valid_to_ms: int
    areas: dict[int, Any] = field(default_factory=dict)  # level -> (multi)polygon, WGS84
    areas_km2: dict[int, float] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    message: str | None = None

    @property
    def level(self) -> Level:
        present = [lv for lv, g in self.areas.items() if g is not None and not shapely.is_empty(g)]
        return Level(max(present, default=0))


def _transition(what: str, state: str, action_zh: str) -> InvalidTransition:
    return InvalidTransition(
        f"{what} is {state}", message_zh=f"当前状态为“{STATE_ZH.get(state, state)}”，不能{action_zh}"
    )


def _next_code(session: Session, unit_code: str, now_ms: int) -> str:
    day = dt.datetime.fromtimestamp(now_ms / 1000, CST).strftime("%Y%m%d")
    prefix = f"{unit_code}-{day}-"
    n = session.scalar(select(func.count()).where(RegionalProduct.code.like(f"{prefix}%"))) or 0
    return f"{prefix}{n + 1:02d}"


def _check_content(content: VersionContent) -> None:
    if content.valid_to_ms <= content.valid_from_ms:
        raise InvalidInput("valid_to must be after valid_from", message_zh="有效期结束时间须晚于开始时间")
    for level in content.areas:
        if level not in (1, 2, 3, 4):
            raise InvalidInput(f"area level {level} is not 1-4", message_zh=f"预警区等级 {level} 无效（应为1-4）")


def _fill(session: Session, version: ProductVersion, content: VersionContent) -> None:
    version.level = int(content.level)
    version.valid_from_ms, version.valid_to_ms = content.valid_from_ms, content.valid_to_ms
    version.summary, version.inputs, version.message = content.summary, content.inputs, content.message
    for area in list(version.areas):
        session.delete(area)
    for level, geom in sorted(content.areas.items()):
        if geom is None or shapely.is_empty(geom):
            continue
        multi = geom if geom.geom_type == "MultiPolygon" else shapely.MultiPolygon([geom])
        session.add(
            ProductArea(version=version, level=level, area_km2=float(content.areas_km2.get(level, 0.0)), geom=multi)
        )


def create(
    session: Session, user: User, unit_code: str, title: str, content: VersionContent, now_ms: int
) -> RegionalProduct:
    """A new product with its first version as a draft."""
    _check_content(content)
    product = RegionalProduct(
        code=_next_code(session, unit_code, now_ms), unit_code=unit_code, title=title, status="draft",
        created_ms=now_ms, created_by=user.username,
    )  # fmt: skip
    session.add(product)
    version = ProductVersion(product=product, number=1, kind="initial", state="draft", created_ms=now_ms,
                             created_by=user.username, valid_from_ms=0, valid_to_ms=0)  # fmt: skip
    session.add(version)
    _fill(session, version, content)
    session.flush()
    return product


def draft_version(
    session: Session, product: RegionalProduct, user: User, kind: str, content: VersionContent, now_ms: int
) -> ProductVersion:
    """A new draft version: ``update`` (new areas) or ``lift`` (no areas) of an issued product, or
    ``initial`` again for a product whose first version was rejected."""
    if kind not in ("initial", "update", "lift"):
        raise InvalidInput(f"unknown version kind {kind!r}", message_zh=f"未知版本类型：{kind}")
    if (kind == "initial") != (product.status == "draft"):
        raise _transition("product", product.status, "起草此类版本")
    if product.status not in ("draft", "issued"):
        raise _transition("product", product.status, "更新或解除")
    if any(v.state in ("draft", "review") for v in product.versions):
        raise InvalidTransition("a version is already in preparation", message_zh="已有待处理的版本，请先处理")
    if kind == "lift":
        content = VersionContent(content.valid_from_ms, content.valid_to_ms, message=content.message,
                                 inputs=content.inputs, summary=content.summary)  # fmt: skip
    _check_content(content)
    number = max(v.number for v in product.versions) + 1
    version = ProductVersion(product=product, number=number, kind=kind, state="draft", created_ms=now_ms,
                             created_by=user.username, valid_from_ms=0, valid_to_ms=0)  # fmt: skip
    session.add(version)
    _fill(session, version, content)
    session.flush()
    return version


def edit_draft(session: Session, version: ProductVersion, content: VersionContent) -> None:
    if version.state != "draft":
        raise _transition("version", version.state, "修改")
    _check_content(content)
    if version.kind == "lift" and content.areas:
        raise InvalidInput("a lift has no warning areas", message_zh="解除预警不含预警区")
    _fill(session, version, content)


def submit(version: ProductVersion, now_ms: int) -> None:
    """Send a draft for review and sign-off; it is frozen from now on."""
    if version.state != "draft":
        raise _transition("version", version.state, "提交会商")
    version.state, version.submitted_ms = "review", now_ms


def required_departments(version: ProductVersion) -> list[str]:
    """Departments that must approve before issue (both from yellow up, except for a lift)."""
    if version.kind != "lift" and version.level >= Level.YELLOW:
        return ["natural_resources", "weather"]
    return ["natural_resources"]


def sign(
    session: Session, version: ProductVersion, user: User, department: str, decision: str, comment: str | None,
    now_ms: int,
) -> ProductSignoff:  # fmt: skip
    """Approve or reject a version under review for ``department``."""
    if department not in DEPARTMENTS:
        raise InvalidInput(f"unknown department {department!r}", message_zh=f"未知部门：{department}")
    if decision not in ("approve", "reject"):
        raise InvalidInput("decision must be approve or reject", message_zh="会签意见须为同意或退回")
    if not has_permission(user.role, DEPARTMENTS[department]):
        raise PermissionDenied(
            f"{user.username} may not sign for {department}",
            message_zh=f"您无权代表{DEPARTMENT_ZH[department]}签发",
        )
    if version.state != "review":
        raise _transition("version", version.state, "会签")
    for s in version.signoffs:
        if s.department == department:
            raise InvalidTransition("already signed", message_zh=f"{DEPARTMENT_ZH[department]}已会签")
        if s.username == user.username:
            raise InvalidTransition(
                "the same person may not sign for both departments", message_zh="同一人不能代表两个部门会签"
            )
    signoff = ProductSignoff(version=version, department=department, decision=decision, username=user.username,
                             t_ms=now_ms, comment=comment)  # fmt: skip
    session.add(signoff)
    if decision == "reject":
        version.state = "rejected"
    session.flush()
    return signoff


def missing_signoffs(version: ProductVersion) -> list[str]:
    approved = {s.department for s in version.signoffs if s.decision == "approve"}
    return [d for d in required_departments(version) if d not in approved]


def issue(session: Session, version: ProductVersion, user: User, now_ms: int) -> None:
    """Issue a reviewed version with every required approval; supersede the previous one."""
    if version.state != "review":
        raise _transition("version", version.state, "发布")
    missing = missing_signoffs(version)
    if missing:
        names = "、".join(DEPARTMENT_ZH[d] for d in missing)
        raise InvalidTransition(f"missing sign-off: {', '.join(missing)}", message_zh=f"尚缺{names}会签，不能发布")
    product = version.product
    for other in product.versions:
        if other.state == "issued":
            other.state = "superseded"
    version.state, version.issued_ms, version.issued_by = "issued", now_ms, user.username
    product.current_version, product.level = version.number, version.level
    if version.kind == "lift":
        product.status, product.lifted_ms, product.level = "lifted", now_ms, 0
    else:
        product.status = "issued"
        product.issued_ms = product.issued_ms or now_ms
    session.flush()
    on_product_issued(session, version, now_ms)  # its messages, in this transaction (issue 5)
