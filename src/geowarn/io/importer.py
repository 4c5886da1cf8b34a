"""Import of register files (隐患点台账, GIS layers) into the database: the public entry point.

``import_file`` reads a file chunk by chunk (:mod:`geowarn.io.readers`) and validates every chunk
column-wise (:mod:`geowarn.io.validate`); :mod:`geowarn.io.pipeline` does both, in a forked process
for a large file. Each chunk's good rows are written by bulk upsert (:mod:`geowarn.io.upsert`) as
the chunk arrives, all in one transaction. A file with a bad row (without ``skip_bad``) is then
refused whole: the transaction is rolled back, and an ``ImportBatch(status="rejected")`` with one
``ImportRejection`` per problem is recorded for the operator to see.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import gc
import hashlib
import itertools
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
from sqlalchemy import insert, update
from sqlalchemy.orm import Session

from geowarn.audit.hook import actor_of, record
from geowarn.audit.models import AuditEntry
from geowarn.auth.masking import SENSITIVE_FIELDS
from geowarn.db import Database, utcnow
from geowarn.db.bulkload import deferred_indexes
from geowarn.errors import FileRejected, InvalidInput, RowProblem
from geowarn.inventory.summary import TOWNSHIP_DIGITS, Cells, add_cells, lock_counties, refresh_townships, site_cells
from geowarn.io import store
from geowarn.io.models import ImportBatch, ImportRejection
from geowarn.io.parsers import neutralise_formula
from geowarn.io.pipeline import Source, Validated, validated
from geowarn.io.readers import PiecesDisagree, detect_format
from geowarn.io.schema import kind_spec
from geowarn.io.upsert import Outcome, upsert
from geowarn.io.validate import Part

__all__ = ["ImportResult", "import_file"]

log = logging.getLogger(__name__)


@dataclass
class ImportResult:
    batch_id: int
    kind: str
    total: int
    created: int
    updated: int
    unchanged: int
    rejected: int
    problems: list[RowProblem]
    reject_path: Path | None
    source_crs: str | None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    if path.is_file():
        with path.open("rb") as fh:
            while block := fh.read(1 << 20):
                h.update(block)
    return h.hexdigest()


def _actor_name(actor: Any) -> str:
    return actor if isinstance(actor, str) else str(getattr(actor, "username", actor))


def import_file(
    db: Database,
    path: Path,
    *,
    kind: str = "sites",
    actor: Any = "system",
    scope_unit: str,
    source_crs: str | None = None,
    mapping: dict[str, str] | None = None,
    skip_bad: bool = False,
    reject_path: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    filename: str | None = None,
) -> ImportResult:
    """Import ``path`` as ``kind`` for the unit ``scope_unit``; see the module docstring and docs/import-formats.md.

    ``progress(done, total)`` is called as rows are validated (``total`` is 0 while unknown, for
    streamed CSV/XLSX) and once more when the rows are written.
    """
    with _cyclic_gc_paused():
        return _import(
            db, path, kind, actor, scope_unit, source_crs, mapping, skip_bad, reject_path, progress, filename
        )


@contextlib.contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while millions of short-lived cell objects are made.

    The objects of an import hold no reference cycles; CPython's generational collector would
    otherwise rescan the growing heap again and again (about 20 % of a 300,000-site import).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Refused(Exception):
    """Row problems in a file imported without ``skip_bad``: the writes are rolled back."""


def _import(
    db: Database,
    path: Path,
    kind: str,
    actor: Any,
    scope_unit: str,
    source_crs: str | None,
    mapping: dict[str, str] | None,
    skip_bad: bool,
    reject_path: Path | None,
    progress: Callable[[int, int], None] | None,
    filename: str | None,
) -> ImportResult:
    try:
        spec = kind_spec(kind)
    except ValueError as exc:
        raise InvalidInput(str(exc), message_zh=f"未知的导入类型：{kind}") from exc
    path = Path(path)
    meta = {
        "actor": _actor_name(actor),
        "kind": kind,
        "filename": (filename or path.name)[:300],
        "sha256": "",
        "file_format": path.suffix.lower().lstrip(".")[:16] or "?",
        "source_crs": source_crs,
        "unit_code": scope_unit,
    }
    try:
        fmt = detect_format(path)
        meta["file_format"] = fmt
        src = Source(path, fmt, spec, scope_unit, source_crs, mapping)
        chunks = validated(db, src)
        first = next(chunks)  # the reading process, if any, is forked before the hashing thread starts
    except FileRejected as exc:
        meta["sha256"] = _sha256(path)
        exc.extra["batch_id"] = _record_rejected(db, actor, meta, exc.problems, {}, 0)
        raise
    digest = _HashInThread(path)
    try:
        rest = itertools.chain([first], chunks)
        try:
            return _write(db, actor, meta, digest, spec, scope_unit, rest, skip_bad, progress, reject_path)
        except PiecesDisagree as exc:  # rare: the writes were rolled back; read the file whole this time
            log.info("import of %s: read again whole (%s)", path.name, exc)
            chunks.close()
            chunks = validated(db, dataclasses.replace(src, stream=False))
            return _write(db, actor, meta, digest, spec, scope_unit, chunks, skip_bad, progress, reject_path)
    except FileRejected as exc:
        if "batch_id" not in exc.extra:  # a whole-file problem found in a later chunk (row problems are recorded)
            meta["sha256"] = digest.result()
            exc.extra["batch_id"] = _record_rejected(db, actor, meta, exc.problems, {}, 0)
        raise
    finally:
        chunks.close()  # a forked reader is stopped and reaped now, whatever happened


class _HashInThread:
    """SHA-256 of the file, computed beside the import (hashlib releases the GIL on large blocks)."""

    def __init__(self, path: Path) -> None:
        self._value = ""
        self._thread = threading.Thread(target=self._run, args=(path,), name="geowarn-import-sha256", daemon=True)
        self._thread.start()

    def _run(self, path: Path) -> None:
        self._value = _sha256(path)

    def result(self) -> str:
        self._thread.join()
        return self._value


@dataclass
class _Totals:
    """What the chunks of one file add up to."""

    total: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    raw: dict[int, dict[str, Any]] = field(default_factory=dict)
    existing: dict[str, dict[str, Any]] = field(default_factory=dict)
    outcome: Outcome = field(default_factory=Outcome)
    #: What the inserted sites add to the summary, gathered chunk by chunk; None when which rows
    #: were inserted is not known.
    cells: Cells | None = field(default_factory=dict)
    source_crs: str | None = None
    #: Townships (first nine digits of the unit codes) of every row written.
    towns: set[str] = field(default_factory=set)
    #: The unit code each updated site has now.
    moved_to: dict[str, str] = field(default_factory=dict)

    def add(self, got: Outcome, values: dict[str, Any]) -> None:
        units = values["unit_code"].tolist()
        self.towns.update({u[:TOWNSHIP_DIGITS] for u in units})
        if got.changes:
            changed = {c for c, _, _ in got.changes}
            self.moved_to.update((c, u) for c, u in zip(values["code"].tolist(), units, strict=True) if c in changed)
        o = self.outcome
        o.created += got.created
        o.updated += got.updated
        o.unchanged += got.unchanged
        o.changes.extend(got.changes)
        if self.cells is None or got.inserted_sites is None:
            self.cells = None
        else:
            site_cells(got.inserted_sites, self.cells)


def _write(
    db: Database,
    actor: Any,
    meta: dict[str, Any],
    digest: _HashInThread,
    spec: Any,
    scope_unit: str,
    chunks: Iterator[Validated],
    skip_bad: bool,
    progress: Callable[[int, int], None] | None,
    reject_path: Path | None,
) -> ImportResult:
    """Write each chunk's good rows as it comes, in one transaction; refuse the file at the end if it must be."""
    kind = spec.name
    t = _Totals()
    try:
        with db.write(actor) as session:
            conn = session.connection()
            batch_id = _new_batch(session, meta, 0)
            with contextlib.ExitStack() as deferred:
                locked: bool | None = None
                persons: store.PersonDirectory | None = None
                for item in chunks:
                    part = item.part
                    t.total += len(part.rows)
                    t.source_crs = item.source_crs
                    t.problems.extend(part.problems)
                    t.raw.update(part.raw)
                    t.existing.update(item.existing)
                    if progress:
                        progress(t.total, item.total or item.estimated_total or 0)
                    if t.problems and not skip_bad:
                        continue  # the file will be refused: read on, to report every problem
                    if locked is None:  # the table first, then the persons (the order site writers take them in)
                        new_here = len(part.rows) - len(item.existing)
                        if item.total is not None and item.known is not None:
                            expected = item.total - item.known  # new codes in the whole file
                        elif item.estimated_total:  # as in the first chunk, about
                            expected = round(item.estimated_total * new_here / max(1, len(part.rows)))
                        else:
                            expected = new_here  # in the first chunk
                        # On PostgreSQL the reader's lookups would wait for the lock: only once it is done reading.
                        table_free = item.reads_done or conn.dialect.name != "postgresql"
                        table = store.PLANS[kind].table
                        locked = table_free and deferred.enter_context(deferred_indexes(conn, table, expected))
                        if kind == "sites":
                            persons = store.PersonDirectory(conn, scope_unit)
                            if locked:  # a first load: its persons are as many again
                                persons.locked = deferred.enter_context(deferred_indexes(conn, "person", expected))
                    values, present = _good_values(part, item, spec)
                    if not len(values["code"]):
                        continue
                    if persons is not None:
                        _link_persons(persons, values, present)
                    t.add(upsert(conn, kind, values, present, item.existing, locked=bool(locked)), values)
                if t.problems and not skip_bad:
                    raise _Refused
            meta["sha256"] = digest.result()
            meta["source_crs"] = t.source_crs
            _finish(session, batch_id, meta, spec, scope_unit, t)
    except _Refused:
        _refuse(db, actor, meta, digest, t)
    if progress:
        progress(t.total, t.total)
    problems = sorted(t.problems, key=lambda p: (p.row, p.field))
    if reject_path is not None and problems:
        write_reject_file(reject_path, problems, t.raw)
    return ImportResult(
        batch_id=batch_id,
        kind=kind,
        total=t.total,
        created=t.outcome.created,
        updated=t.outcome.updated,
        unchanged=t.outcome.unchanged,
        rejected=len({p.row for p in problems}),
        problems=problems,
        reject_path=reject_path if problems and reject_path is not None else None,
        source_crs=t.source_crs,
    )


