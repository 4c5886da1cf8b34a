"""The two cards (两卡) as printable PDFs: the site card and the household card.

* 防灾工作明白卡 (site card, A5): the site, signs to watch, monitoring, warning signal, evacuation
  route, shelter, responsible person and monitor with phones.
* 避险明白卡 (household card, A6): the household and its members, the threat, warning signal, route,
  shelter, contacts, and the rule that nobody returns before the danger is lifted.

Contents follow the national templates (自然资源部《地质灾害防灾工作明白卡》《地质灾害防灾避险明白卡》)
and seed 003 ("两卡"是村(居)防灾应急预案的核心). Rendering is plain ``fpdf2`` text placed line by
line (no ``multi_cell``), which keeps a township's 5,000 household cards well under 30 s.
The font must have Chinese glyphs: ``Settings.cjk_font`` or, when unset, what fontconfig offers for
``sans-serif:lang=zh-cn``; without one a ``FontMissing`` error says how to install it.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from fpdf import FPDF

from geowarn.errors import FontMissing

A5 = (148.0, 210.0)
A6 = (105.0, 148.0)
PT_MM = 25.4 / 72
PROBE = "防灾避险明白卡"


@dataclass(frozen=True, slots=True)
class CjkFont:
    path: Path
    index: int = 0


def _covers(path: Path, index: int) -> bool:
    """True when the face has the glyphs of the cards' titles (fontTools reads only the cmap)."""
    from fontTools.ttLib import TTFont

    try:
        with path.open("rb") as fh:
            if fh.read(4) not in (b"\x00\x01\x00\x00", b"OTTO", b"ttcf", b"true"):
                return False
            fh.seek(0)
            cmap = TTFont(fh, fontNumber=index, lazy=True).getBestCmap() or {}
    except Exception:  # a broken or non-font file is simply not a usable font
        return False
    return all(ord(c) in cmap for c in PROBE)


