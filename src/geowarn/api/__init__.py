"""The HTTP API (FastAPI): a thin adapter over the register, scoped to the caller's unit."""

from geowarn.api.app import create_app

__all__ = ["create_app"]
