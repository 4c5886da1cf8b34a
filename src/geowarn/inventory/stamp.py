"""Register stamps: values that change whenever the people, or the sites, of the register change.

Warning dissemination keeps the threatened households, their residents and the register's persons in
memory (:mod:`geowarn.dissemination.directory`): a red warning over a province names a million
people, and reading them from the database takes longer than the whole resolution may. The copy is
used only while :func:`register_stamp` still returns the value it was read with.

The stamp is kept by the database itself, so no write path can forget it (ORM, bulk ``COPY``,
imports, or SQL typed by an operator):

* **PostgreSQL**: statement-level triggers on ``household``, ``resident`` and ``person`` (stamp
  ``directory``) and on ``hazard_site`` (stamp ``sites``) set the stamp to a fresh random value at
  the first ``INSERT``, ``UPDATE``, ``DELETE`` or ``TRUNCATE`` of a transaction (once is enough: the
  stamp tells committed states apart). A random value, not a counter: a rolled-back change must not
  be able to reuse the value of a state that never became visible.
* **SQLite** has only row-level triggers, and one per inserted row would nearly double the time of a
  bulk import. Triggers there cover ``UPDATE`` and ``DELETE``; inserts are seen by the row count and
  the largest id of each table, which any insert changes. Within one random value (no update or
  delete since) states differ by their counts, so the triple identifies a committed state.

The directory is only ever read from committed data (a reader session), so a stamp seen inside an
uncommitted transaction that changed these tables simply does not match it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, String, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from geowarn.db import Base

#: Each stamp and the tables whose changes move it: the register's people, and the sites (apart, so
#: that editing a site does not make a process read a million residents again).
STAMPS: dict[str, tuple[str, ...]] = {"directory": ("household", "resident", "person"), "sites": ("hazard_site",)}
DIRECTORY = "directory"
SITES = "sites"


class RegisterStamp(Base):
    """One named stamp (one row per name of :data:`STAMPS`, created by the migrations)."""

    __tablename__ = "register_stamp"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    stamp: Mapped[int] = mapped_column(BigInteger)


def _sqlite_sql(name: str) -> Any:
    counts = ",".join(f" (SELECT count(*) FROM {t}), (SELECT max(id) FROM {t})" for t in STAMPS[name])  # noqa: S608
    return text(f"SELECT (SELECT stamp FROM register_stamp WHERE name = '{name}'),{counts}")  # noqa: S608


_SQLITE_STAMP = {name: _sqlite_sql(name) for name in STAMPS}  # the names are the constants above
_PG_STAMP = text("SELECT stamp FROM register_stamp WHERE name = :name")


def register_stamp(session: Session, name: str = DIRECTORY) -> tuple[Any, ...] | None:
    """Stamp ``name`` (:data:`STAMPS`) as ``session`` sees it; ``None`` if the database keeps none
    (a copy of those tables must then not be trusted)."""
    if session.get_bind().dialect.name == "postgresql":
        row = session.execute(_PG_STAMP, {"name": name}).first()
    else:
        row = session.execute(_SQLITE_STAMP[name]).first()
    if row is None or row[0] is None:
        return None
    return tuple(row)
