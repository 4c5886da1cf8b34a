"""Import of register files (隐患点台账, GIS layers) into the database: the public entry point.

``import_file`` reads a file chunk by chunk (:mod:`geowarn.io.readers`), validates every chunk
column-wise (:mod:`geowarn.io.validate`), and then either refuses the whole file — recording an
``ImportBatch(status="rejected")`` with one ``ImportRejection`` per problem so the operator can see
them — or writes all good rows in one transaction by bulk upsert (:mod:`geowarn.io.upsert`).
"""

from __future__ import annotations

import contextlib
import csv
import functools
import gc
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import insert, update
from sqlalchemy.orm import Session

from geowarn.audit.hook import actor_of, record
from geowarn.audit.models import AuditEntry
from geowarn.auth.masking import SENSITIVE_FIELDS
from geowarn.db import Database, utcnow
from geowarn.db.bulkload import deferred_indexes
from geowarn.errors import FileRejected, InvalidInput, RowProblem
from geowarn.inventory.summary import TOWNSHIP_DIGITS, add_sites, refresh_townships
from geowarn.io import store
from geowarn.io.models import ImportBatch, ImportRejection
from geowarn.io.parsers import neutralise_formula
from geowarn.io.readers import detect_format, read_chunks, whole_file
from geowarn.io.schema import header_map, kind_spec
from geowarn.io.upsert import Outcome, upsert
from geowarn.io.validate import Lookup, Part, Validator

__all__ = ["ImportResult", "import_file"]

_REFS = {"households": {"site_code": "hazard_site", "shelter_code": "shelter"}}


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
        "sha256": _sha256(path),
        "file_format": path.suffix.lower().lstrip(".")[:16] or "?",
        "source_crs": source_crs,
        "unit_code": scope_unit,
    }
    try:
        fmt = detect_format(path)
        meta["file_format"] = fmt
        validator, parts = _validate(db, path, fmt, spec, scope_unit, source_crs, mapping, progress)
        meta["source_crs"] = validator.source.name if validator.source else source_crs
    except FileRejected as exc:
        _record_rejected(db, actor, meta, exc.problems, {}, 0)
        raise

    problems = sorted((p for part in parts for p in part.problems), key=lambda p: (p.row, p.field))
    raw = {row: r for part in parts for row, r in part.raw.items()}
    total = sum(len(part.rows) for part in parts)
    bad_rows = {p.row for p in problems}
    if problems and not skip_bad:
        batch_id = _record_rejected(db, actor, meta, problems, raw, total)
        refused = FileRejected(
            problems=problems, summary=f"file rejected: {len(problems)} problem(s) in {len(bad_rows)} row(s)"
        )
        refused.message_zh = f"文件未导入：{len(bad_rows)} 行共 {len(problems)} 个问题"
        refused.extra["batch_id"] = batch_id
        raise refused

    values, present = _good_values(parts, validator)
    n_good = len(values.get("code", []))
    with db.write(actor) as session:
        conn = session.connection()
        batch_id = _new_batch(session, meta, total)
        table = store.PLANS[kind].table
        n_new = sum(1 for c in values["code"].tolist() if c not in validator.existing)
        # the table's lock first, then the persons' (the order site writers take them in)
        with deferred_indexes(conn, table, n_new) as locked:
            if spec.name == "sites":
                _link_persons(conn, values, present)
            outcome = upsert(conn, kind, values, present, validator.existing, locked=locked)
        if spec.name == "sites":  # the statistics summary follows, in this transaction
            _update_summary(conn, values, outcome, validator.existing)
        _store_rejections(session, batch_id, problems, raw)
        status = "committed" if not problems else ("partial" if n_good else "rejected")
        counts = {
            "rows_total": total,
            "rows_created": outcome.created,
            "rows_updated": outcome.updated,
            "rows_unchanged": outcome.unchanged,
            "rows_rejected": len(bad_rows),
        }
        session.execute(update(ImportBatch).where(ImportBatch.id == batch_id).values(status=status, **counts))
        record(
            session,
            "import",
            spec.table,
            str(batch_id),
            scope_unit,
            {"batch_id": batch_id, "filename": meta["filename"], **counts},
        )
        _audit_changes(session, spec.table, outcome, batch_id)
    if progress:
        progress(total, total)
    if reject_path is not None and problems:
        write_reject_file(reject_path, problems, raw)
    return ImportResult(
        batch_id=batch_id,
        kind=kind,
        total=total,
        created=outcome.created,
        updated=outcome.updated,
        unchanged=outcome.unchanged,
        rejected=len(bad_rows),
        problems=problems,
        reject_path=reject_path if problems and reject_path is not None else None,
        source_crs=meta["source_crs"],
    )


