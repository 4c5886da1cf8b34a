"""sensor QC state: what QC needs from each sensor's stored series, so ingestion reads no history

Revision ID: 5b8e3f0c2d17
Revises: af8affa6819e
Create Date: 2026-11-22 14:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5b8e3f0c2d17"
down_revision: str | None = "af8affa6819e"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Starts empty: the first batch of each sensor after the upgrade builds its state from the stored history.
    op.create_table(
        "sensor_qc_state",
        sa.Column("sensor_id", sa.Integer(), nullable=False),
        sa.Column("config_key", sa.BigInteger(), nullable=True),
        sa.Column("max_t", sa.BigInteger(), nullable=True),
        sa.Column("last_t", sa.BigInteger(), nullable=True),
        sa.Column("t1", sa.BigInteger(), nullable=True),
        sa.Column("v1", sa.Float(), nullable=True),
        sa.Column("q1", sa.Integer(), nullable=True),
        sa.Column("f1", sa.SmallInteger(), nullable=True),
        sa.Column("t0", sa.BigInteger(), nullable=True),
        sa.Column("v0", sa.Float(), nullable=True),
        sa.Column("near_t", sa.BigInteger(), nullable=True),
        sa.Column("near_lo", sa.Float(), nullable=True),
        sa.Column("near_hi", sa.Float(), nullable=True),
        sa.Column("exact_t", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["sensor_id"], ["sensor.id"], name=op.f("fk_sensor_qc_state_sensor_id_sensor"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("sensor_id", name=op.f("pk_sensor_qc_state")),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("sensor_qc_state")
