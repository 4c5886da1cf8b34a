"""The register summary (隐患点统计汇总表): per-township sums kept in step with ``hazard_site``.

``compute_stats`` over a province would otherwise group hundreds of thousands of sites on every
call; instead ``register_summary`` holds one row per cell of the statistics cube — the sites of
one township with one hazard type, scale, status and monitoring mode, and their threatened
households, people and property — and every write path keeps it exact, in the writer's own
transaction:

* **ORM writes** (API, services, demo): an ``after_flush`` hook collects the townships of the
  inserted, updated and deleted sites (old and new values, so a site that moves township or
  changes type or status leaves its old cell too) and recomputes those townships' rows;
* **bulk import** (core statements and ``COPY``) calls :func:`refresh_townships` once with the
  townships it touched;
* **ORM bulk statements** on ``HazardSite`` (``session.execute(update(HazardSite)…)``, unused in
  geowarn) rebuild the whole summary, as they name no objects;
* **repairs** (a database filled behind the application's back): :func:`rebuild_summary`, also
  ``geowarn stats --rebuild``.

A recomputation is "delete the townships' rows, ``INSERT … SELECT … GROUP BY`` from
``hazard_site``". The one increment is :func:`add_sites`, for the sites a bulk import has just
inserted: it adds the very values the import wrote (their cells cannot hold them yet), which is
exact and spares a national import a ``GROUP BY`` over every site it wrote (1 s of 300,000 sites).

Two codes per row. Scoping (``auth.scope.unit_filter``) compares a site's ``unit_code``, while the
ledgers break figures down by ``township_code`` (falling back to the first nine digits of the unit
code). ``scope_code`` is the first nine digits of ``unit_code`` — the unit itself when it lies
above township level — so the prefix range of any unit down to a township selects exactly the rows
of the sites ``unit_filter`` would select, even if a site's ``township_code`` disagreed with its
unit. Below township level (a village) statistics read ``hazard_site`` directly. Missing labels are
stored as ``''`` (primary-key columns cannot be null; the statistics read both as "unknown").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

import numpy as np
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    Select,
    String,
    Table,
    and_,
    bindparam,
    delete,
    event,
    func,
    insert,
    inspect,
    literal_column,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Result
from sqlalchemy.orm import Mapped, ORMExecuteState, Session, mapped_column

from geowarn.admin.codes import prefix_range
from geowarn.auth.scope import unit_filter
from geowarn.db import Base
from geowarn.inventory.models import HazardSite

__all__ = [
    "SITE_COLUMNS",
    "SUMMARY_KEYS",
    "RegisterSummary",
    "add_sites",
    "lock_counties",
    "rebuild_summary",
    "refresh_townships",
    "summary_select",
    "touched_townships",
]

#: Longest scope that the summary answers: a township (nine digits).
TOWNSHIP_DIGITS = 9
#: Site columns whose change moves a site between cells or changes a cell's sums (and the
#: columns :func:`add_sites` takes).
SITE_COLUMNS = (
    "unit_code",
    "township_code",
    "hazard_type",
    "scale",
    "status",
    "monitoring_mode",
    "threatened_households",
    "threatened_people",
    "threatened_property_yuan",
)
#: Above this many townships a refresh selects sites by county, or by province, instead of by township.
_MANY = 48
#: Bound parameters per ``IN`` list (SQLite allows 32,766).
_CHUNK = 5_000
#: PostgreSQL advisory-lock namespace of the summary (``pg_advisory_xact_lock(int, int)``).
_LOCK_NS = 0x5245  # "RE"


class RegisterSummary(Base):
    """One cell of the statistics cube: the sites of one township with the same four labels."""

    __tablename__ = "register_summary"

    #: First nine digits of the sites' ``unit_code`` (what scoping compares).
    scope_code: Mapped[str] = mapped_column(String(9), primary_key=True)
    #: ``coalesce(township_code, scope_code)``: the township the ledgers report.
    township_code: Mapped[str] = mapped_column(String(9), primary_key=True)
    hazard_type: Mapped[str] = mapped_column(String(24), primary_key=True)
    scale: Mapped[str] = mapped_column(String(12), primary_key=True)
    status: Mapped[str] = mapped_column(String(20), primary_key=True)
    monitoring_mode: Mapped[str] = mapped_column(String(16), primary_key=True)
    sites: Mapped[int] = mapped_column(Integer)
    households: Mapped[int] = mapped_column(BigInteger)
    people: Mapped[int] = mapped_column(BigInteger)
    property_yuan: Mapped[int] = mapped_column(BigInteger)

    # On SQLite the rows live in primary-key order, so a scope's prefix range is one contiguous read.
    __table_args__ = {"sqlite_with_rowid": False}


#: The summary's columns in the order :func:`summary_select` produces them.
SUMMARY_KEYS = (
    "scope_code",
    "township_code",
    "hazard_type",
    "scale",
    "status",
    "monitoring_mode",
    "sites",
    "households",
    "people",
    "property_yuan",
)


def _scope_expr() -> ColumnElement[str]:
    # Literal positions (no bound parameters) so that PostgreSQL sees the same expression in GROUP BY.
    return func.substr(HazardSite.unit_code, literal_column("1"), literal_column(str(TOWNSHIP_DIGITS)))


def summary_select(where: ColumnElement[bool] | None = None) -> Select[*tuple[Any, ...]]:
    """``SELECT … GROUP BY`` over ``hazard_site`` giving summary rows (columns as ``SUMMARY_KEYS``)."""
    s = HazardSite
    blank: ColumnElement[str] = literal_column("''")
    scope = _scope_expr()
    keys = (
        scope,
        func.coalesce(s.township_code, scope),
        func.coalesce(s.hazard_type, blank),
        func.coalesce(s.scale, blank),
        func.coalesce(s.status, blank),
        func.coalesce(s.monitoring_mode, blank),
    )
    zero: ColumnElement[int] = literal_column("0")
    stmt = select(
        *keys,
        func.count(),
        func.coalesce(func.sum(s.threatened_households), zero),
        func.coalesce(func.sum(s.threatened_people), zero),
        func.coalesce(func.sum(s.threatened_property_yuan), zero),
    )
    if where is not None:
        stmt = stmt.where(where)
    return stmt.group_by(*keys)


def _lock(conn: Connection, counties: Sequence[str] | None) -> None:
    """Serialise concurrent recomputations of the same county on PostgreSQL (SQLite has one writer).

    Under READ COMMITTED the statement after the lock sees what the previous holder committed, so
    two writers of one township cannot both delete and re-insert from stale snapshots. Small
    refreshes hold the namespace lock shared and their counties exclusively; a refresh of many
    counties (an import, a rebuild) holds the namespace lock exclusively.
    """
    if conn.dialect.name != "postgresql":
        return
    if counties is None:
        conn.execute(text("SELECT pg_advisory_xact_lock(:ns, 0)"), {"ns": _LOCK_NS})
        return
    conn.execute(text("SELECT pg_advisory_xact_lock_shared(:ns, 0)"), {"ns": _LOCK_NS})
    for county in counties:
        conn.execute(text("SELECT pg_advisory_xact_lock(:ns, hashtext(:c))"), {"ns": _LOCK_NS, "c": county})


def lock_counties(conn: Connection, units: Iterable[str]) -> None:
    """Take, for this transaction, the summary locks a refresh or an addition of these units' sites takes.

    A writer that will refresh some townships and add to others calls this first with all their
    units: the later calls then hold their locks already, and none is upgraded mid-transaction.
    """
    counties = sorted({u[:6] for u in units if u})
    if counties:
        _lock(conn, counties if len(counties) <= _MANY else None)


def _site_ranges(keys: Sequence[str]) -> ColumnElement[bool] | None:
    """Ranges of ``unit_code`` covering the townships (an index can answer them); None: scan all."""
    prefixes: Iterable[str] = keys
    for width in (TOWNSHIP_DIGITS, 6, 2):
        prefixes = sorted({k[:width] for k in keys})
        if len(prefixes) <= _MANY:
            break
    else:
        return None
    return or_(*(and_(HazardSite.unit_code >= p, HazardSite.unit_code < p + ":") for p in prefixes))


def refresh_townships(conn: Connection, townships: Iterable[str]) -> None:
    """Recompute the summary rows of these ``scope_code`` values (first nine digits of unit codes).

    Runs in the caller's transaction: deletes the townships' rows and re-inserts them from one
    ``GROUP BY`` over their sites.
    """
    keys = sorted({t[:TOWNSHIP_DIGITS] for t in townships if t})
    if not keys:
        return
    counties = sorted({k[:6] for k in keys})
    _lock(conn, counties if len(counties) <= _MANY else None)
    cols = [getattr(RegisterSummary, c) for c in SUMMARY_KEYS]
    for i in range(0, len(keys), _CHUNK):
        part = keys[i : i + _CHUNK]
        conn.execute(
            delete(RegisterSummary).where(RegisterSummary.scope_code.in_(bindparam("k", expanding=True))), {"k": part}
        )
        where: ColumnElement[bool] = _scope_expr().in_(bindparam("k", expanding=True))
        ranges = _site_ranges(part)
        if ranges is not None:
            where = and_(ranges, where)
        conn.execute(insert(RegisterSummary).from_select(cols, summary_select(where)), {"k": part})


#: Summary cells (their :data:`SUMMARY_KEYS`) → what sites add to them: sites, households, people, property.
Cells = dict[tuple[str, ...], list[int]]


def site_cells(sites: Mapping[str, Sequence[Any]], into: Cells | None = None) -> Cells:
    """What ``sites`` add to their cells (``into``, if given, gathers several batches of sites).

    ``sites`` holds the :data:`SITE_COLUMNS` of the sites, exactly as written. Pure: an importer
    gathers each chunk's cells as it writes, and adds them once (:func:`add_cells`).
    """
    cells: Cells = {} if into is None else into
    scopes = [u[:TOWNSHIP_DIGITS] for u in sites["unit_code"]]
    if not scopes:
        return cells
    labels = [[v or "" for v in sites[c]] for c in ("hazard_type", "scale", "status", "monitoring_mode")]
    towns = [t or s for t, s in zip(sites["township_code"], scopes, strict=True)]
    keys: dict[tuple[str, ...], int] = {}
    cell = np.fromiter(
        (keys.setdefault(k, len(keys)) for k in zip(scopes, towns, *labels, strict=True)), np.int64, len(scopes)
    )
    columns = [np.bincount(cell, minlength=len(keys)).tolist()]
    for c in ("threatened_households", "threatened_people", "threatened_property_yuan"):
        acc = np.zeros(len(keys), dtype=np.int64)
        np.add.at(acc, cell, np.asarray([v or 0 for v in sites[c]], dtype=np.int64))
        columns.append(acc.tolist())
    for k, i in keys.items():
        got = cells.get(k)
        if got is None:
            cells[k] = [col[i] for col in columns]
        else:
            for j, col in enumerate(columns):
                got[j] += col[i]
    return cells


def add_cells(conn: Connection, cells: Cells) -> None:
    """Add to the summary, in the caller's transaction, the cells of sites it does not count yet:
    new rows, in townships that are not also refreshed."""
    if not cells:
        return
    counties = sorted({k[0][:6] for k in cells})
    _lock(conn, counties if len(counties) <= _MANY else None)
    add = ("sites", "households", "people", "property_yuan")
    rows = [dict(zip(SUMMARY_KEYS, (*k, *v), strict=True)) for k, v in cells.items()]
    table = cast(Table, RegisterSummary.__table__)
    stmt = (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=[c.name for c in table.primary_key.columns],
        set_={c: table.c[c] + stmt.excluded[c] for c in add},
    )
    conn.execute(stmt, rows)


def add_sites(conn: Connection, sites: Mapping[str, Sequence[Any]]) -> None:
    """Add sites inserted in this transaction to their cells (see :func:`site_cells`, :func:`add_cells`)."""
    add_cells(conn, site_cells(sites))


def rebuild_summary(conn: Connection, scope_unit: str | None = None) -> int:
    """Recompute the summary from ``hazard_site`` for ``scope_unit`` (default: everything); rows written.

    For repairs, e.g. after sites were written with plain SQL. A unit below township level
    rebuilds its township.
    """
    _lock(conn, None)
    cols = [getattr(RegisterSummary, c) for c in SUMMARY_KEYS]
    r = RegisterSummary
    if scope_unit is None:
        rows: ColumnElement[bool] = true()
        sites = None
    else:
        lo, hi = prefix_range(scope_unit[:TOWNSHIP_DIGITS])
        rows = and_(r.scope_code >= lo, r.scope_code < hi)
        sites = unit_filter(HazardSite.unit_code, scope_unit[:TOWNSHIP_DIGITS])
    conn.execute(delete(r).where(rows))
    conn.execute(insert(r).from_select(cols, summary_select(sites)))
    # (the drivers do not all report the rows of INSERT … SELECT)
    return int(conn.execute(select(func.count()).select_from(r).where(rows)).scalar_one())


# --------------------------------------------------------------------------- ORM hook


_DELETED = "register_summary_deleted"


def _values(obj: Any, key: str, *, load: bool = True) -> set[Any]:
    """The attribute's value before and after this flush."""
    hist = inspect(obj).attrs[key].history
    out = {*hist.added, *hist.unchanged, *hist.deleted}
    if not out and load:  # not loaded: read it
        out = {getattr(obj, key)}
    return out


