"""fieldwork: patrols, photos, zero reports, hazard events, response periods, write-offs, phone checks

Revision ID: f1e1d7a2b301
Revises: 5b8e3f0c2d17
Create Date: 2026-12-04 14:00:06.168280
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision: str = "f1e1d7a2b301"
down_revision: str | None = "5b8e3f0c2d17"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "response_period",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("unit_code", sa.String(length=12), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("declared_by", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_response_period")),
    )
    with op.batch_alter_table("response_period", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_response_period_unit_code"), ["unit_code"], unique=False)

    op.create_table(
        "write_off_target",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("unit_code", sa.String(length=12), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("target", sa.Integer(), nullable=False),
        sa.Column("set_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_write_off_target")),
        sa.UniqueConstraint("unit_code", "year", name="uq_write_off_target_unit_year"),
    )
    op.create_table(
        "zero_report",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_uuid", sa.String(length=36), nullable=False),
        sa.Column("unit_code", sa.String(length=12), nullable=False),
        sa.Column("report_date", sa.Date(), nullable=False),
        sa.Column("slot", sa.SmallInteger(), nullable=False),
        sa.Column("nothing_new", sa.Boolean(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column(
            "event_ids", sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"), nullable=False
        ),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_by", sa.String(length=64), nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_zero_report")),
        sa.UniqueConstraint("client_uuid", name=op.f("uq_zero_report_client_uuid")),
        sa.UniqueConstraint("report_date", "unit_code", "slot", name="uq_zero_report_day_slot"),
    )
    with op.batch_alter_table("zero_report", schema=None) as batch_op:
        batch_op.create_index("ix_zero_report_unit_code", ["unit_code"], unique=False)

    op.create_table(
        "phone_check",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("unit_code", sa.String(length=12), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("method", sa.String(length=12), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("checked_by", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"], name=op.f("fk_phone_check_person_id_person")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_phone_check")),
    )
    with op.batch_alter_table("phone_check", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_phone_check_person_id"), ["person_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_phone_check_unit_code"), ["unit_code"], unique=False)

    op.create_table(
        "write_off",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("unit_code", sa.String(length=12), nullable=False),
        sa.Column("basis", sa.String(length=12), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("applied_by", sa.String(length=64), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_on", sa.Date(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["site_id"], ["hazard_site.id"], name=op.f("fk_write_off_site_id_hazard_site")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_write_off")),
    )
    with op.batch_alter_table("write_off", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_write_off_site_id"), ["site_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_write_off_unit_code"), ["unit_code"], unique=False)

    op.create_table(
        "patrol",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_uuid", sa.String(length=36), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("unit_code", sa.String(length=12), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("patrolled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reporter", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column(
            "checklist", sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"), nullable=False
        ),
        sa.Column("result", sa.String(length=12), nullable=False),
        sa.Column("remarks", sa.Text(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("gps_accuracy_m", sa.Float(), nullable=True),
        sa.Column("distance_m", sa.Float(), nullable=True),
        sa.Column("far_from_site", sa.Boolean(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=True),
        sa.Column("product_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["alert_id"], ["alert.id"], name=op.f("fk_patrol_alert_id_alert")),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"], name=op.f("fk_patrol_person_id_person")),
        sa.ForeignKeyConstraint(
            ["product_id"], ["regional_product.id"], name=op.f("fk_patrol_product_id_regional_product")
        ),
        sa.ForeignKeyConstraint(["site_id"], ["hazard_site.id"], name=op.f("fk_patrol_site_id_hazard_site")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patrol")),
        sa.UniqueConstraint("client_uuid", name=op.f("uq_patrol_client_uuid")),
    )
    with op.batch_alter_table("patrol", schema=None) as batch_op:
        batch_op.create_index("ix_patrol_person_at", ["person_id", "patrolled_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_patrol_person_id"), ["person_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_patrol_site_id"), ["site_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_patrol_unit_code"), ["unit_code"], unique=False)

    op.create_table(
        "hazard_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_uuid", sa.String(length=36), nullable=False),
        sa.Column("unit_code", sa.String(length=12), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("hazard_type", sa.String(length=24), nullable=False),
        sa.Column("place", sa.String(length=300), nullable=False),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=True),
        sa.Column("patrol_id", sa.Integer(), nullable=True),
        sa.Column("new_site_id", sa.Integer(), nullable=True),
        sa.Column("dead", sa.Integer(), nullable=False),
        sa.Column("missing", sa.Integer(), nullable=False),
        sa.Column("injured", sa.Integer(), nullable=False),
        sa.Column("threatened_people", sa.Integer(), nullable=False),
        sa.Column("transferred_people", sa.Integer(), nullable=False),
        sa.Column("loss_yuan", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("versions_count", sa.Integer(), nullable=False),
        sa.Column("reported_by", sa.String(length=64), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["new_site_id"], ["hazard_site.id"], name=op.f("fk_hazard_event_new_site_id_hazard_site")
        ),
        sa.ForeignKeyConstraint(["patrol_id"], ["patrol.id"], name=op.f("fk_hazard_event_patrol_id_patrol")),
        sa.ForeignKeyConstraint(["site_id"], ["hazard_site.id"], name=op.f("fk_hazard_event_site_id_hazard_site")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hazard_event")),
        sa.UniqueConstraint("client_uuid", name=op.f("uq_hazard_event_client_uuid")),
    )
    with op.batch_alter_table("hazard_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_hazard_event_occurred_at"), ["occurred_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_hazard_event_site_id"), ["site_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_hazard_event_unit_code"), ["unit_code"], unique=False)

    op.create_table(
        "field_photo",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("unit_code", sa.String(length=12), nullable=False),
        sa.Column("patrol_id", sa.Integer(), nullable=True),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.Column("path", sa.String(length=200), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("media_type", sa.String(length=32), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("taken_at", sa.String(length=32), nullable=True),
        sa.Column("exif_lon", sa.Float(), nullable=True),
        sa.Column("exif_lat", sa.Float(), nullable=True),
        sa.Column("exif_distance_m", sa.Float(), nullable=True),
        sa.Column("far_from_site", sa.Boolean(), nullable=False),
        sa.Column("uploaded_by", sa.String(length=64), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["hazard_event.id"], name=op.f("fk_field_photo_event_id_hazard_event")),
        sa.ForeignKeyConstraint(["patrol_id"], ["patrol.id"], name=op.f("fk_field_photo_patrol_id_patrol")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_field_photo")),
        sa.UniqueConstraint("path", name=op.f("uq_field_photo_path")),
    )
    with op.batch_alter_table("field_photo", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_field_photo_event_id"), ["event_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_field_photo_patrol_id"), ["patrol_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_field_photo_unit_code"), ["unit_code"], unique=False)

    op.create_table(
        "hazard_event_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("client_uuid", sa.String(length=36), nullable=False),
        sa.Column("data", sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"), nullable=False),
        sa.Column("reported_by", sa.String(length=64), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"], ["hazard_event.id"], name=op.f("fk_hazard_event_version_event_id_hazard_event")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hazard_event_version")),
        sa.UniqueConstraint("client_uuid", name=op.f("uq_hazard_event_version_client_uuid")),
        sa.UniqueConstraint("event_id", "number", name="uq_hazard_event_version_number"),
    )
    with op.batch_alter_table("hazard_event_version", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_hazard_event_version_event_id"), ["event_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("hazard_event_version", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_hazard_event_version_event_id"))

    op.drop_table("hazard_event_version")
    with op.batch_alter_table("field_photo", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_field_photo_unit_code"))
        batch_op.drop_index(batch_op.f("ix_field_photo_patrol_id"))
        batch_op.drop_index(batch_op.f("ix_field_photo_event_id"))

    op.drop_table("field_photo")
    with op.batch_alter_table("hazard_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_hazard_event_unit_code"))
        batch_op.drop_index(batch_op.f("ix_hazard_event_site_id"))
        batch_op.drop_index(batch_op.f("ix_hazard_event_occurred_at"))

    op.drop_table("hazard_event")
    with op.batch_alter_table("patrol", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_patrol_unit_code"))
        batch_op.drop_index(batch_op.f("ix_patrol_site_id"))
        batch_op.drop_index(batch_op.f("ix_patrol_person_id"))
        batch_op.drop_index("ix_patrol_person_at")

    op.drop_table("patrol")
    with op.batch_alter_table("write_off", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_write_off_unit_code"))
        batch_op.drop_index(batch_op.f("ix_write_off_site_id"))

    op.drop_table("write_off")
    with op.batch_alter_table("phone_check", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_phone_check_unit_code"))
        batch_op.drop_index(batch_op.f("ix_phone_check_person_id"))

    op.drop_table("phone_check")
    with op.batch_alter_table("zero_report", schema=None) as batch_op:
        batch_op.drop_index("ix_zero_report_unit_code")

    op.drop_table("zero_report")
    op.drop_table("write_off_target")
    with op.batch_alter_table("response_period", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_response_period_unit_code"))

    op.drop_table("response_period")