@lru_cache(maxsize=8)
def find_cjk_font(configured: Path | None = None, index: int | None = None) -> CjkFont:
    """The font to print Chinese with: the configured one, else fontconfig's choice for Simplified Chinese."""
    hint = "install the package fonts-noto-cjk (scripts/setup.sh does) or set GEOWARN_CJK_FONT to a TTF/OTF/TTC"
    if configured is not None:
        font = CjkFont(Path(configured), index or 0)
        if not font.path.is_file() or not _covers(font.path, font.index):
            raise FontMissing(
                f"GEOWARN_CJK_FONT={configured} (face {font.index}) is not a font with Chinese glyphs; {hint}",
                message_zh="未找到可打印中文的字体，请安装 fonts-noto-cjk 或配置 GEOWARN_CJK_FONT",
            )
        return font
    fc_match = shutil.which("fc-match")
    if fc_match:
        out = subprocess.run(
            [fc_match, "-f", "%{file}|%{index}", "sans-serif:lang=zh-cn"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout
        file, _, face = out.partition("|")
        if file and Path(file).is_file():
            font = CjkFont(Path(file), int(face or 0) if index is None else index)
            if _covers(font.path, font.index):
                return font
    raise FontMissing(
        f"no font with Chinese glyphs was found; {hint}",
        message_zh="未找到可打印中文的字体，请安装 fonts-noto-cjk 或配置 GEOWARN_CJK_FONT",
    )


# --- what the cards say --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Contact:
    role: str
    name: str
    phone: str


@dataclass(frozen=True, slots=True)
class SiteCard:
    code: str
    name: str
    hazard_type: str  # in Chinese
    location: str
    scale: str
    threatened: str  # "12户45人，财产120万元"
    signs: tuple[str, ...]
    monitoring: str
    warning_signal: str
    signal_giver: str
    evacuation_route: str
    shelter: str
    contacts: tuple[Contact, ...]
    issuer: str
    date: str


@dataclass(frozen=True, slots=True)
class Member:
    name: str
    relation: str
    vulnerable: bool


@dataclass(frozen=True, slots=True)
class HouseholdCard:
    code: str
    head: str
    size: int
    address: str
    members: tuple[Member, ...]
    threat: str
    warning_signal: str
    evacuation_route: str
    shelter: str
    contacts: tuple[Contact, ...]
    issuer: str
    date: str
    notes: tuple[str, ...] = field(default=("险情未消除前，不得擅自返回危险区。", "听到预警信号立即按路线撤离。"))


# --- rendering -----------------------------------------------------------------------------------


def _width_em(ch: str) -> float:
    """Approximate advance of a character in em: CJK and full-width forms 1, ASCII about half."""
    return 0.55 if ord(ch) < 0x2E80 else 1.0


def wrap(text: str, width_mm: float, size_pt: float) -> list[str]:
    """Break ``text`` into lines that fit ``width_mm`` at ``size_pt`` (any character may end a CJK line)."""
    em = size_pt * PT_MM
    lines, line, used = [], "", 0.0
    for ch in text:
        w = _width_em(ch) * em
        if used + w > width_mm and line:
            lines.append(line)
            line, used = "", 0.0
        line += ch
        used += w
    if line or not lines:
        lines.append(line)
    return lines


class _Writer:
    """A cursor over one page: titled rows of wrapped text, a frame, small page margins."""

    def __init__(self, pdf: FPDF, page: tuple[float, float], size: float) -> None:
        self.pdf, self.page, self.size = pdf, page, size
        self.margin = 7.0 if page == A6 else 10.0
        self.y = self.margin

    @property
    def line_mm(self) -> float:
        return self.size * PT_MM * 1.45

    def title(self, text: str, size: float) -> None:
        self.pdf.set_font_size(size)
        width = sum(_width_em(c) for c in text) * size * PT_MM
        self.y += size * PT_MM
        self.pdf.text((self.page[0] - width) / 2, self.y, text)
        self.y += size * PT_MM * 0.8
        self.pdf.line(self.margin, self.y, self.page[0] - self.margin, self.y)
        self.y += 1.5
        self.pdf.set_font_size(self.size)

    def row(self, label: str, value: str) -> None:
        usable = self.page[0] - 2 * self.margin
        first = f"{label}：" if label else ""
        lines = wrap(first + (value or "—"), usable, self.size)
        for line in lines:
            if self.y + self.line_mm > self.page[1] - self.margin:
                return  # the card is full: never spill onto the next card's page
            self.y += self.line_mm
            self.pdf.text(self.margin, self.y, line)

    def gap(self, mm: float = 1.2) -> None:
        self.y += mm

    def frame(self) -> None:
        m = self.margin - 3
        self.pdf.rect(m, m, self.page[0] - 2 * m, self.page[1] - 2 * m)


def _pdf(font: CjkFont, title: str) -> FPDF:
    pdf = FPDF(unit="mm")
    pdf.set_auto_page_break(False)
    pdf.set_title(title)
    pdf.set_creator("geowarn")
    pdf.add_font("cjk", fname=str(font.path), collection_font_number=font.index)
    pdf.set_font("cjk", size=9)
    pdf.set_line_width(0.3)
    return pdf


def _contacts(w: _Writer, contacts: Iterable[Contact]) -> None:
    for c in contacts:
        w.row(c.role, f"{c.name}  {c.phone}".strip())


def render_site_cards(cards: Sequence[SiteCard], font: CjkFont, page: tuple[float, float] = A5) -> bytes:
    """One page per site card, all in one PDF."""
    pdf = _pdf(font, "防灾工作明白卡")
    size = 10.0 if page == A5 else 8.0
    for card in cards:
        pdf.add_page(format=page)
        w = _Writer(pdf, page, size)
        w.frame()
        w.title("地质灾害防灾工作明白卡", size + 5)
        w.row("灾害点名称", f"{card.name}（{card.code}）")
        w.row("灾害类型", card.hazard_type)
        w.row("规模", card.scale)
        w.row("位置", card.location)
        w.row("威胁对象", card.threatened)
        w.gap()
        w.row("监测迹象", "；".join(card.signs))
        w.row("监测方法", card.monitoring)
        w.gap()
        w.row("预警信号", card.warning_signal)
        w.row("预警信号发布人", card.signal_giver)
        w.row("撤离路线", card.evacuation_route)
        w.row("避险场所", card.shelter)
        w.gap()
        _contacts(w, card.contacts)
        w.gap()
        w.row("发卡单位", f"{card.issuer}    {card.date}")
    return bytes(pdf.output())


def render_household_cards(cards: Sequence[HouseholdCard], font: CjkFont, page: tuple[float, float] = A6) -> bytes:
    """One page per household card, all in one PDF."""
    pdf = _pdf(font, "避险明白卡")
    size = 8.0 if page == A6 else 10.0
    for card in cards:
        pdf.add_page(format=page)
        w = _Writer(pdf, page, size)
        w.frame()
        w.title("地质灾害防灾避险明白卡", size + 4)
        w.row("户主", f"{card.head}（{card.code}）  家庭人数：{card.size}人")
        w.row("住址", card.address)
        members = "、".join(
            m.name + (f"（{m.relation}）" if m.relation else "") + ("★" if m.vulnerable else "") for m in card.members
        )
        w.row("家庭成员", members + ("  ★需协助撤离" if any(m.vulnerable for m in card.members) else ""))
        w.gap()
        w.row("威胁来源", card.threat)
        w.row("预警信号", card.warning_signal)
        w.row("撤离路线", card.evacuation_route)
        w.row("避险场所", card.shelter)
        w.gap()
        _contacts(w, card.contacts)
        w.gap()
        for note in card.notes:
            w.row("", note)
        w.row("发卡单位", f"{card.issuer}    {card.date}")
    return bytes(pdf.output())
