"""``POST /api/monitoring/devices/import``: bulk registration of devices from a CSV/XLSX ledger.

The same rules as the register import: the whole file is refused with each row's problems (422)
unless ``skip_bad``; every row must lie in the caller's unit; a deviceId already registered is
updated, never duplicated. Keys geowarn generates are in this response only.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, File, Form, UploadFile

from geowarn.api.deps import DbDep, Writer
from geowarn.api.routes.monitoring import forget
from geowarn.api.routes.monitoring_common import IngestorDep
from geowarn.api.routes.transfer import _declared_size_within_limit, _save_upload
from geowarn.api.schemas.monitoring import ApiKeyPublic, DeviceImportPublic
from geowarn.config import Settings
from geowarn.monitoring.files import import_devices

router = APIRouter(prefix="/monitoring", tags=["monitoring: register"])


@router.post("/devices/import", response_model=DeviceImportPublic)
def import_device_ledger(
    db: DbDep,
    user: Writer,
    ingestor: IngestorDep,
    background: BackgroundTasks,
    settings: Annotated[Settings, Depends(_declared_size_within_limit)],
    file: Annotated[UploadFile, File(description="CSV (UTF-8 or GBK) or XLSX with Chinese headers")],
    skip_bad: Annotated[bool, Form()] = False,
) -> DeviceImportPublic:
    workdir = Path(tempfile.mkdtemp(prefix="geowarn-upload-"))
    try:
        path = _save_upload(file, workdir, settings.max_upload_mb)
        result = import_devices(db, path, actor=user, scope_unit=user.unit_code, skip_bad=skip_bad)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    forget(ingestor, background, *result.device_codes)
    return DeviceImportPublic(
        total=result.total,
        created=result.created,
        updated=result.updated,
        rejected=result.rejected,
        stations_created=result.stations_created,
        problems=[{"row": p.row, "field": p.field, "reason": p.reason, "value": p.value} for p in result.problems],
        apikeys=[ApiKeyPublic(device_code=c, apikey=k) for c, k in result.apikeys.items()],
    )