def _finish(session: Session, batch_id: int, meta: dict[str, Any], spec: Any, scope_unit: str, t: _Totals) -> None:
    """The summary, the rejections, the batch's counts and the audit entries, in the import's transaction."""
    conn = session.connection()
    if spec.name == "sites":
        _update_summary(conn, t)
    problems = sorted(t.problems, key=lambda p: (p.row, p.field))
    _store_rejections(session, batch_id, problems, t.raw)
    bad_rows = {p.row for p in problems}
    n_good = t.total - len(bad_rows)
    status = "committed" if not problems else ("partial" if n_good else "rejected")
    counts = {
        "rows_total": t.total,
        "rows_created": t.outcome.created,
        "rows_updated": t.outcome.updated,
        "rows_unchanged": t.outcome.unchanged,
        "rows_rejected": len(bad_rows),
    }
    session.execute(
        update(ImportBatch)
        .where(ImportBatch.id == batch_id)
        .values(status=status, sha256=meta["sha256"], source_crs=meta["source_crs"], **counts)
    )
    record(
        session,
        "import",
        spec.table,
        str(batch_id),
        scope_unit,
        {"batch_id": batch_id, "filename": meta["filename"], **counts},
    )
    _audit_changes(session, spec.table, t.outcome, batch_id)


def _refuse(db: Database, actor: Any, meta: dict[str, Any], digest: _HashInThread, t: _Totals) -> NoReturn:
    """Row problems without ``skip_bad``: nothing was kept; the batch and its problems are recorded."""
    meta["sha256"] = digest.result()
    meta["source_crs"] = t.source_crs
    problems = sorted(t.problems, key=lambda p: (p.row, p.field))
    bad_rows = {p.row for p in problems}
    batch_id = _record_rejected(db, actor, meta, problems, t.raw, t.total)
    refused = FileRejected(
        problems=problems, summary=f"file rejected: {len(problems)} problem(s) in {len(bad_rows)} row(s)"
    )
    refused.message_zh = f"文件未导入：{len(bad_rows)} 行共 {len(problems)} 个问题"
    refused.extra["batch_id"] = batch_id
    raise refused


