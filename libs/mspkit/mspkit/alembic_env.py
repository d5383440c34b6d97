"""The body of every service's Alembic env.py (online mode only)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import MetaData, create_engine, pool

from mspkit.migrations import ensure_schema


def run(target_metadata: MetaData | None = None) -> None:
    """Run migrations online with the version table in the service's schema."""
    config = context.config
    schema = str(config.attributes["schema"])
    engine = create_engine(str(config.get_main_option("sqlalchemy.url")), poolclass=pool.NullPool)
    with engine.connect() as connection:
        ensure_schema(connection, schema)
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            version_table_schema=schema,
            include_schemas=True,
        )
        with context.begin_transaction():
            context.run_migrations()
