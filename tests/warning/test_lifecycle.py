"""The pure decision of what an evaluation does to an alert."""

from __future__ import annotations

import pytest

from geowarn.warning.levels import Level
from geowarn.warning.lifecycle import Action, ClosedAlert, OpenAlert, decide

MIN = 60_000


@pytest.mark.parametrize(
    ("current", "level", "action"),
    [
        (None, Level.NONE, Action.NOTHING),
        (None, Level.YELLOW, Action.OPEN),
        (Level.YELLOW, Level.ORANGE, Action.ESCALATE),
        (Level.ORANGE, Level.YELLOW, Action.DEESCALATE),
        (Level.ORANGE, Level.ORANGE, Action.REFRESH),
        (Level.RED, Level.NONE, Action.CLOSE),
    ],
)
def test_level_changes(current: Level | None, level: Level, action: Action) -> None:
    open_alert = None if current is None else OpenAlert(current, 0)
    d = decide(open_alert, None, level, 10 * MIN)
    assert d.action is action
    assert d.previous == (current or Level.NONE)


def test_flap_reopens_within_the_window_only() -> None:
    closed = ClosedAlert(closed_ms=100 * MIN)
    assert decide(None, closed, Level.BLUE, 129 * MIN, flap_window_ms=30 * MIN).action is Action.REOPEN
    assert decide(None, closed, Level.BLUE, 131 * MIN, flap_window_ms=30 * MIN).action is Action.OPEN


def test_silence_stops_opening_but_not_an_open_alert() -> None:
    assert decide(None, None, Level.RED, 0, silenced=True).action is Action.SUPPRESS
    assert decide(OpenAlert(Level.YELLOW, 0), None, Level.RED, 0, silenced=True).action is Action.ESCALATE


def test_level_names() -> None:
    assert [lv.site_label for lv in Level][1:] == ["注意", "警示", "警戒", "警报"]
    assert [lv.national_grade for lv in Level][1:] == [4, 3, 2, 1]
    assert Level.parse("橙色") is Level.ORANGE and Level.parse("一级") is Level.RED and Level.parse(2) is Level.YELLOW
    with pytest.raises(ValueError):
        Level.parse("purple")