def _good_values(part: Part, item: Validated, spec: Any) -> tuple[dict[str, Any], set[str]]:
    good = ~part.bad
    values = {k: np.asarray(v)[good] for k, v in part.values.items()}
    present = set(item.present)
    place = {"township", "village", "unit_code"}
    if not (present & place) and not item.scope_has_polygons:
        present.discard("unit_code")
        present.discard("township_code")
    else:
        present |= {"unit_code", "township_code"}
    present |= {f + "_id" for f in store.REFS.get(spec.name, {}) if f in present}
    return values, present


def _link_persons(persons: store.PersonDirectory, values: dict[str, Any], present: set[str]) -> None:
    """Responsible persons and monitors into ``person``, their ids onto the sites."""
    units = values["unit_code"].tolist()
    for name_key, phone_key, id_key, role in (
        ("responsible_name", "responsible_phone", "responsible_person_id", "responsible"),
        ("monitor_name", "monitor_phone", "monitor_id", "monitor"),
    ):
        if name_key not in values:
            continue
        names = values[name_key].tolist()
        phones = values[phone_key].tolist() if phone_key in values else [None] * len(names)
        out = np.empty(len(names), dtype=object)
        if all(names):  # every site names one
            out[:] = persons.resolve(units, names, phones, role)
        else:
            idx = [i for i, nm in enumerate(names) if nm]
            ids = persons.resolve([units[i] for i in idx], [names[i] for i in idx], [phones[i] for i in idx], role)
            col: list[int | None] = [None] * len(names)
            for i, pid in zip(idx, ids, strict=True):
                col[i] = pid
            out[:] = col
        values[id_key] = out
        present.add(id_key)


