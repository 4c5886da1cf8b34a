"""register summary

Revision ID: 7c2d9e41b5a3
Revises: e40ff7aef637
Create Date: 2026-11-22 10:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7c2d9e41b5a3"
down_revision: str | None = "e40ff7aef637"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The back-fill is the same GROUP BY that geowarn.inventory.summary.summary_select builds, written
# out so that this revision does not change when the application code does.
BACKFILL = """
INSERT INTO register_summary (scope_code, township_code, hazard_type, scale, status, monitoring_mode,
                              sites, households, people, property_yuan)
SELECT substr(unit_code, 1, 9), coalesce(township_code, substr(unit_code, 1, 9)),
       coalesce(hazard_type, ''), coalesce(scale, ''), coalesce(status, ''), coalesce(monitoring_mode, ''),
       count(*), coalesce(sum(threatened_households), 0), coalesce(sum(threatened_people), 0),
       coalesce(sum(threatened_property_yuan), 0)
FROM hazard_site
GROUP BY substr(unit_code, 1, 9), coalesce(township_code, substr(unit_code, 1, 9)),
         coalesce(hazard_type, ''), coalesce(scale, ''), coalesce(status, ''), coalesce(monitoring_mode, '')
"""


def upgrade() -> None:
    op.create_table(
        "register_summary",
        sa.Column("scope_code", sa.String(length=9), nullable=False),
        sa.Column("township_code", sa.String(length=9), nullable=False),
        sa.Column("hazard_type", sa.String(length=24), nullable=False),
        sa.Column("scale", sa.String(length=12), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("monitoring_mode", sa.String(length=16), nullable=False),
        sa.Column("sites", sa.Integer(), nullable=False),
        sa.Column("households", sa.BigInteger(), nullable=False),
        sa.Column("people", sa.BigInteger(), nullable=False),
        sa.Column("property_yuan", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "scope_code",
            "township_code",
            "hazard_type",
            "scale",
            "status",
            "monitoring_mode",
            name=op.f("pk_register_summary"),
        ),
        sqlite_with_rowid=False,
    )
    op.execute(BACKFILL)


def downgrade() -> None:
    op.drop_table("register_summary")
