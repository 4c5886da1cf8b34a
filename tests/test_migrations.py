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
