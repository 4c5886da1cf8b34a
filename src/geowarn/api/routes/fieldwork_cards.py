"""``/api/fieldwork/cards``: the two cards (两卡) as PDFs — one card, or every card of a township at once.

Names and phones are printed for roles with the personal-data permission and masked otherwise.
A missing Chinese font answers 500 with a ``Font missing`` problem that says what to install.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response

from geowarn.api.deps import Reader, ReadSession, personal
from geowarn.api.routes.auth import app_settings
from geowarn.api.scoping import get_scoped, scope_filter
from geowarn.auth.scope import in_scope, unit_filter
from geowarn.config import Settings
from geowarn.errors import NotFound
from geowarn.fieldwork import card_data, cards
from geowarn.inventory.models import HazardSite, Household

router = APIRouter(prefix="/fieldwork/cards", tags=["fieldwork: cards"])

SettingsDep = Annotated[Settings, Depends(app_settings)]
PageSize = Annotated[
    Literal["A5", "A6"] | None, Query(description="default: A5 for site cards, A6 for household cards")
]
PDF: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/pdf": {}}, "description": "the cards, one page each"}
}


def _pdf(content: bytes, name: str) -> Response:
    return Response(
        content, media_type="application/pdf", headers={"Content-Disposition": f'inline; filename="{name}.pdf"'}
    )


def _size(size: str | None, default: tuple[float, float]) -> tuple[float, float]:
    return {"A5": cards.A5, "A6": cards.A6}.get(size or "", default)


@router.get("/sites/{site_id}", response_class=Response, responses=PDF)
def site_card(
    site_id: int, session: ReadSession, user: Reader, settings: SettingsDep, size: PageSize = None
) -> Response:
    """防灾工作明白卡 of one site."""
    font = cards.find_cjk_font(settings.cjk_font, settings.cjk_font_index)
    site = get_scoped(session, HazardSite, site_id, user)
    content = card_data.site_cards(session, HazardSite.id == site.id, personal(user))
    return _pdf(cards.render_site_cards(content, font, _size(size, cards.A5)), f"site-card-{site.id}")


@router.get("/households/{household_id}", response_class=Response, responses=PDF)
def household_card(
    household_id: int, session: ReadSession, user: Reader, settings: SettingsDep, size: PageSize = None
) -> Response:
    """避险明白卡 of one household."""
    font = cards.find_cjk_font(settings.cjk_font, settings.cjk_font_index)
    household = get_scoped(session, Household, household_id, user)
    content = card_data.household_cards(session, Household.id == household.id, personal(user))
    return _pdf(cards.render_household_cards(content, font, _size(size, cards.A6)), f"household-card-{household.id}")


@router.get("/townships/{code}/{kind}", response_class=Response, responses=PDF)
def township_cards(
    code: Annotated[str, Path(pattern=r"^\d{9}$")],
    kind: Literal["sites", "households"],
    session: ReadSession,
    user: Reader,
    settings: SettingsDep,
    size: PageSize = None,
) -> Response:
    """Every card of one kind in a township, one PDF (for printing and handing out)."""
    if not in_scope(user.unit_code, code):
        raise NotFound(f"unit {code} not found", message_zh=f"行政区“{code}”不存在")
    font = cards.find_cjk_font(settings.cjk_font, settings.cjk_font_index)
    if kind == "sites":
        where = unit_filter(HazardSite.unit_code, code) & scope_filter(HazardSite, user)
        site_content = card_data.site_cards(session, where, personal(user))
        return _pdf(cards.render_site_cards(site_content, font, _size(size, cards.A5)), f"site-cards-{code}")
    hwhere = unit_filter(Household.unit_code, code) & scope_filter(Household, user)
    content = card_data.household_cards(session, hwhere, personal(user))
    return _pdf(cards.render_household_cards(content, font, _size(size, cards.A6)), f"household-cards-{code}")
