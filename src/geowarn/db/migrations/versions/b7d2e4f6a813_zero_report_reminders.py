"""zero-report reminders: their record, and outbox rows that belong to no warning issue

Revision ID: b7d2e4f6a813
Revises: 9a0c1e2d3f45
Create Date: 2026-12-04 17:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b7d2e4f6a813"
down_revision: str | Sequence[str] | None = "9a0c1e2d3f45"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "zero_report_reminder",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("report_date", sa.Date(), nullable=False),
        sa.Column("slot", sa.SmallInteger(), nullable=False),
        sa.Column("unit_code", sa.String(length=12), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("idem_key", sa.String(length=80), nullable=False),
        sa.Column("overdue", sa.SmallInteger(), nullable=False),
        sa.Column("reminded_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"], name=op.f("fk_zero_report_reminder_person_id_person")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_zero_report_reminder")),
        sa.UniqueConstraint("idem_key", name=op.f("uq_zero_report_reminder_idem_key")),
    )
    with op.batch_alter_table("zero_report_reminder", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_zero_report_reminder_person_id"), ["person_id"], unique=False)
        batch_op.create_index("ix_zero_report_reminder_day_unit", ["report_date", "unit_code"], unique=False)
    # A reminder is a message of no warning issue.
    with op.batch_alter_table("dissemination_outbox", schema=None) as batch_op:
        batch_op.alter_column("issue_id", existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM dissemination_outbox WHERE issue_id IS NULL")
    with op.batch_alter_table("dissemination_outbox", schema=None) as batch_op:
        batch_op.alter_column("issue_id", existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table("zero_report_reminder", schema=None) as batch_op:
        batch_op.drop_index("ix_zero_report_reminder_day_unit")
        batch_op.drop_index(batch_op.f("ix_zero_report_reminder_person_id"))
    op.drop_table("zero_report_reminder")
