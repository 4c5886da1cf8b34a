"""one open event per device and kind: a unique partial index on device_event

Revision ID: d5e9a1b3c7f4
Revises: c3f5a7e9b2d4
Create Date: 2026-12-04 23:40:00.000000

Several processes check devices for silence (every MQTT worker, every ``geowarn serve``). Two checks
at the same moment could both open an offline event for one device; the next check then found two
open events and failed. Duplicates already stored are ended at their own start (kept, not deleted),
then the index makes a second open event impossible.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d5e9a1b3c7f4"
down_revision: str | Sequence[str] | None = "c3f5a7e9b2d4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = "ended_ms IS NULL"


def upgrade() -> None:
    op.execute(
        "UPDATE device_event SET ended_ms = started_ms WHERE ended_ms IS NULL AND id NOT IN "
        "(SELECT min(id) FROM device_event WHERE ended_ms IS NULL GROUP BY device_id, kind)"
    )
    op.create_index(
        "uq_device_event_open",
        "device_event",
        ["device_id", "kind"],
        unique=True,
        sqlite_where=sa.text(OPEN),
        postgresql_where=sa.text(OPEN),
    )


def downgrade() -> None:
    op.drop_index("uq_device_event_open", table_name="device_event")
