"""File import and export of the register (``geowarn.io``), confined to the caller's unit.

An upload is streamed to a private temporary directory under a name the server chooses (only the
extension of the user's file name is kept, so the importer can tell the format); it never touches
a path the user wrote. Uploads above ``Settings.max_upload_mb`` are refused with 413.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse
from sqlalchemy import select

from geowarn.api.deps import DbDep, Reader, ReadSession, Writer, personal
from geowarn.api.problems import PayloadTooLarge
from geowarn.api.routes.auth import app_settings
from geowarn.api.schemas.admin import ImportBatchPublic, ImportRejectionPublic
from geowarn.api.schemas.common import Page
from geowarn.api.scoping import get_scoped, page, scope_filter
from geowarn.config import Settings
from geowarn.errors import InvalidInput
from geowarn.io.models import ImportBatch, ImportRejection

router = APIRouter(tags=["import and export"])

ImportKind = Literal["sites", "risk_zones", "households", "shelters", "units"]
ExportKind = Literal["sites", "risk_zones", "households", "shelters", "units"]
ExportFormat = Literal["csv", "xlsx", "geojson", "gpkg", "shp"]

_SUFFIX = re.compile(r"^(\.[a-z0-9]{1,8}){1,2}$")
_CHUNK = 1 << 20
_MEDIA = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "geojson": "application/geo+json",
    "gpkg": "application/geopackage+sqlite3",
    "shp": "application/zip",
}
_EXTENSION = {"csv": ".csv", "xlsx": ".xlsx", "geojson": ".geojson", "gpkg": ".gpkg", "shp": ".zip"}


def safe_filename(name: str | None) -> str:
    """The last path component of a client's file name, without control or path characters."""
    base = PureWindowsPath(PurePosixPath(name or "upload").name).name
    base = re.sub(r"[\x00-\x1f\x7f/\\:*?\"<>|]", "_", base).strip(" .")
    return base[:200] or "upload"


def safe_suffix(name: str) -> str:
    """``.csv``, ``.xlsx``, ``.shp.zip``…: the extension, lower case, if it is plain."""
    suffixes = "".join(Path(name).suffixes[-2:]).lower()
    return suffixes if _SUFFIX.match(suffixes) else ""


def _save_upload(upload: UploadFile, directory: Path, limit_mb: int) -> Path:
    target = directory / ("upload" + safe_suffix(safe_filename(upload.filename)))
    size, limit = 0, limit_mb * 1024 * 1024
    with target.open("wb") as out:
        while chunk := upload.file.read(_CHUNK):
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(
                    f"the file exceeds {limit_mb} MB", message_zh=f"文件超过大小上限（{limit_mb} MB）"
                )
            out.write(chunk)
    return target


def _jsonable(result: Any) -> Any:
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return dataclasses.asdict(result)
    if hasattr(result, "model_dump"):
        return result.model_dump(mode="json")
    if hasattr(result, "as_dict"):
        return result.as_dict()
    return result


def _declared_size_within_limit(request: Request, settings: Annotated[Settings, Depends(app_settings)]) -> Settings:
    """Refuse early when the declared body size already exceeds the limit (1 MB for the form around it)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > (settings.max_upload_mb + 1) * 1024 * 1024:
        raise PayloadTooLarge(
            f"the upload exceeds {settings.max_upload_mb} MB",
            message_zh=f"文件超过大小上限（{settings.max_upload_mb} MB）",
        )
    return settings


@router.post("/import/{kind}")
def import_upload(
    kind: ImportKind,
    db: DbDep,
    user: Writer,
    settings: Annotated[Settings, Depends(_declared_size_within_limit)],
    file: Annotated[UploadFile, File(description="CSV, XLSX, GeoJSON, GeoPackage or zipped Shapefile")],
    source_crs: Annotated[str | None, Form(max_length=32, description="e.g. EPSG:4526")] = None,
    skip_bad: Annotated[bool, Form()] = False,
    mapping: Annotated[str | None, Form(description="JSON object: column in the file → field")] = None,
) -> Any:
    """Import a file into the caller's unit; a rejected file gives 422 with each row's problems."""
    from geowarn.io.importer import import_file

    column_map: dict[str, str] | None = None
    if mapping:
        try:
            column_map = json.loads(mapping)
        except json.JSONDecodeError:
            column_map = None
        if not isinstance(column_map, dict) or not all(isinstance(v, str) for v in column_map.values()):
            raise InvalidInput("mapping must be a JSON object of strings", message_zh="字段映射应为 JSON 对象")
    workdir = Path(tempfile.mkdtemp(prefix="geowarn-upload-"))
    try:
        path = _save_upload(file, workdir, settings.max_upload_mb)
        result = import_file(
            db,
            path,
            kind=kind,
            actor=user,
            scope_unit=user.unit_code,
            source_crs=source_crs,
            mapping=column_map,
            skip_bad=skip_bad,
            filename=safe_filename(file.filename),
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return _jsonable(result)


@router.get("/import/batches", response_model=Page[ImportBatchPublic])
def import_batches(
    session: ReadSession,
    user: Reader,
    kind: ImportKind | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[ImportBatchPublic]:
    stmt = select(ImportBatch).where(scope_filter(ImportBatch, user)).order_by(ImportBatch.id.desc())
    if kind:
        stmt = stmt.where(ImportBatch.kind == kind)
    rows, total = page(session, stmt, limit, offset)
    return Page[ImportBatchPublic](
        items=[ImportBatchPublic.model_validate(b) for b in rows], total=total, limit=limit, offset=offset
    )


@router.get("/import/batches/{batch_id}/rejections", response_model=Page[ImportRejectionPublic])
def import_rejections(
    batch_id: int,
    session: ReadSession,
    user: Reader,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[ImportRejectionPublic]:
    batch = get_scoped(session, ImportBatch, batch_id, user)
    stmt = (
        select(ImportRejection)
        .where(ImportRejection.batch_id == batch.id)
        .order_by(ImportRejection.row, ImportRejection.id)
    )
    rows, total = page(session, stmt, limit, offset)
    return Page[ImportRejectionPublic](
        items=[ImportRejectionPublic.model_validate(r) for r in rows], total=total, limit=limit, offset=offset
    )


def _zip_shapefile(shp: Path) -> Path:
    target = shp.with_suffix(".zip")
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for part in sorted(shp.parent.glob(shp.stem + ".*")):
            if part != target:
                zf.write(part, arcname=part.name)
    return target


@router.get("/export/{kind}", response_class=FileResponse)
def export_download(
    kind: ExportKind,
    db: DbDep,
    user: Reader,
    background: BackgroundTasks,
    format: ExportFormat = "csv",
) -> FileResponse:
    """The caller's records of ``kind`` as a file; personal data masked unless the role may see it."""
    from geowarn.io.exporter import export_file

    workdir = Path(tempfile.mkdtemp(prefix="geowarn-export-"))
    background.add_task(shutil.rmtree, workdir, True)
    # A Shapefile is several files side by side (.shp .shx .dbf .prj .cpg): written, then zipped.
    path = workdir / (f"{kind}.shp" if format == "shp" else f"{kind}{_EXTENSION[format]}")
    try:
        written = export_file(db, path, kind=kind, scope_unit=user.unit_code, personal_data=personal(user), fmt=format)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    out = Path(written) if isinstance(written, str | Path) else path
    if format == "shp":
        out = _zip_shapefile(out)
    return FileResponse(out, media_type=_MEDIA[format], filename=f"{kind}-{user.unit_code}{_EXTENSION[format]}")
