"""The life of an alert as a pure decision: what a new evaluation does to the open alert, if any.

* One open alert per site and rule; a higher level escalates it, a lower (non-zero) level
  de-escalates it, level 0 ends it. Hysteresis is the evaluator's business (it knows the previous
  level); this module only turns levels into actions.
* Flap suppression: a condition that clears and returns within ``flap_window_ms`` reopens the
  alert that just ended (counting the flap) instead of raising a new one, so the people who were
  told are not told "new alert" again for the same condition.
* A silence (maintenance window) of a site, or of every device whose data a site rule read, stops
  new alerts from opening. An alert that is already open still follows its data, escalations and
  their messages included: a silence must not hide a worsening landslide that was already being
  tracked.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from geowarn.warning.levels import Level


class Action(enum.StrEnum):
    NOTHING = "nothing"
    OPEN = "opened"
    REOPEN = "reopened"
    ESCALATE = "escalated"
    DEESCALATE = "deescalated"
    REFRESH = "refreshed"  # same level, newer reason
    CLOSE = "closed"
    SUPPRESS = "suppressed"  # would open, but silenced


@dataclass(frozen=True, slots=True)
class OpenAlert:
    level: Level
    opened_ms: int


@dataclass(frozen=True, slots=True)
class ClosedAlert:
    closed_ms: int


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    level: Level
    previous: Level


def decide(
    open_alert: OpenAlert | None,
    last_closed: ClosedAlert | None,
    level: Level,
    now_ms: int,
    *,
    silenced: bool = False,
    flap_window_ms: int = 30 * 60_000,
) -> Decision:
    """The action a new evaluation at ``level`` calls for."""
    if open_alert is None:
        if level is Level.NONE:
            return Decision(Action.NOTHING, level, Level.NONE)
        if silenced:
            return Decision(Action.SUPPRESS, level, Level.NONE)
        if last_closed is not None and now_ms - last_closed.closed_ms <= flap_window_ms:
            return Decision(Action.REOPEN, level, Level.NONE)
        return Decision(Action.OPEN, level, Level.NONE)
    previous = open_alert.level
    if level is Level.NONE:
        return Decision(Action.CLOSE, level, previous)
    if level > previous:
        return Decision(Action.ESCALATE, level, previous)
    if level < previous:
        return Decision(Action.DEESCALATE, level, previous)
    return Decision(Action.REFRESH, level, previous)