def _update_summary(conn: Any, t: _Totals) -> None:
    """Townships with updated sites (old and new) are recomputed; inserted sites elsewhere are added."""
    existing = t.existing
    if t.cells is None:  # which rows were inserted is not known: recompute every township touched
        refresh_townships(conn, [*(r["unit_code"] for r in existing.values()), *t.towns])
        return
    changed = {code for code, _, _ in t.outcome.changes}
    again = {existing[c]["unit_code"] for c in changed} | {t.moved_to[c] for c in changed if c in t.moved_to}
    recomputed = {u[:TOWNSHIP_DIGITS] for u in again}
    # A cell's first key is its township: the recomputation counts the new sites of those.
    added = {k: v for k, v in t.cells.items() if k[0] not in recomputed}
    # Both steps lock the counties they touch: lock all of them first, in one mode, so that neither
    # upgrades a lock this transaction holds (two imports deadlocked on that upgrade).
    lock_counties(conn, [*again, *(k[0] for k in added)])
    refresh_townships(conn, again)
    add_cells(conn, added)


def _new_batch(session: Session, meta: dict[str, Any], total: int) -> int:
    res = session.execute(
        insert(ImportBatch).values(at=utcnow(), status="running", rows_total=total, **meta).returning(ImportBatch.id)
    )
    return int(res.scalar_one())


def _store_rejections(
    session: Session, batch_id: int, problems: list[RowProblem], raw: dict[int, dict[str, Any]]
) -> None:
    if not problems:
        return
    rows = [
        {
            "batch_id": batch_id,
            "row": p.row,
            "field": p.field[:100],
            "reason": p.reason if p.value is None else f"{p.reason}：{p.value}",
            "raw": raw.get(p.row, {}),
        }
        for p in problems
    ]
    session.execute(insert(ImportRejection), rows)


def _record_rejected(
    db: Database,
    actor: Any,
    meta: dict[str, Any],
    problems: list[RowProblem],
    raw: dict[int, dict[str, Any]],
    total: int,
) -> int:
    """A refused file still leaves a batch and its problems behind, for the operator to see."""
    bad_rows = {p.row for p in problems if p.row > 0}
    with db.write(actor) as session:
        batch_id = _new_batch(session, meta, total)
        summary = "; ".join(f"{p.reason}{'：' + p.value if p.value else ''}" for p in problems[:3] if p.row == 0)
        session.execute(
            update(ImportBatch)
            .where(ImportBatch.id == batch_id)
            .values(status="rejected", rows_rejected=len(bad_rows), summary=summary or None)
        )
        _store_rejections(session, batch_id, problems, raw)
        record(
            session,
            "import",
            meta["kind"],
            str(batch_id),
            meta["unit_code"],
            {"batch_id": batch_id, "status": "rejected", "problems": len(problems)},
        )
    return batch_id


def _mask(col: str, v: Any) -> Any:
    if col in SENSITIVE_FIELDS and v is not None:
        return SENSITIVE_FIELDS[col](str(v))
    return v


def _audit_changes(session: Session, table: str, outcome: Outcome, batch_id: int) -> None:
    """One audit entry per updated record with the fields that changed (old, new), written in bulk."""
    if not outcome.changes:
        return
    actor, actor_id = actor_of(session)
    now = utcnow()
    rows = [
        {
            "at": now,
            "actor": actor,
            "actor_id": actor_id,
            "action": "update",
            "entity": table,
            "entity_id": str(rid),
            "unit_code": None,
            "changes": {
                "import_batch": batch_id,
                "code": code,
                **{c: [_mask(c, old), _mask(c, new)] for c, (old, new) in diff.items()},
            },
        }
        for code, rid, diff in outcome.changes
    ]
    session.connection().execute(insert(AuditEntry), rows)


def write_reject_file(path: Path, problems: list[RowProblem], raw: dict[int, dict[str, Any]]) -> None:
    """The rejected rows as CSV (UTF-8 with BOM for Excel): 行号, 字段, 原因, then the row as it was."""
    headers: list[str] = list(dict.fromkeys(h for r in raw.values() for h in r))
    with Path(path).open("w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["行号", "字段", "原因", *headers])
        for p in problems:
            r = raw.get(p.row, {})
            reason = p.reason if p.value is None else f"{p.reason}：{p.value}"
            cells = ["" if r.get(h) is None else neutralise_formula(str(r.get(h))) for h in headers]
            w.writerow([p.row, neutralise_formula(p.field), neutralise_formula(reason), *cells])
