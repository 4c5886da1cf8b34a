"""Bring many alerts in line with new levels at once (an engine batch), in the caller's transaction.

For a batch of :class:`LevelChange` requests the open alerts (when the caller has not loaded them),
the last closed alert of every (kind, rule, site/device) and the active silences are read in one
query each; each request is decided by :func:`geowarn.warning.lifecycle.decide`; the new alerts and
every ``AlertEvent`` row are inserted in bulk, with their audit entries (``warning.bulk_writes``),
changed alerts flush with the session; and the changes people
must be told of are disseminated together (:func:`geowarn.dissemination.hook.on_alerts`), so a
decision and its messages stay one transaction. A request whose subject already occurs earlier in
the batch is applied in a later round, so the result equals applying the requests one by one
(:func:`geowarn.warning.alerts.apply_level` is this with one request).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from geowarn.dissemination.hook import AlertChange, on_alerts
from geowarn.warning import bulk_writes
from geowarn.warning.levels import Level
from geowarn.warning.lifecycle import Action, ClosedAlert, Decision, OpenAlert, decide
from geowarn.warning.models import Alert, Silence, open_key

SITE_RULE = "site_rule"
DEVICE_OFFLINE = "device_offline"
NO_DATA = "no_data"
#: An alert raised by hand from a field report (灾险情速报), see ``geowarn.fieldwork.events``.
FIELD_REPORT = "field_report"
#: Alert kinds that people must be told of; device and no-data alarms go to operators' lists only.
TOLD_KINDS = frozenset({SITE_RULE, FIELD_REPORT})
CHUNK = 2000  # subjects per lookup query (bound parameters stay well under SQLite's limit)

#: (kind, rule id, site id, device id): the subject of at most one open alert.
Key = tuple[str, str, int | None, int | None]


@dataclass(frozen=True, slots=True)
class Outcome:
    decision: Decision
    alert: Alert | None


@dataclass(slots=True)
class LevelChange:
    """A new level for the alert of (kind, site/device, rule); see :func:`geowarn.warning.alerts.apply_level`."""

    kind: str
    rule_id: str
    unit_code: str
    level: Level
    now_ms: int
    site_id: int | None = None
    device_id: int | None = None
    rule_name: str | None = None
    reason: dict[str, Any] | None = None
    forecast: dict[str, Any] | None = None
    flap_window_ms: int = 30 * 60_000
    #: The open alert when the caller has loaded it (None: none is open), or "lookup".
    current: Alert | Literal["lookup"] | None = "lookup"
    #: How often an unchanged level may rewrite the latest reason.
    refresh_every_ms: int = 0
    #: A site rule's input devices: when every one of them is silenced (maintenance), the alert does
    #: not open, as if the site were silenced.
    input_devices: tuple[int, ...] = ()

    @property
    def key(self) -> Key:
        return (self.kind, self.rule_id, self.site_id, self.device_id)


def _key(a: Alert) -> Key:
    return (a.kind, a.rule_id, a.site_id, a.device_id)


def _subjects(keys: Sequence[Key]) -> Iterable[ColumnElement[bool]]:
    """SQL conditions, chunked, that select (a superset of) the alerts of ``keys``; callers match exactly."""
    kinds = sorted({k[0] for k in keys})
    rules = sorted({k[1] for k in keys})
    sites = sorted({k[2] for k in keys if k[3] is None and k[2] is not None})
    devices = sorted({k[3] for k in keys if k[3] is not None})
    parts: list[ColumnElement[bool]] = []
    for i in range(0, len(sites), CHUNK):
        parts.append(and_(Alert.device_id.is_(None), Alert.site_id.in_(sites[i : i + CHUNK])))
    for i in range(0, len(devices), CHUNK):
        parts.append(Alert.device_id.in_(devices[i : i + CHUNK]))
    if any(k[2] is None and k[3] is None for k in keys):
        parts.append(and_(Alert.site_id.is_(None), Alert.device_id.is_(None)))
    for part in parts:
        yield and_(Alert.kind.in_(kinds), Alert.rule_id.in_(rules), part)


def open_alerts(session: Session, keys: Sequence[Key]) -> dict[Key, Alert]:
    """The open alert of each key that has one (locked on PostgreSQL, as the engine's batches are)."""
    wanted = set(keys)
    out: dict[Key, Alert] = {}
    if not wanted:
        return out
    postgres = session.get_bind().dialect.name == "postgresql"
    for cond in _subjects(list(wanted)):
        stmt = select(Alert).where(Alert.status == "open", cond)
        for a in session.scalars(stmt.with_for_update() if postgres else stmt):
            if _key(a) in wanted:
                out[_key(a)] = a
    return out


def last_closed(session: Session, keys: Sequence[Key]) -> dict[Key, Alert]:
    """The most recently closed alert of each key (by closing time, then id), for flap suppression."""
    wanted = set(keys)
    out: dict[Key, Alert] = {}
    if not wanted:
        return out
    rank = func.row_number().over(
        partition_by=(Alert.kind, Alert.rule_id, Alert.site_id, Alert.device_id),
        order_by=(Alert.closed_ms.desc(), Alert.id.desc()),
    )
    for cond in _subjects(list(wanted)):
        ranked = select(Alert.id, rank.label("rank")).where(Alert.status == "closed", cond).subquery()
        stmt = select(Alert).join(ranked, ranked.c.id == Alert.id).where(ranked.c.rank == 1)
        for a in session.scalars(stmt):
            if _key(a) in wanted:
                out[_key(a)] = a
    return out


def silenced(session: Session, targets: Sequence[tuple[int | None, int | None, int, Sequence[int]]]) -> list[bool]:
    """For each (site, device, time, input devices): does an active silence cover the site or the
    device then, or every one of the input devices (a site rule whose data all come from devices under
    maintenance; none given: this does not apply)?"""
    inputs = [tuple(t[3]) for t in targets]
    sites = sorted({t[0] for t in targets if t[0] is not None})
    devices = sorted({t[1] for t in targets if t[1] is not None} | {d for ds in inputs for d in ds})
    if not sites and not devices:
        return [False] * len(targets)
    times = [t[2] for t in targets]
    by_site: dict[int, list[tuple[int, int]]] = {}
    by_device: dict[int, list[tuple[int, int]]] = {}
    for i in range(0, max(len(sites), len(devices)), CHUNK):
        cover = [Silence.site_id.in_(sites[i : i + CHUNK]), Silence.device_id.in_(devices[i : i + CHUNK])]
        stmt = select(Silence.site_id, Silence.device_id, Silence.start_ms, Silence.end_ms).where(
            or_(*cover), Silence.start_ms <= max(times), Silence.end_ms > min(times), Silence.cancelled_ms.is_(None)
        )
        for site_id, device_id, start, end in session.execute(stmt):
            if site_id is not None:
                by_site.setdefault(site_id, []).append((start, end))
            if device_id is not None:
                by_device.setdefault(device_id, []).append((start, end))

    def covered(spans: list[tuple[int, int]], t: int) -> bool:
        return any(start <= t < end for start, end in spans)

    return [
        (s is not None and covered(by_site.get(s, []), t))
        or (d is not None and covered(by_device.get(d, []), t))
        or (bool(ins) and all(covered(by_device.get(x, []), t) for x in ins))
        for (s, d, t, _), ins in zip(targets, inputs, strict=True)
    ]


def apply_levels(session: Session, changes: Sequence[LevelChange]) -> list[Outcome]:
    """Apply ``changes`` in order (see the module docstring); one :class:`Outcome` per change."""
    outcomes: list[Outcome | None] = [None] * len(changes)
    pending = list(range(len(changes)))
    while pending:  # rounds in which each subject occurs once
        seen: set[Key] = set()
        now: list[int] = []
        later: list[int] = []
        for i in pending:
            (later if changes[i].key in seen else now).append(i)
            seen.add(changes[i].key)
        for i, out in zip(now, _apply_round(session, [changes[i] for i in now]), strict=True):
            outcomes[i] = out
        pending = later
    return [o for o in outcomes if o is not None]


def _apply_round(session: Session, changes: Sequence[LevelChange]) -> list[Outcome]:
    found = open_alerts(session, [c.key for c in changes if c.current == "lookup"])
    current: list[Alert | None] = [found.get(c.key) if c.current == "lookup" else c.current for c in changes]
    opening = [i for i, c in enumerate(changes) if current[i] is None and c.level is not Level.NONE]
    closed = last_closed(session, [changes[i].key for i in opening])
    quiet = silenced(session, [(changes[i].site_id, changes[i].device_id, changes[i].now_ms,
                                changes[i].input_devices) for i in opening])  # fmt: skip
    silenced_at = {i: q for i, q in zip(opening, quiet, strict=True)}
    outcomes: list[Outcome] = []
    recorded: list[tuple[LevelChange, Alert, Decision, dict[str, Any]]] = []
    opened: list[Alert] = []
    refreshed: list[tuple[Alert, dict[str, Any]]] = []
    for i, c in enumerate(changes):
        alert = current[i]
        last = closed.get(c.key) if alert is None else None
        decision = decide(
            None if alert is None else OpenAlert(Level(alert.level), alert.opened_ms),
            ClosedAlert(last.closed_ms) if last is not None and last.closed_ms is not None else None,
            c.level,
            c.now_ms,
            silenced=silenced_at.get(i, False),
            flap_window_ms=c.flap_window_ms,
        )
        alert, record = _transition(c, decision, alert, last)
        outcomes.append(Outcome(decision, alert))
        if (
            alert is not None
            and decision.action is Action.REFRESH
            and c.now_ms - alert.updated_ms >= c.refresh_every_ms
        ):
            refreshed.append((alert, {"updated_ms": c.now_ms, "rule_name": c.rule_name or alert.rule_name,
                                      "reason": c.reason or {}, "forecast": c.forecast}))  # fmt: skip
        if alert is not None and decision.action is Action.OPEN:
            opened.append(alert)
        if record and alert is not None:
            recorded.append((c, alert, decision, c.reason or {}))
    bulk_writes.refresh_alerts(session, refreshed)
    if not recorded:
        return outcomes
    bulk_writes.insert_alerts(session, opened)
    bulk_writes.insert_events(session, [
        (alert, {"alert_id": alert.id, "t_ms": c.now_ms, "kind": d.action.value, "level_from": int(d.previous),
                 "level_to": int(c.level), "reason": reason})
        for c, alert, d, reason in recorded
    ])  # fmt: skip
    told = [AlertChange(a, d.action.value, d.previous, c.now_ms) for c, a, d, _ in recorded if c.kind in TOLD_KINDS]
    if told:  # the messages of these decisions, in their transaction (issue 5)
        on_alerts(session, told)
    return outcomes


def _transition(
    c: LevelChange, decision: Decision, current: Alert | None, last: Alert | None
) -> tuple[Alert | None, bool]:
    """Change the alert as ``decision`` says (a new alert is returned unsaved: the caller inserts the
    batch's new alerts at once); returns the alert and whether an event is recorded."""
    action = decision.action
    if action in (Action.NOTHING, Action.SUPPRESS):
        return None, False
    reason = c.reason or {}
    if action is Action.OPEN:
        current = Alert(
            kind=c.kind,
            site_id=c.site_id,
            device_id=c.device_id,
            rule_id=c.rule_id,
            rule_name=c.rule_name,
            unit_code=c.unit_code,
            status="open",
            level=int(c.level),
            max_level=int(c.level),
            opened_ms=c.now_ms,
            updated_ms=c.now_ms,
            reason=reason,
            forecast=c.forecast,
            flaps=0,
            open_key=open_key(c.kind, c.rule_id, c.site_id, c.device_id),
            acknowledged_ms=None,
            acknowledged_by=None,
            ack_comment=None,
        )
        return current, True
    if action is Action.REOPEN:
        assert last is not None
        last.status, last.closed_ms, last.flaps = "open", None, last.flaps + 1
        last.open_key = open_key(c.kind, c.rule_id, c.site_id, c.device_id)
        last.level, last.max_level = int(c.level), max(last.max_level, int(c.level))
        last.updated_ms, last.reason, last.forecast = c.now_ms, reason, c.forecast
        return last, True
    assert current is not None
    if action is Action.REFRESH:  # the latest reason, written in bulk by the caller (no event)
        return current, False
    current.updated_ms = c.now_ms
    current.rule_name = c.rule_name or current.rule_name
    current.reason = reason if action is not Action.CLOSE else {**current.reason, "cleared": reason}
    if c.forecast is not None or action is not Action.CLOSE:
        current.forecast = c.forecast
    if action is Action.CLOSE:
        current.status, current.closed_ms, current.open_key = "closed", c.now_ms, None
    else:
        current.level, current.max_level = int(c.level), max(current.max_level, int(c.level))
    return current, action is not Action.REFRESH
