"""Helpers of the field tests: photos with and without EXIF, patrol bodies."""

from __future__ import annotations

import io
import json
import uuid
from typing import Any

from PIL import Image


def jpeg(
    lon: float | None = None, lat: float | None = None, *, size: tuple[int, int] = (64, 48), **extra: Any
) -> bytes:
    """A small JPEG, with EXIF GPS at (lon, lat) when given and a camera model tag."""
    img = Image.new("RGB", size, (120, 80, 40))
    exif = Image.Exif()
    exif[0x0110] = "PhoneModelX"
    if lon is not None and lat is not None:

        def dms(v: float) -> tuple[float, float, float]:
            d = int(abs(v))
            m = int((abs(v) - d) * 60)
            return float(d), float(m), round((abs(v) - d - m / 60) * 3600, 4)

        exif[0x8825] = {1: "N" if lat >= 0 else "S", 2: dms(lat), 3: "E" if lon >= 0 else "W", 4: dms(lon)}
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif)
    return buf.getvalue()


def patrol_form(site_id: int, **fields: Any) -> dict[str, str]:
    body: dict[str, Any] = {
        "client_uuid": str(uuid.uuid4()),
        "site_id": site_id,
        "kind": "in_season",
        "patrolled_at": "2026-07-01T09:00:00+08:00",
        "checklist": {"new_cracks": False},
        "result": "normal",
        "lon": 119.05,
        "lat": 26.05,
    }
    body.update(fields)
    return {"data": json.dumps(body, ensure_ascii=False)}
