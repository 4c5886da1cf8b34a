"""The two cards as PDFs: Chinese text extracted back with pypdf, one card or a whole township."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader

from geowarn.errors import FontMissing
from geowarn.fieldwork import cards
from tests.api.apiworld import TOWN_A, TOWN_B, World, login


def text_of(pdf: bytes) -> list[str]:
    """The text of each page, whitespace removed (pypdf puts a NUL before each glyph of a 2-byte CID font)."""
    reader = PdfReader(io.BytesIO(pdf))
    return [re.sub(r"[\s\x00]+", "", p.extract_text() or "") for p in reader.pages]


def test_site_card(client: TestClient, world: World) -> None:
    r = client.get(f"/api/fieldwork/cards/sites/{world.a.site}", headers=login(client, "alpha_operator"))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    (page,) = text_of(r.content)
    expected = (
        "地质灾害防灾工作明白卡 ALPHA滑坡 ALPHA-S1 3户11人 新裂缝 预警信号 撤离路线 ALPHA避险点 防灾责任人 ALPHA张三"
    )
    for part in (*expected.split(), "13912345678", "ALPHA甲镇人民政府"):
        assert part in page, part
    reader = PdfReader(io.BytesIO(r.content))
    box = reader.pages[0].mediabox
    assert (round(float(box.width) / 72 * 25.4), round(float(box.height) / 72 * 25.4)) == (148, 210)  # A5


def test_household_card_masked_for_a_monitor(client: TestClient, world: World) -> None:
    r = client.get(f"/api/fieldwork/cards/households/{world.a.household}", headers=login(client, "alpha_operator"))
    (page,) = text_of(r.content)
    for expected in ("避险明白卡", "ALPHA李四", "ALPHA王五", "需协助撤离", "ALPHA滑坡", "ALPHA避险点", "监测人",
                     "13912345678", "不得擅自返回"):  # fmt: skip
        assert expected in page, expected
    box = PdfReader(io.BytesIO(r.content)).pages[0].mediabox
    assert round(float(box.width) / 72 * 25.4) == 105  # A6
    masked = text_of(
        client.get(
            f"/api/fieldwork/cards/households/{world.a.household}", headers=login(client, "alpha_monitor")
        ).content
    )[0]
    assert "ALPHA李四" not in masked and "13912345678" not in masked and "139****5678" in masked


def test_township_cards_and_scope(client: TestClient, world: World) -> None:
    h = login(client, "alpha_operator")
    r = client.get(f"/api/fieldwork/cards/townships/{TOWN_A}/households", headers=h)
    assert r.status_code == 200, r.text
    pages = text_of(r.content)
    assert len(pages) == 1 and "ALPHA李四" in pages[0] and "BETA" not in "".join(pages)
    assert client.get(f"/api/fieldwork/cards/townships/{TOWN_B}/households", headers=h).status_code == 404
    assert client.get(f"/api/fieldwork/cards/households/{world.b.household}", headers=h).status_code == 404
    assert client.get(f"/api/fieldwork/cards/sites/{world.b.site}", headers=h).status_code == 404
    county = login(client, "county_admin")
    both = text_of(client.get(f"/api/fieldwork/cards/townships/{TOWN_B}/sites", headers=county).content)
    assert len(both) == 1 and "BETA滑坡" in both[0]


def test_many_cards_one_pdf_one_page_each() -> None:
    font = cards.find_cjk_font()
    card = cards.HouseholdCard(
        code="H1", head="张三", size=2, address="某村", members=(cards.Member("张三", "户主", False),),
        threat="后山滑坡", warning_signal="鸣锣", evacuation_route="向东" * 200, shelter="村委会",
        contacts=(cards.Contact("监测人", "李四", "13900000000"),), issuer="某镇人民政府", date="2026年07月01日",
    )  # fmt: skip
    pages = text_of(cards.render_household_cards([card, card, card], font))
    assert len(pages) == 3  # a very long route is cut at the card's edge, never spilling onto another page
    assert all("张三" in p for p in pages)


def test_missing_font_is_a_clear_error(tmp_path: Path, client: TestClient, world: World) -> None:
    not_a_font = tmp_path / "x.ttf"
    not_a_font.write_bytes(b"not a font")
    with pytest.raises(FontMissing, match="fonts-noto-cjk"):
        cards.find_cjk_font(not_a_font)
    with pytest.raises(FontMissing):
        cards.find_cjk_font(tmp_path / "absent.otf")
    client.app.state.settings.cjk_font = not_a_font  # type: ignore[attr-defined]
    r = client.get(f"/api/fieldwork/cards/sites/{world.a.site}", headers=login(client, "alpha_operator"))
    assert r.status_code == 500 and r.json()["title"] == "Font missing"
    assert "GEOWARN_CJK_FONT" in r.json()["detail"]


def test_font_found_through_fontconfig() -> None:
    font = cards.find_cjk_font()
    assert font.path.is_file() and cards._covers(font.path, font.index)
