"""register stamp: a database-kept value that changes with the register's households, residents and persons

Revision ID: c3f5a7e9b2d4
Revises: b7d2e4f6a813
Create Date: 2026-12-04 20:00:00.000000

See geowarn.inventory.stamp for why: dissemination keeps these tables in memory while the stamp holds.
The trigger bodies are written out here so that this revision does not change with the application.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c3f5a7e9b2d4"
down_revision: str | Sequence[str] | None = "b7d2e4f6a813"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STAMPS = {"directory": ("household", "resident", "person"), "sites": ("hazard_site",)}
TABLES = {t: name for name, tables in STAMPS.items() for t in tables}

# Once per transaction: the stamp only has to differ between committed states, and updating one row
# once per statement of a bulk write would grow its chain of row versions with every statement.
# The transaction-local setting is undone with the (sub)transaction that set it.
PG_FUNCTION = """
CREATE FUNCTION geowarn_register_stamp_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('geowarn.stamped_' || TG_ARGV[0], true) IS DISTINCT FROM 'on' THEN
        UPDATE register_stamp SET stamp = floor(random() * 9007199254740991)::bigint WHERE name = TG_ARGV[0];
        PERFORM set_config('geowarn.stamped_' || TG_ARGV[0], 'on', true);
    END IF;
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "register_stamp",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("stamp", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_register_stamp")),
    )
    if op.get_bind().dialect.name == "postgresql":
        insert = "INSERT INTO register_stamp (name, stamp) VALUES (:name, floor(random() * 9007199254740991)::bigint)"
        for name in STAMPS:
            op.execute(sa.text(insert).bindparams(name=name))
        op.execute(PG_FUNCTION)
        for t, name in TABLES.items():
            op.execute(
                f"CREATE TRIGGER {t}_register_stamp AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {t}"
                f" FOR EACH STATEMENT EXECUTE FUNCTION geowarn_register_stamp_bump('{name}')"
            )
    else:
        for name in STAMPS:
            op.execute(
                sa.text("INSERT INTO register_stamp (name, stamp) VALUES (:name, random())").bindparams(name=name)
            )
        for t, name in TABLES.items():
            for event in ("update", "delete"):
                op.execute(
                    f"CREATE TRIGGER {t}_register_stamp_{event} AFTER {event.upper()} ON {t} BEGIN"  # noqa: S608
                    f" UPDATE register_stamp SET stamp = random() WHERE name = '{name}'; END"
                )  # constant names


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for t in TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {t}_register_stamp ON {t}")
        op.execute("DROP FUNCTION IF EXISTS geowarn_register_stamp_bump()")
    else:
        for t in TABLES:
            for event in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {t}_register_stamp_{event}")
    op.drop_table("register_stamp")
