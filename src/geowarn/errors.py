"""The typed errors of geowarn.

Every error carries an English message for logs and, where a person will read it, a Chinese
message for the UI. The HTTP adapter maps each class to a status code and an RFC 9457
``application/problem+json`` body.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class GeowarnError(Exception):
    """Base class of every error geowarn raises on purpose."""

    status = 500
    title = "Internal error"

    def __init__(self, message: str, *, message_zh: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.message_zh = message_zh or message
        self.extra = extra


class ConfigError(GeowarnError):
    title = "Configuration error"


class NotFound(GeowarnError):
    status = 404
    title = "Not found"


class Conflict(GeowarnError):
    status = 409
    title = "Conflict"


class InvalidInput(GeowarnError):
    status = 422
    title = "Invalid input"


class AuthenticationFailed(GeowarnError):
    status = 401
    title = "Authentication failed"


class PermissionDenied(GeowarnError):
    status = 403
    title = "Permission denied"


class InvalidTransition(Conflict):
    title = "Invalid status transition"


@dataclass(frozen=True, slots=True)
class RowProblem:
    """One problem of one row of an imported file.

    ``row`` counts data rows from 1 in the order of the file (a header line is not a row);
    ``field`` names the column as the user's file spells it.
    """

    row: int
    field: str
    reason: str
    value: str | None = None


@dataclass
class FileRejected(InvalidInput):
    """A file that cannot be imported as it is; ``problems`` lists each bad row and field."""

    problems: list[RowProblem] = field(default_factory=list)
    summary: str = ""

    def __post_init__(self) -> None:
        InvalidInput.__init__(self, self.summary or f"file rejected: {len(self.problems)} problem(s)")


class GridRejected(InvalidInput):
    """A rainfall or susceptibility grid that cannot be used (file, band or variable, and why)."""

    title = "Grid rejected"


class PhotoRejected(InvalidInput):
    """An uploaded photo that is not a usable image (not an image, too large, too many pixels)."""

    title = "Photo rejected"


class PhotoTooLarge(PhotoRejected):
    status = 413
    title = "Photo too large"


class FontMissing(ConfigError):
    """No font with Chinese glyphs for printing the cards (两卡): install fonts-noto-cjk or set GEOWARN_CJK_FONT."""

    title = "Font missing"
