"""The people of the register in memory, for resolving the recipients of big warnings.

A red regional warning over a province names about a million residents. Reading them, their
households and the register's persons from the database takes several seconds on either backend,
longer than the whole resolution may take (issue 5: under a second). The directory holds them as
columns, read once and then kept while the register stamp (:mod:`geowarn.inventory.stamp`, kept by
database triggers) still has the value it was read with. Any insert, update or delete of a
household, resident or person, by any path, changes the stamp, and the next resolution reads again.

* **Committed data only.** The directory is read in its own reader session, never in the caller's
  transaction. A caller whose own uncommitted changes touch these tables sees another stamp and gets
  ``None``: it resolves from the database, as it would without a directory.
* **Phones normalised once.** Every phone is normalised (:func:`recipients.normalise_phone`) when
  read and numbered (one integer per distinct number), so merging a million residents by phone is a
  sort of integers, not of strings.
* **One per database URL per process**, rebuilt under a lock (two resolutions at once read once).
* **The live sites too**, under their own stamp (``sites``): their place and the people responsible,
  which a province's warning reads for thirty thousand sites. Editing a site reads the sites again,
  not the residents.

The first resolution after a change pays the read (about 2 s for a million residents on this
machine); ``warm`` lets a long-running process pay it at start.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import orjson
from sqlalchemy.orm import Session

from geowarn.db.raw import fetch_tuples
from geowarn.dissemination.recipients import merge_positions, normalise_phone
from geowarn.inventory.stamp import DIRECTORY, SITES, register_stamp


class PersonRow(NamedTuple):
    """A person as the resolution reads them (the attributes of a row of ``resolve.PERSON_COLUMNS``)."""

    id: int
    name: str
    phone: str | None  # normalised (:func:`recipients.normalise_phone`)
    unit_code: str
    roles: tuple[str, ...]
    key: str  # person:<id>
    ident: str  # who the person is when merging: the phone, else the key


OFFICIAL_ROLES = frozenset({"duty_official", "leader"})


@dataclass(slots=True)
class Directory:
    """Households (by id), their heads and residents with a phone as merge candidates, and active persons."""

    stamp: tuple[Any, ...]
    # households, sorted by id; -1 stands for no site / zone / shelter
    h_id: npt.NDArray[np.int64]
    h_code: npt.NDArray[Any]
    h_head: npt.NDArray[Any]
    h_size: npt.NDArray[np.int64]
    h_unit: npt.NDArray[Any]
    h_site: npt.NDArray[np.int64]
    h_zone: npt.NDArray[np.int64]
    h_shelter: npt.NDArray[np.int64]
    h_lon: npt.NDArray[np.float64]
    h_lat: npt.NDArray[np.float64]
    phone_table: npt.NDArray[np.str_]  # every number, sorted: the code of a number is its position
    # every household head (listed even without a phone) and every resident whose phone is not empty,
    # as a candidate in the order merging sees them: by household (by id), its head, then its residents
    # (by id); phones normalised (None when nothing is left) and coded (-1: none); those with a phone
    # grouped by phone
    c_hpos: npt.NDArray[np.int64]  # the household's position
    c_kind: npt.NDArray[np.int8]  # 0 head (household record), 1 resident
    c_record: npt.NDArray[np.int64]
    c_name: npt.NDArray[Any]
    c_phone: npt.NDArray[Any]
    c_code: npt.NDArray[np.int64]
    g_order: npt.NDArray[np.int64]  # candidates with a phone, by phone code, in candidate order within a code
    # active persons
    persons: dict[int, PersonRow]
    officials: dict[str, list[PersonRow]]  # unit code -> its duty officials and leaders, by id


def _objects(values: Any) -> npt.NDArray[Any]:
    arr = np.empty(len(values), dtype=object)
    arr[:] = values
    return arr


def _normalised_objects(phones: npt.NDArray[Any]) -> npt.NDArray[Any]:
    return _objects([normalise_phone(p) for p in phones.tolist()])


def _roles(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, (str, bytes)):
        value = orjson.loads(value)
    return tuple(value or ())


def load(session: Session) -> Directory:
    """Read the directory in ``session`` (the stamp first: data newer than it only cost a re-read)."""
    stamp = register_stamp(session)
    if stamp is None:
        raise LookupError("the database keeps no register stamp")
    hh = fetch_tuples(
        session,
        "SELECT id, code, head_name, phone, size, unit_code, COALESCE(site_id, -1), COALESCE(risk_zone_id, -1),"
        " COALESCE(shelter_id, -1), lon, lat FROM household ORDER BY id",
    )
    rr = fetch_tuples(
        session,
        "SELECT id, household_id, name, phone FROM resident WHERE phone IS NOT NULL AND phone <> ''"
        " ORDER BY household_id, id",
    )
    pp = fetch_tuples(session, "SELECT id, name, phone, unit_code, roles FROM person WHERE active ORDER BY id")
    hc = list(zip(*hh, strict=True)) if hh else [()] * 11
    h_id = np.array(hc[0], dtype=np.int64)
    rc = list(zip(*rr, strict=True)) if rr else [()] * 4
    r_id, r_hid = np.array(rc[0], dtype=np.int64), np.array(rc[1], dtype=np.int64)
    r_phone = _normalised_objects(_objects(rc[3]))
    h_norm = _normalised_objects(_objects(hc[3]))
    # one integer per distinct normalised number, over heads and residents together
    every = np.concatenate([h_norm, r_phone])
    has = np.fromiter((p is not None for p in every.tolist()), dtype=bool, count=len(every))
    codes = np.full(len(every), -1, dtype=np.int64)
    table = np.array([], dtype=str)
    if has.any():
        table, inv = np.unique(every[has].astype(str), return_inverse=True)
        codes[has] = inv.reshape(-1)
    persons: dict[int, PersonRow] = {}
    officials: dict[str, list[PersonRow]] = {}
    for pid, name, phone, unit, roles in pp:
        phone = normalise_phone(phone)
        key = f"person:{pid}"
        row = PersonRow(pid, name, phone, unit, _roles(roles), key, phone or key)
        persons[pid] = row
        if OFFICIAL_ROLES.intersection(row.roles):
            officials.setdefault(unit, []).append(row)
    nh, nr = len(h_id), len(r_id)
    r_hpos = np.searchsorted(h_id, r_hid)  # every resident's household exists (foreign key)
    head_at, res_at = merge_positions(nh, r_hpos)

    def interleave(heads: Any, residents: Any, dtype: Any) -> Any:
        out = np.empty(nh + nr, dtype=dtype)
        out[head_at], out[res_at] = heads, residents
        return out

    c_code = interleave(codes[:nh], codes[nh:], np.int64)
    with_phone = np.flatnonzero(c_code >= 0)
    return Directory(
        stamp=stamp,
        h_id=h_id,
        h_code=_objects(hc[1]),
        h_head=_objects(hc[2]),
        h_size=np.array(hc[4], dtype=np.int64),
        h_unit=_objects(hc[5]),
        h_site=np.array(hc[6], dtype=np.int64),
        h_zone=np.array(hc[7], dtype=np.int64),
        h_shelter=np.array(hc[8], dtype=np.int64),
        h_lon=np.array(hc[9], dtype=np.float64),
        h_lat=np.array(hc[10], dtype=np.float64),
        phone_table=table,
        c_hpos=interleave(np.arange(nh), r_hpos, np.int64),
        c_kind=interleave(0, 1, np.int8),
        c_record=interleave(h_id, r_id, np.int64),
        c_name=interleave(_objects(hc[2]), _objects(rc[2]), object),
        c_phone=interleave(h_norm, r_phone, object),
        c_code=c_code,
        g_order=with_phone[np.argsort(c_code[with_phone], kind="stable")],
        persons=persons,
        officials=officials,
    )


@dataclass(slots=True)
class Sites:
    """The sites that still threaten people (``resolve.LIVE_STATUSES``), by id, with their point."""

    stamp: tuple[Any, ...]
    rows: list[tuple[Any, ...]]  # (id, code, name, unit_code, township_code, responsible_person_id, monitor_id)
    x: npt.NDArray[np.float64]
    y: npt.NDArray[np.float64]


LIVE_STATUSES = ("registered", "under_treatment")


def load_sites(session: Session) -> Sites:
    """Read the live sites in ``session`` (the stamp first)."""
    stamp = register_stamp(session, SITES)
    if stamp is None:
        raise LookupError("the database keeps no sites stamp")
    rows = fetch_tuples(
        session,
        "SELECT id, code, name, unit_code, township_code, responsible_person_id, monitor_id, minx, miny"
        " FROM hazard_site WHERE status IN (?, ?) ORDER BY id",
        LIVE_STATUSES,
    )
    xy = np.array([r[-2:] for r in rows], dtype=float).reshape(-1, 2)
    return Sites(stamp, [r[:-2] for r in rows], xy[:, 0].copy(), xy[:, 1].copy())


_cache: dict[tuple[str, str], Any] = {}
_lock = threading.Lock()


def _cached(session: Session, name: str, loader: Callable[[Session], Any]) -> Any:
    database = session.info.get("database")
    if database is None:
        return None
    session.flush()
    want = register_stamp(session, name)
    if want is None:
        return None
    key = (database.url, name)
    with _lock:  # one reader at a time: a second resolution waits for the first one's read
        got = _cache.get(key)
        if got is None or got.stamp != want:
            with database.read() as rs:
                got = loader(rs)
            _cache[key] = got
    return got if got.stamp == want else None


def cached(session: Session) -> Directory | None:
    """The directory as ``session`` sees the register, or ``None`` when no directory can stand for it
    (a session not made by :class:`geowarn.db.Database`, a database without the stamp, or uncommitted
    changes of this transaction to households, residents or persons)."""
    return _cached(session, DIRECTORY, load)


def cached_sites(session: Session) -> Sites | None:
    """The live sites as ``session`` sees them, under the same conditions as :func:`cached`."""
    return _cached(session, SITES, load_sites)


def warm(database: Any) -> None:
    """Read the directory and the sites now (at the start of a process that disseminates warnings)."""
    with database.read() as s:
        cached(s)
        cached_sites(s)


def forget() -> None:
    """Drop every directory of this process (tests)."""
    with _lock:
        _cache.clear()
