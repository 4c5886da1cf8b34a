"""Alembic environment: migrates whichever database the settings (or ``-x url=…``) name."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

import geowarn.models  # noqa: F401  (fills the metadata)
from geowarn.db import Base
from geowarn.db.engine import Database
from geowarn.db.migrate import include_object_for

config = context.config


def _url() -> str:
    x = context.get_x_argument(as_dictionary=True)
    if "url" in x:
        return x["url"]
    if config.get_main_option("sqlalchemy.url"):
        return config.get_main_option("sqlalchemy.url") or ""
    from geowarn.config import get_settings

    return get_settings().database_url


def run_migrations_online() -> None:
    db = Database(_url())
    with db.writer_engine.connect() as connection:
        if db.is_postgres:
            connection.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
            connection.commit()
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=not db.is_postgres,
            compare_type=True,
            user_module_prefix="geowarn.db.types.",
            include_object=include_object_for(db.backend),
        )
        with context.begin_transaction():
            context.run_migrations()
    db.dispose()


run_migrations_online()