def _validate(
    db: Database,
    path: Path,
    fmt: str,
    spec: Any,
    scope_unit: str,
    source_crs: str | None,
    mapping: dict[str, str] | None,
    progress: Callable[[int, int], None] | None,
) -> tuple[Validator, list[Part]]:
    parts: list[Part] = []
    validator: Validator | None = None
    done = 0
    with db.read() as session:
        conn = session.connection()
        scope = store.load_scope(conn, scope_unit)
        refs: dict[str, Lookup] = {
            fld: functools.partial(store.lookup_ids, conn, table) for fld, table in _REFS.get(spec.name, {}).items()
        }
        for chunk in read_chunks(path, fmt):
            if validator is None:
                try:
                    hmap = header_map(spec, chunk.headers, mapping)
                except ValueError as exc:
                    raise whole_file("字段映射无效", str(exc)) from exc
                validator = Validator(
                    spec,
                    hmap,
                    scope,
                    declared_crs=source_crs,
                    quoted_formulas=fmt in ("csv", "xlsx"),
                    lookup=lambda codes: store.lookup_existing(conn, spec.name, codes),
                    refs=refs,
                )
            parts.append(validator.chunk(chunk))
            done += len(chunk)
            if progress:
                progress(done, 0)
    if validator is None:
        raise whole_file("文件为空")
    return validator, parts


def _lookup_ids(conn: Any, table: str, codes: list[str]) -> dict[str, dict[str, Any]]:
    return store.lookup_ids(conn, table, codes)


def _good_values(parts: list[Part], validator: Validator) -> tuple[dict[str, Any], set[str]]:
    keys = set(parts[0].values)
    values: dict[str, Any] = {}
    good = np.concatenate([~p.bad for p in parts])
    for k in keys:
        values[k] = np.concatenate([np.asarray(p.values[k]) for p in parts])[good]
    present = set(validator.present)
    place = {"township", "village", "unit_code"}
    if not (present & place) and not validator.scope.poly_codes:
        present.discard("unit_code")
        present.discard("township_code")
    else:
        present |= {"unit_code", "township_code"}
    present |= {f + "_id" for f in _REFS.get(validator.spec.name, {}) if f in present}
    return values, present


def _link_persons(conn: Any, values: dict[str, Any], present: set[str]) -> None:
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
        idx = [i for i, nm in enumerate(names) if nm]
        ids = store.upsert_persons(conn, [(units[i], names[i], phones[i]) for i in idx], role)
        col: list[int | None] = [None] * len(names)
        for i, pid in zip(idx, ids, strict=True):
            col[i] = pid
        out = np.empty(len(col), dtype=object)
        out[:] = col
        values[id_key] = out
        present.add(id_key)


def _update_summary(conn: Any, values: dict[str, Any], outcome: Outcome, existing: dict[str, dict[str, Any]]) -> None:
    """Townships with updated sites (old and new) are recomputed; inserted sites elsewhere are added."""
    units = values["unit_code"].tolist()
    if outcome.inserted_sites is None:  # which rows were inserted is not known: recompute all
        refresh_townships(conn, [*units, *(r["unit_code"] for r in existing.values())])
        return
    changed = {code for code, _, _ in outcome.changes}
    again = {existing[c]["unit_code"] for c in changed}
    again |= {u for u, c in zip(units, values["code"].tolist(), strict=True) if c in changed}
    refresh_townships(conn, again)
    recomputed = {u[:TOWNSHIP_DIGITS] for u in again}
    add_sites(conn, (s for s in outcome.inserted_sites if s[0][:TOWNSHIP_DIGITS] not in recomputed))


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
