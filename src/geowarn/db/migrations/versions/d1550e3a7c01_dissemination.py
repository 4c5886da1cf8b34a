"""dissemination: warning issues, recipients, the outbox, preferences, endpoints, templates, response tasks

Revision ID: d1550e3a7c01
Revises: 5b8e3f0c2d17
Create Date: 2026-12-04 14:00:55.907829
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision: str = "d1550e3a7c01"
down_revision: str | None = "5b8e3f0c2d17"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dissemination_endpoint",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("unit_code", sa.String(length=12), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column("secret", sa.String(length=200), nullable=True),
        sa.Column("min_level", sa.SmallInteger(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dissemination_endpoint")),
    )
    with op.batch_alter_table("dissemination_endpoint", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dissemination_endpoint_unit_code"), ["unit_code"], unique=False)

    op.create_table(
        "dissemination_preference",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_key", sa.String(length=40), nullable=False),
        sa.Column(
            "channels", sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"), nullable=False
        ),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("quiet_start", sa.String(length=5), nullable=True),
        sa.Column("quiet_end", sa.String(length=5), nullable=True),
        sa.Column("email", sa.String(length=200), nullable=True),
        sa.Column("unit_code", sa.String(length=12), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dissemination_preference")),
        sa.UniqueConstraint("person_key", name=op.f("uq_dissemination_preference_person_key")),
    )
    with op.batch_alter_table("dissemination_preference", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dissemination_preference_unit_code"), ["unit_code"], unique=False)

    op.create_table(
        "dissemination_template",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("unit_code", sa.String(length=12), nullable=False),
        sa.Column("key", sa.String(length=60), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dissemination_template")),
        sa.UniqueConstraint("unit_code", "key", name="uq_dissemination_template_unit_key"),
    )
    with op.batch_alter_table("dissemination_template", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dissemination_template_unit_code"), ["unit_code"], unique=False)

    op.create_table(
        "dissemination_issue",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("warning_type", sa.String(length=8), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("previous_level", sa.SmallInteger(), nullable=False),
        sa.Column("unit_code", sa.String(length=12), nullable=False),
        sa.Column("issued_ms", sa.BigInteger(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=True),
        sa.Column("product_version_id", sa.Integer(), nullable=True),
        sa.Column("cap_identifier", sa.String(length=64), nullable=False),
        sa.Column(
            "context", sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"), nullable=False
        ),
        sa.Column("recipients_count", sa.Integer(), nullable=False),
        sa.Column("messages_count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["alert.id"], name=op.f("fk_dissemination_issue_alert_id_alert")),
        sa.ForeignKeyConstraint(
            ["product_version_id"],
            ["product_version.id"],
            name=op.f("fk_dissemination_issue_product_version_id_product_version"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dissemination_issue")),
        sa.UniqueConstraint("cap_identifier", name=op.f("uq_dissemination_issue_cap_identifier")),
        sa.UniqueConstraint("subject", "version", name="uq_dissemination_issue_subject_version"),
    )
    with op.batch_alter_table("dissemination_issue", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dissemination_issue_alert_id"), ["alert_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_dissemination_issue_product_version_id"), ["product_version_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_dissemination_issue_subject"), ["subject"], unique=False)
        batch_op.create_index(batch_op.f("ix_dissemination_issue_unit_code"), ["unit_code"], unique=False)

    op.create_table(
        "dissemination_recipient",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issue_id", sa.Integer(), nullable=False),
        sa.Column("person_key", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("unit_code", sa.String(length=12), nullable=False),
        sa.Column("audience", sa.String(length=12), nullable=False),
        sa.Column(
            "reasons", sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"), nullable=False
        ),
        sa.Column("household_id", sa.Integer(), nullable=True),
        sa.Column("shelter_id", sa.Integer(), nullable=True),
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.Column("code", sa.String(length=8), nullable=False),
        sa.Column("acked_ms", sa.BigInteger(), nullable=True),
        sa.Column("ack_via", sa.String(length=8), nullable=True),
        sa.Column("escalation_of", sa.Integer(), nullable=True),
        sa.Column("escalated_ms", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["escalation_of"],
            ["dissemination_recipient.id"],
            name=op.f("fk_dissemination_recipient_escalation_of_dissemination_recipient"),
        ),
        sa.ForeignKeyConstraint(
            ["issue_id"],
            ["dissemination_issue.id"],
            name=op.f("fk_dissemination_recipient_issue_id_dissemination_issue"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dissemination_recipient")),
        sa.UniqueConstraint("issue_id", "person_key", name="uq_dissemination_recipient_person"),
        sa.UniqueConstraint("token", name=op.f("uq_dissemination_recipient_token")),
    )
    with op.batch_alter_table("dissemination_recipient", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dissemination_recipient_issue_id"), ["issue_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_dissemination_recipient_phone"), ["phone"], unique=False)
        batch_op.create_index(batch_op.f("ix_dissemination_recipient_unit_code"), ["unit_code"], unique=False)

    op.create_table(
        "response_task",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issue_id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("unit_code", sa.String(length=12), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("plan", sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"), nullable=False),
        sa.Column("households", sa.Integer(), nullable=False),
        sa.Column("people", sa.Integer(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("completed_ms", sa.BigInteger(), nullable=True),
        sa.Column("may_return_ms", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["issue_id"], ["dissemination_issue.id"], name=op.f("fk_response_task_issue_id_dissemination_issue")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_response_task")),
    )
    with op.batch_alter_table("response_task", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_response_task_issue_id"), ["issue_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_response_task_subject"), ["subject"], unique=False)
        batch_op.create_index(batch_op.f("ix_response_task_unit_code"), ["unit_code"], unique=False)

    op.create_table(
        "dissemination_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issue_id", sa.Integer(), nullable=False),
        sa.Column("recipient_id", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=500), nullable=False),
        sa.Column("idem_key", sa.String(length=80), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("segments", sa.SmallInteger(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_ms", sa.BigInteger(), nullable=False),
        sa.Column("lease_ms", sa.BigInteger(), nullable=True),
        sa.Column("gateway_ref", sa.String(length=80), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("sent_ms", sa.BigInteger(), nullable=True),
        sa.Column("delivered_ms", sa.BigInteger(), nullable=True),
        sa.Column("unit_code", sa.String(length=12), nullable=False),
        sa.ForeignKeyConstraint(
            ["issue_id"], ["dissemination_issue.id"], name=op.f("fk_dissemination_outbox_issue_id_dissemination_issue")
        ),
        sa.ForeignKeyConstraint(
            ["recipient_id"],
            ["dissemination_recipient.id"],
            name=op.f("fk_dissemination_outbox_recipient_id_dissemination_recipient"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dissemination_outbox")),
        sa.UniqueConstraint("idem_key", name=op.f("uq_dissemination_outbox_idem_key")),
    )
    with op.batch_alter_table("dissemination_outbox", schema=None) as batch_op:
        batch_op.create_index("ix_dissemination_outbox_due", ["status", "next_attempt_ms"], unique=False)
        batch_op.create_index(batch_op.f("ix_dissemination_outbox_gateway_ref"), ["gateway_ref"], unique=False)
        batch_op.create_index(batch_op.f("ix_dissemination_outbox_issue_id"), ["issue_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_dissemination_outbox_recipient_id"), ["recipient_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_dissemination_outbox_unit_code"), ["unit_code"], unique=False)

    op.create_table(
        "transfer_record",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("household_id", sa.Integer(), nullable=True),
        sa.Column("shelter_id", sa.Integer(), nullable=True),
        sa.Column("people", sa.Integer(), nullable=False),
        sa.Column("moved_ms", sa.BigInteger(), nullable=False),
        sa.Column("recorded_by", sa.String(length=64), nullable=True),
        sa.Column("returned_ms", sa.BigInteger(), nullable=True),
        sa.Column("unit_code", sa.String(length=12), nullable=False),
        sa.ForeignKeyConstraint(
            ["household_id"], ["household.id"], name=op.f("fk_transfer_record_household_id_household")
        ),
        sa.ForeignKeyConstraint(["shelter_id"], ["shelter.id"], name=op.f("fk_transfer_record_shelter_id_shelter")),
        sa.ForeignKeyConstraint(
            ["task_id"], ["response_task.id"], name=op.f("fk_transfer_record_task_id_response_task")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transfer_record")),
    )
    with op.batch_alter_table("transfer_record", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_transfer_record_household_id"), ["household_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_transfer_record_shelter_id"), ["shelter_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_transfer_record_task_id"), ["task_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_transfer_record_unit_code"), ["unit_code"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("transfer_record", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_transfer_record_unit_code"))
        batch_op.drop_index(batch_op.f("ix_transfer_record_task_id"))
        batch_op.drop_index(batch_op.f("ix_transfer_record_shelter_id"))
        batch_op.drop_index(batch_op.f("ix_transfer_record_household_id"))

    op.drop_table("transfer_record")
    with op.batch_alter_table("dissemination_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dissemination_outbox_unit_code"))
        batch_op.drop_index(batch_op.f("ix_dissemination_outbox_recipient_id"))
        batch_op.drop_index(batch_op.f("ix_dissemination_outbox_issue_id"))
        batch_op.drop_index(batch_op.f("ix_dissemination_outbox_gateway_ref"))
        batch_op.drop_index("ix_dissemination_outbox_due")

    op.drop_table("dissemination_outbox")
    with op.batch_alter_table("response_task", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_response_task_unit_code"))
        batch_op.drop_index(batch_op.f("ix_response_task_subject"))
        batch_op.drop_index(batch_op.f("ix_response_task_issue_id"))

    op.drop_table("response_task")
    with op.batch_alter_table("dissemination_recipient", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dissemination_recipient_unit_code"))
        batch_op.drop_index(batch_op.f("ix_dissemination_recipient_phone"))
        batch_op.drop_index(batch_op.f("ix_dissemination_recipient_issue_id"))

    op.drop_table("dissemination_recipient")
    with op.batch_alter_table("dissemination_issue", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dissemination_issue_unit_code"))
        batch_op.drop_index(batch_op.f("ix_dissemination_issue_subject"))
        batch_op.drop_index(batch_op.f("ix_dissemination_issue_product_version_id"))
        batch_op.drop_index(batch_op.f("ix_dissemination_issue_alert_id"))

    op.drop_table("dissemination_issue")
    with op.batch_alter_table("dissemination_template", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dissemination_template_unit_code"))

    op.drop_table("dissemination_template")
    with op.batch_alter_table("dissemination_preference", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dissemination_preference_unit_code"))

    op.drop_table("dissemination_preference")
    with op.batch_alter_table("dissemination_endpoint", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dissemination_endpoint_unit_code"))

    op.drop_table("dissemination_endpoint")
