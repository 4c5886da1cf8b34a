"""The migrations build exactly the schema the models describe, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from geowarn.db import Base, Database
from geowarn.db.migrate import downgrade, include_object_for, upgrade


def test_models_and_migrations_agree(db: Database) -> None:
    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"compare_type": False, "include_object": include_object_for(db.backend)}
        )
        assert compare_metadata(ctx, Base.metadata) == []


def test_downgrade_and_upgrade_again(db: Database) -> None:
    upgrade(db.url)
    downgrade(db.url, "base")
    assert "hazard_site" not in inspect(db.writer_engine).get_table_names()
    upgrade(db.url)
    assert "hazard_site" in inspect(db.writer_engine).get_table_names()


def test_every_stamped_table_keeps_its_triggers(db: Database) -> None:
    """The register stamps (geowarn.inventory.stamp) are kept by triggers. On SQLite a later migration
    that rebuilds one of these tables (Alembic's batch mode copies the table) would drop them silently:
    this test fails then, and the migration must create them again."""
    from sqlalchemy import text

    from geowarn.inventory.stamp import STAMPS

    with db.engine.connect() as conn:
        if db.is_postgres:
            rows = conn.execute(
                text(
                    "SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
                    " WHERE NOT t.tgisinternal"
                )
            ).all()
        else:
            rows = conn.execute(text("SELECT tbl_name, name FROM sqlite_master WHERE type = 'trigger'")).all()
        names = {(str(t), str(n)) for t, n in rows}
        stamps = {str(n) for (n,) in conn.execute(text("SELECT name FROM register_stamp"))}
    assert stamps == set(STAMPS)
    for tables in STAMPS.values():
        for t in tables:
            wanted = (
                {f"{t}_register_stamp"}
                if db.is_postgres
                else {f"{t}_register_stamp_update", f"{t}_register_stamp_delete"}
            )
            assert wanted <= {n for tbl, n in names if tbl == t}, t
