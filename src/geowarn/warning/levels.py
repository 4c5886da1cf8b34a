"""Warning levels shared by site alerts and regional products.

Both scales have four levels, weakest to strongest (DOMAIN.md; 自然资源部《地质灾害气象风险预警工作指南》
and the site-warning practice of 注意/警示/警戒/警报). Internally a level is an integer that grows with
danger, so ``max()`` of two levels is the stronger one; 0 means "no warning".
"""

from __future__ import annotations

import enum


class Level(enum.IntEnum):
    """Warning level; compare and take ``max`` directly (stronger is greater)."""

    NONE = 0
    BLUE = 1
    YELLOW = 2
    ORANGE = 3
    RED = 4

    @property
    def colour(self) -> str:
        """English colour name used in APIs and styles ("" for NONE)."""
        return _COLOUR[self]

    @property
    def site_label(self) -> str:
        """Chinese name on the site-warning scale: 注意/警示/警戒/警报."""
        return _SITE_LABEL[self]

    @property
    def regional_label(self) -> str:
        """Chinese name on the regional scale: 四级/三级/二级/一级 (蓝/黄/橙/红色预警)."""
        return _REGIONAL_LABEL[self]

    @property
    def national_grade(self) -> int | None:
        """The national grade number: 4 for blue … 1 for red; None for no warning."""
        return None if self is Level.NONE else 5 - int(self)

    @classmethod
    def parse(cls, text: str | int) -> Level:
        """Accept an int (0-4), an English colour, or a Chinese label of either scale."""
        if isinstance(text, int):
            return cls(text)
        key = text.strip().lower()
        for level in cls:
            if key in {level.name.lower(), level.colour, level.site_label, level.regional_label}:
                return level
            if level is not Level.NONE and key in {f"{level.national_grade}级", _COLOUR_CN[level]}:
                return level
        raise ValueError(f"unknown warning level: {text!r}")


_COLOUR = {Level.NONE: "", Level.BLUE: "blue", Level.YELLOW: "yellow", Level.ORANGE: "orange", Level.RED: "red"}
_COLOUR_CN = {Level.BLUE: "蓝色", Level.YELLOW: "黄色", Level.ORANGE: "橙色", Level.RED: "红色"}
_SITE_LABEL = {Level.NONE: "无", Level.BLUE: "注意", Level.YELLOW: "警示", Level.ORANGE: "警戒", Level.RED: "警报"}
_REGIONAL_LABEL = {Level.NONE: "无", Level.BLUE: "四级", Level.YELLOW: "三级", Level.ORANGE: "二级", Level.RED: "一级"}
