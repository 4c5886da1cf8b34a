"""hazard_site: no indexes on type, status and township code

Revision ID: e8a4c6b2f917
Revises: d5e9a1b3c7f4
Create Date: 2026-12-05 04:00:00.000000

Every query of sites is confined to the caller's unit by a range of ``unit_code``. SQLite, which
keeps no statistics unless ANALYZE is run, took an equality on ``hazard_type`` or ``status`` for the
more selective condition and walked the whole index: a county's landslides, out of 300,000 sites
in a national register, took 40 ms instead of 0.2 ms by ``ix_hazard_site_unit_code``. No query
filters on ``township_code`` (a township is a ``unit_code`` range). The three indexes only cost every
write: a fifth of the rows' index upkeep in a national import.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "e8a4c6b2f917"
down_revision: str | Sequence[str] | None = "d5e9a1b3c7f4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DROPPED = {
    "ix_hazard_site_hazard_type": "hazard_type",
    "ix_hazard_site_status": "status",
    "ix_hazard_site_township_code": "township_code",
}


def upgrade() -> None:
    for name in DROPPED:
        op.drop_index(name, table_name="hazard_site")


def downgrade() -> None:
    for name, column in DROPPED.items():
        op.create_index(name, "hazard_site", [column], unique=False)