def _scopes(obj: Any, *, load: bool = True) -> set[str]:
    return {u[:TOWNSHIP_DIGITS] for u in _values(obj, "unit_code", load=load) if u}


def touched_townships(session: Session) -> set[str]:
    """``scope_code`` values whose summary rows the flush changes (call it in ``after_flush``)."""
    keys: set[str] = set(session.info.pop(_DELETED, ()))
    for obj in session.new:
        if isinstance(obj, HazardSite):
            keys |= _scopes(obj)
    for obj in session.deleted:  # the row is gone: no loading now (before_flush read what it needed)
        if isinstance(obj, HazardSite):
            keys |= _scopes(obj, load=False)
    for obj in session.dirty:
        if not isinstance(obj, HazardSite):
            continue
        state = inspect(obj)
        if any(state.attrs[k].history.has_changes() for k in SITE_COLUMNS):
            keys |= _scopes(obj)
    return keys


@event.listens_for(Session, "before_flush")
def _summary_before_flush(session: Session, _ctx: Any, _instances: Any) -> None:
    """Read the townships of sites about to be deleted while their rows still exist."""
    gone = set().union(*(_scopes(o) for o in session.deleted if isinstance(o, HazardSite)))
    if gone:
        session.info.setdefault(_DELETED, set()).update(gone)


@event.listens_for(Session, "after_flush")
def _summary_after_flush(session: Session, _ctx: Any) -> None:
    keys = touched_townships(session)
    if keys:
        refresh_townships(session.connection(), keys)


@event.listens_for(Session, "do_orm_execute")
def _summary_after_bulk(state: ORMExecuteState) -> Result[Any] | None:
    """ORM bulk statements (``session.execute(update(HazardSite)…)``) name no objects: rebuild it all.

    Nothing in geowarn writes sites this way; the rebuild keeps the summary exact if someone does.
    """
    if not (state.is_insert or state.is_update or state.is_delete):
        return None
    mapper = state.bind_mapper
    if mapper is None or not issubclass(mapper.class_, HazardSite):
        return None
    result = state.invoke_statement()
    rebuild_summary(state.session.connection())
    return result
