"""The HTTP API (FastAPI): a thin adapter over the register, scoped to the caller's unit.

``create_app`` is imported on first use: command-line work that needs only a helper of this
package (``geowarn.api.scoping`` for the zero-report reminders, say) does not pay for loading
every route (about 2.4 s of a ``geowarn dispatch --once``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from geowarn.api.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from geowarn.api.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
