"""Message templates: Chinese defaults in ``templates.yaml``, operator overrides per unit, sandboxed Jinja2.

* A template is looked up from the most to the least specific key:
  ``<type>.<audience>.<colour>.<kind>``, ``<type>.<audience>.<colour>``, ``<type>.<audience>.<kind>``,
  ``<type>.<audience>``, ``<type>.<kind>``; at each key an override of the nearest unit (the
  recipient's unit, then its township, then its county) wins over the package default.
* Templates run in Jinja2's ``SandboxedEnvironment`` with ``StrictUndefined``: an operator's template
  can read the context but call nothing unsafe, and a misspelt name is an error when it is saved.
* SMS length (GSM 03.38 / 3GPP TS 23.040, UCS-2 coding of Chinese): one message carries 70
  characters; a longer text is sent as concatenated parts of 67 characters each (the user-data
  header takes the rest).
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from geowarn.errors import InvalidInput
from geowarn.warning.levels import Level

DEFAULTS_PATH = Path(__file__).with_name("templates.yaml")
SMS_SINGLE = 70
SMS_PART = 67
COLOUR_ZH = {Level.NONE: "解除", Level.BLUE: "蓝色", Level.YELLOW: "黄色", Level.ORANGE: "橙色", Level.RED: "红色"}
RISK_ZH = {
    Level.NONE: "已解除",
    Level.BLUE: "有一定风险",
    Level.YELLOW: "风险较高",
    Level.ORANGE: "风险高",
    Level.RED: "风险很高",
}
KIND_ZH = {"initial": "发布", "update": "更新", "lift": "解除"}
#: Every name a template may use (documented for operators; a template using another name is refused).
CONTEXT_NAMES = (
    "sender",
    "title",
    "site_name",
    "township",
    "townships",
    "level_label",
    "colour_zh",
    "risk_zh",
    "kind_zh",
    "action",
    "reason",
    "shelter",
    "route",
    "code",
    "link",
    "name",
    "issued",
)

#: The names a zero-report reminder template (``zero_report.*`` keys) may use: the county's sender, the
#: person's name, the township, the day (``7月1日``), ``第1次``/``第2次`` on a two-report day (else empty),
#: the deadline (``17:00``) and ``late`` (non-empty once the deadline has passed).
REMINDER_NAMES = ("sender", "name", "township", "date", "slot_label", "deadline", "late")
REMINDER_TYPE = "zero_report"

_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)


def sms_segments(text: str) -> int:
    """Number of SMS parts: 1 up to 70 characters, else ceil(n / 67)."""
    n = len(text)
    return 1 if n <= SMS_SINGLE else math.ceil(n / SMS_PART)


@lru_cache(maxsize=1)
def defaults() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(DEFAULTS_PATH.read_text(encoding="utf-8"))
    return data


def action(warning_type: str, level: Level, kind: str) -> str:
    """The response the level requires (DOMAIN.md), or the return rule after a lift."""
    acts = defaults()["actions"]
    if kind == "lift" or level is Level.NONE:
        return str(acts["lift"])
    return str(acts[warning_type][level.colour])


def keys_for(warning_type: str, audience: str, level: Level, kind: str) -> list[str]:
    colour = level.colour or "none"
    return [
        f"{warning_type}.{audience}.{colour}.{kind}",
        f"{warning_type}.{audience}.{colour}",
        f"{warning_type}.{audience}.{kind}",
        f"{warning_type}.{audience}",
        f"{warning_type}.{kind}",
    ]


@lru_cache(maxsize=512)
def compile_template(source: str) -> Template:
    return _env.from_string(source)


def check(source: str, key: str | None = None) -> None:
    """Refuse a template that does not compile or uses a name outside :data:`CONTEXT_NAMES`
    (:data:`REMINDER_NAMES` for a ``zero_report.*`` key)."""
    names = REMINDER_NAMES if key is not None and key.startswith(REMINDER_TYPE + ".") else CONTEXT_NAMES
    try:
        tpl = compile_template(source)
        tpl.render(**{k: "x" for k in names})
    except TemplateError as exc:
        raise InvalidInput(f"template error: {exc}", message_zh=f"模板有误：{exc}") from exc


class TemplateSet:
    """The templates in force for one warning: package defaults plus the stored overrides."""

    def __init__(self, overrides: dict[tuple[str, str], str] | None = None) -> None:
        self.overrides = overrides or {}  # (unit_code, key) -> source
        self._cache: dict[tuple[str, str, str, str], Template] = {}

    def source(self, warning_type: str, audience: str, level: Level, kind: str, unit_code: str) -> str:
        units = [u for u in (unit_code, unit_code[:9], unit_code[:6]) if u]
        table = defaults()["templates"]
        for key in keys_for(warning_type, audience, level, kind):
            for u in units:
                if (u, key) in self.overrides:
                    return self.overrides[(u, key)]
            if key in table:
                return str(table[key])
        raise InvalidInput(f"no template for {warning_type}.{audience}", message_zh="没有适用的消息模板")

    def render(
        self, warning_type: str, audience: str, level: Level, kind: str, unit_code: str, context: dict[str, Any]
    ) -> str:
        ck = (warning_type, audience, f"{int(level)}{kind}", unit_code[:12])
        tpl = self._cache.get(ck)
        if tpl is None:
            tpl = compile_template(self.source(warning_type, audience, level, kind, unit_code))
            self._cache[ck] = tpl
        return "".join(line.strip() for line in tpl.render(**context).splitlines())


def render_reminder(templates: TemplateSet, channel: str, unit_code: str, context: dict[str, Any]) -> str:
    """A zero-report reminder for one channel (keys ``zero_report.official[.short]``).

    SMS-length aware: an SMS whose full text would need more than one part (70 UCS-2 characters,
    3GPP TS 23.040) gets the short template instead, when that is shorter; other channels get the
    full text.
    """
    full = templates.render(REMINDER_TYPE, "official", Level.NONE, "remind", unit_code, context)
    if channel != "sms" or len(full) <= SMS_SINGLE:
        return full
    short = templates.render(REMINDER_TYPE, "official", Level.NONE, "short", unit_code, context)
    return short if len(short) < len(full) else full
