"""Validated chunks of a file, produced beside the writer: the importer's reading half.

:func:`validated` reads a file chunk by chunk (:mod:`geowarn.io.readers`) and validates each
chunk (:mod:`geowarn.io.validate`), yielding one :class:`Validated` per chunk. The importer writes
a chunk while the next is read and validated: on a large file (:data:`FORK_MIN_BYTES`) in a
process of a single thread, the reading half runs in a forked child process and sends its chunks
through a pipe, so the two halves use both cores. A 300,000-site GeoJSON file spends about 4 s
reading and validating and 5 s writing; run one after the other they took 11 s.

Forking is only safe in a process with one thread (a thread holding a lock at the fork would
leave it held in the child forever), so a server, which runs imports in worker threads, reads in
the same thread instead; so does any platform without ``fork``. The child makes its own database
connection for its lookups and never touches the parent's; it ends with ``os._exit`` (as
``multiprocessing`` ends forked children), so no inherited connection is closed by it.
"""

from __future__ import annotations

import functools
import gc
import io
import itertools
import logging
import multiprocessing as mp
import pickle
import queue
import threading
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geowarn.db import Database
from geowarn.errors import FileRejected
from geowarn.io import parsers as P
from geowarn.io import store
from geowarn.io.readers import PiecesDisagree, RawChunk, keep_parsed, read_chunks, whole_file
from geowarn.io.schema import KindSpec, header_map
from geowarn.io.validate import Lookup, Part, Validator

__all__ = ["FORK_MIN_BYTES", "Source", "Validated", "validated"]

log = logging.getLogger(__name__)

#: Files at least this big are read and validated in a forked child (when the process may fork).
FORK_MIN_BYTES = 16 << 20


@dataclass
class Validated:
    """One validated chunk and what the writer needs with it."""

    part: Part
    #: Stored records of the chunk's codes (for comparison and the audit log).
    existing: dict[str, dict[str, Any]]
    #: Fields the file sets (the header mapping's targets).
    present: set[str]
    #: Whether the scope has units with boundaries (a place can then be found from coordinates).
    scope_has_polygons: bool
    #: CRS of the coordinates, once known.
    source_crs: str | None
    #: Data rows in the whole file, if the format tells before the end.
    total: int | None
    #: The reader is done with the database (it looked every code up at once): the writer may lock tables.
    reads_done: bool = False
    #: With ``reads_done``: how many of the file's codes are stored already.
    known: int | None = None
    #: Without ``total``, for a file parsed in pieces: about how many rows it has.
    estimated_total: int | None = None


@dataclass(frozen=True)
class Source:
    """What to read: the file, its format and kind, and what the user said about it."""

    path: Path
    fmt: str
    spec: KindSpec
    scope_unit: str
    source_crs: str | None = None
    mapping: dict[str, str] | None = None
    #: Parse a large GeoJSON file a piece at a time (when the database allows: see ``_read_and_validate``).
    stream: bool = True


def validated(db: Database, src: Source) -> Generator[Validated, None, None]:
    """The file's validated chunks, from a forked child when that is possible and worth it.

    Close the generator when done with it (``close()``): that stops and reaps a forked reader.
    """
    path = src.path
    if path.is_file() and path.stat().st_size >= FORK_MIN_BYTES:
        if _may_fork():
            log.info("import of %s: reading in a forked process beside the writer", path.name)
            return _forked(db.url, src)
        log.info("import of %s: reading in the writing thread (other threads are running)", path.name)
    return _read_and_validate(db, src)


def _may_fork() -> bool:
    return "fork" in mp.get_all_start_methods() and threading.active_count() == 1


def _read_and_validate(db: Database, src: Source) -> Generator[Validated, None, None]:
    spec, quoted = src.spec, src.fmt in ("csv", "xlsx")
    # On PostgreSQL a large load locks its table, so every code must be looked up before the first
    # chunk: a file parsed in pieces would gain nothing there.
    stream = src.stream and not db.is_postgres
    with db.read() as session:
        conn = session.connection()
        scope = store.load_scope(conn, src.scope_unit)
        first, chunks, hmap = _opened(src, stream=stream)
        if first.estimated_total is not None and not {f.name for f in spec.fields if f.required} <= set(hmap.values()):
            # In pieces, a required column may only be missing from the first piece: read the file whole.
            chunks.close()
            first, chunks, hmap = _opened(src, stream=False)
        lookup: Lookup = functools.partial(store.lookup_existing, conn, spec.name)
        references = store.REFS.get(spec.name, {})
        refs: dict[str, Lookup] = {fld: functools.partial(store.lookup_ids, conn, t) for fld, t in references.items()}
        whole = first.total is not None
        known: int | None = None
        if whole:
            # The file is in memory already: look all its codes (and references) up now and end the
            # read, so that this connection holds no lock the writer's exclusive ones would wait for.
            found = _lookup_all(lookup, first, hmap, "code", quoted=quoted)
            known = len(found)
            lookup = functools.partial(_subset, found)
            refs = {
                fld: functools.partial(_subset, _lookup_all(ref, first, hmap, fld, quoted=quoted))
                for fld, ref in refs.items()
            }
            session.rollback()
        validator = Validator(
            spec,
            hmap,
            scope,
            declared_crs=src.source_crs,
            quoted_formulas=quoted,
            lookup=lookup,
            refs=refs,
        )
        for chunk in itertools.chain([first], chunks):
            if chunk.headers != first.headers and _maps_more(spec, chunk.headers, first.headers, src.mapping):
                raise PiecesDisagree("a field first named after the first piece")
            part = validator.chunk(chunk)
            yield Validated(
                part,
                validator.found,
                set(validator.present),
                bool(validator.scope.poly_codes),
                validator.source.name if validator.source else src.source_crs,
                chunk.total,
                whole,
                known,
                chunk.estimated_total,
            )


