"""Field photos: checked to be real images, re-encoded without EXIF, stored under generated names.

Phones put the place and time a photo was taken in its EXIF block (GPS IFD, tag 0x8825; CIPA DC-008
Exif 2.32). geowarn reads them to compare with the site, then stores the pixels only: the stored file
carries no EXIF (so no location or phone identity leaks when a photo is shared) and its name is a
random one chosen here, never the client's file name or path.
"""

from __future__ import annotations

import hashlib
import io
import os
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

from geowarn.errors import PhotoRejected, PhotoTooLarge

#: Formats accepted and how each is stored (Pillow format name → (media type, extension)).
FORMATS = {"JPEG": ("image/jpeg", ".jpg"), "PNG": ("image/png", ".png"), "WEBP": ("image/webp", ".webp")}
_GPS_IFD, _EXIF_IFD, _DATETIME_ORIGINAL = 0x8825, 0x8769, 0x9003


@dataclass(frozen=True, slots=True)
class CheckedPhoto:
    """A photo that passed the checks, re-encoded (``content``) without metadata."""

    content: bytes
    sha256: str  # of the bytes the client sent
    media_type: str
    extension: str
    width: int
    height: int
    taken_at: str | None
    lon: float | None
    lat: float | None


def _degrees(value: Any, ref: Any) -> float | None:
    """EXIF GPS degrees/minutes/seconds rationals and an N/S/E/W reference → signed decimal degrees."""
    try:
        d, m, s = (float(v) for v in value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    deg = d + m / 60 + s / 3600
    if isinstance(ref, bytes):
        ref = ref.decode("ascii", "replace")
    return -deg if str(ref).strip().upper() in ("S", "W") else deg


def _exif_position(img: Image.Image) -> tuple[float | None, float | None, str | None]:
    exif = img.getexif()
    gps = exif.get_ifd(_GPS_IFD)
    lat = _degrees(gps.get(2), gps.get(1)) if 2 in gps else None
    lon = _degrees(gps.get(4), gps.get(3)) if 4 in gps else None
    if (lat is not None and not -90 <= lat <= 90) or (lon is not None and not -180 <= lon <= 180):
        lat = lon = None
    taken = exif.get_ifd(_EXIF_IFD).get(_DATETIME_ORIGINAL)
    taken_at = str(taken)[:32] if taken else None
    return lon, lat, taken_at


def check_photo(data: bytes, *, max_bytes: int, max_pixels: int) -> CheckedPhoto:
    """Check ``data`` is a JPEG/PNG/WebP image within the limits; read its EXIF; re-encode it without EXIF."""
    if len(data) > max_bytes:
        raise PhotoTooLarge(
            f"photo of {len(data)} bytes exceeds {max_bytes}",
            message_zh=f"照片超过大小上限（{max_bytes // (1024 * 1024)} MB）",
        )
    if not data:
        raise PhotoRejected("empty photo", message_zh="照片为空")
    not_image = PhotoRejected(
        "not an image (JPEG, PNG or WebP expected)", message_zh="文件不是照片（应为 JPEG、PNG 或 WebP）"
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                fmt = probe.format or ""
                if fmt not in FORMATS:
                    raise not_image
                if probe.width * probe.height > max_pixels:
                    raise PhotoTooLarge(
                        f"photo of {probe.width}x{probe.height} pixels exceeds {max_pixels}",
                        message_zh="照片像素过多",
                    )
                probe.verify()
            with Image.open(io.BytesIO(data)) as img:
                img.load()
                lon, lat, taken_at = _exif_position(img)
                upright = ImageOps.exif_transpose(img)
    except (PhotoRejected, PhotoTooLarge):
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError, Warning):
        raise not_image from None
    media_type, extension = FORMATS[fmt]
    out = io.BytesIO()
    if fmt == "JPEG":
        upright.convert("RGB").save(out, format="JPEG", quality=88)
    else:
        upright.save(out, format=fmt)
    return CheckedPhoto(
        content=out.getvalue(),
        sha256=hashlib.sha256(data).hexdigest(),
        media_type=media_type,
        extension=extension,
        width=upright.width,
        height=upright.height,
        taken_at=taken_at,
        lon=lon,
        lat=lat,
    )


def store_photo(data_dir: Path, photo: CheckedPhoto, when: str) -> str:
    """Write the re-encoded photo under ``data_dir/photos/<when>/<random>.<ext>``; the relative path.

    ``when`` is ``YYYY/MM``; the name is a random UUID, so nothing the client sent reaches the path.
    """
    rel = Path("photos") / when / f"{uuid.uuid4().hex}{photo.extension}"
    target = data_dir / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".part")
    tmp.write_bytes(photo.content)
    os.replace(tmp, target)
    return rel.as_posix()


def photo_file(data_dir: Path, rel: str) -> Path:
    """The stored file of a relative path recorded by ``store_photo`` (refusing anything outside)."""
    root = (data_dir / "photos").resolve()
    path = (data_dir / rel).resolve()
    if not path.is_relative_to(root):
        raise PhotoRejected(f"stored photo path {rel!r} escapes the photo directory")
    return path
