"""merge the dissemination and fieldwork branches (built side by side on the sensor QC state)

Revision ID: 9a0c1e2d3f45
Revises: 3c4d5e6f7a81, d1550e3a7c01, f1e1d7a2b301
Create Date: 2026-12-04 14:10:00.000000
"""

from collections.abc import Sequence

revision: str = "9a0c1e2d3f45"
down_revision: str | Sequence[str] | None = ("3c4d5e6f7a81", "d1550e3a7c01", "f1e1d7a2b301")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Nothing to do: both branches' tables are independent."""


def downgrade() -> None:
    """Nothing to do."""