def _opened(src: Source, *, stream: bool) -> tuple[RawChunk, Generator[RawChunk, None, None], dict[str, str]]:
    """The file's first chunk, the chunks after it and the header map."""
    chunks = read_chunks(src.path, src.fmt, stream=stream)
    first = next(chunks, None)
    if first is None:
        raise whole_file("文件为空")
    try:
        return first, chunks, header_map(src.spec, first.headers, src.mapping)
    except ValueError as exc:
        raise whole_file("字段映射无效", str(exc)) from exc


def _maps_more(spec: KindSpec, headers: list[str], first: list[str], mapping: dict[str, str] | None) -> bool:
    """Whether a header the first chunk lacked names a field (in pieces, later features may bring
    property names: a field's name would have changed how the earlier chunks were read)."""
    known = set(first)
    return bool(header_map(spec, [h for h in headers if h not in known], mapping))


def _lookup_all(lookup: Lookup, first: RawChunk, hmap: dict[str, str], field: str, *, quoted: bool) -> dict[str, Any]:
    """Stored records of every code the file gives in ``field``, as the validator will read them."""
    header = next((h for h, f in hmap.items() if f == field), None)
    if header is None or header not in first.columns:
        return {}
    cells = list(first.columns[header])
    if first.peek_rest is not None:
        cells += first.peek_rest(header)
    text = P.as_text(P.obj(cells))
    if quoted:
        text = P.unquote_formula(text)
    return lookup([c for c in text.tolist() if c is not None])


def _subset(found: dict[str, dict[str, Any]], codes: list[str]) -> dict[str, dict[str, Any]]:
    return {c: found[c] for c in codes if c in found}


def _forked(url: str, src: Source) -> Generator[Validated, None, None]:
    ctx = mp.get_context("fork")
    receiver, sender = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_child, args=(sender, url, src), daemon=True, name="geowarn-import-reader")
    child.start()
    sender.close()
    try:
        while True:
            try:
                kind, payload = receiver.recv()
            except EOFError:
                child.join()
                raise RuntimeError(f"the import's reading process ended (exit code {child.exitcode})") from None
            if kind == "chunk":
                yield payload
            elif kind == "rejected":
                problems, summary, message_zh = payload
                refused = FileRejected(problems=problems, summary=summary)
                refused.message_zh = message_zh
                raise refused
            elif kind == "error":
                raise payload
            else:
                return
    finally:
        receiver.close()
        if child.is_alive():
            child.kill()
        child.join()


def _flat_pickle(payload: Any) -> bytes:
    """``payload`` pickled without the memo: a chunk is a tree of 750,000 distinct cells, and
    remembering each cell (to share repeats) took 60 % of the pickling. ``recv`` unpickles it."""
    buf = io.BytesIO()
    pickler = pickle.Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.fast = True  # no memo: a shared object is written twice, a cycle would never end (a chunk has none)
    pickler.dump(payload)
    return buf.getvalue()


def _child(sender: Any, url: str, src: Source) -> None:
    """In the forked child: read and validate with a database connection of its own.

    What it parses is kept, not freed as it goes (:func:`geowarn.io.readers.keep_parsed`), and
    "end" follows the last row of a file of known size at once: freeing the parsed file would only
    delay the writer, and the process ends with ``os._exit`` (as ``multiprocessing`` ends forked
    children), which frees nothing object by object.
    """
    gc.disable()  # nothing read holds a cycle; a collection would only walk what is kept
    keep_parsed()
    db = Database(url)
    out = _Outbox(sender)
    try:
        items = _read_and_validate(db, src)
        sent = 0
        for item in items:
            # Without the memo, stored records that a chunk holds twice would be written twice.
            out.put(_pickled(("chunk", item)) if item.existing else _flat_pickle(("chunk", item)))
            sent += len(item.part.rows)
            if item.total is not None and sent >= item.total:
                break  # every row is sent: say so before the reading is wound up
        out.put(_pickled(("end", None)))
        items.close()  # the read transaction ends; what was parsed stays kept
    except FileRejected as exc:
        out.put(_pickled(("rejected", (exc.problems, exc.summary, exc.message_zh))))
    except BaseException as exc:  # every failure goes to the parent, which raises it
        try:
            message = _pickled(("error", exc))
        except Exception:  # an exception that cannot be pickled
            message = _pickled(("error", RuntimeError(f"{type(exc).__name__}: {exc}")))
        out.put(message)
    finally:
        out.close()
        db.dispose()
        sender.close()


def _pickled(payload: Any) -> bytes:
    return pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)


class _Outbox:
    """The child's messages, sent by a thread of their own.

    A pipe holds 64 KB and a chunk is about 9 MB: sent from the reading thread, each chunk waited
    for the parent to finish writing the one before, and reading stood still meanwhile.
    """

    def __init__(self, conn: Any, depth: int = 2) -> None:
        self._conn = conn
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=depth)
        self._failed: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="geowarn-import-outbox", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (message := self._queue.get()) is not None:
            if self._failed is None:  # after a failure, drain the queue so that ``put`` never blocks
                try:
                    self._conn.send_bytes(message)
                except BaseException as exc:  # the parent has gone: nothing to tell it
                    self._failed = exc

    def put(self, message: bytes) -> None:
        if self._failed is not None:
            raise self._failed
        self._queue.put(message)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
