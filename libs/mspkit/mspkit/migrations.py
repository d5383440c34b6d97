"""Alembic helpers: each service keeps its version table in its own schema."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, MetaData, text

from mspkit.tables import kit_tables


def alembic_config(migrations_dir: Path, url: str, schema: str) -> Config:
    """An Alembic config for one service's migrations directory."""
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["schema"] = schema
    return cfg


def upgrade_head(migrations_dir: Path, url: str, schema: str) -> None:
    """Run `upgrade head` for one service."""
    command.upgrade(alembic_config(migrations_dir, url, schema), "head")


def ensure_schema(connection: Connection, schema: str) -> None:
    """CREATE SCHEMA IF NOT EXISTS, before Alembic writes its version table there."""
    exists = connection.execute(
        text("SELECT 1 FROM pg_namespace WHERE nspname = :s"), {"s": schema}
    ).scalar_one_or_none()
    # Checked first: a service role that owns its schema may lack CREATE on the database.
    if exists is None:
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    connection.commit()


def create_kit_tables(connection: Connection, schema: str) -> None:
    """Create the outbox, inbox, attempts, dead-letter and relay-state tables in `schema`."""
    metadata = MetaData()
    kit_tables(metadata, schema)
    metadata.create_all(connection)


def outbox_channel(schema: str) -> str:
    """The NOTIFY channel an insert into `schema`'s outbox wakes its relay on."""
    return f"{schema}_outbox"


def create_outbox_notify(connection: Connection, schema: str) -> None:
    """A statement trigger on `schema`.outbox that NOTIFYs its relay (delivered at COMMIT, one per transaction)."""
    channel = outbox_channel(schema)
    connection.execute(
        text(
            f'CREATE OR REPLACE FUNCTION "{schema}".outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$ '
            f"BEGIN PERFORM pg_notify('{channel}', ''); RETURN NULL; END $$"
        )
    )
    connection.execute(
        text(
            f'CREATE TRIGGER outbox_notify AFTER INSERT ON "{schema}".outbox '
            f'FOR EACH STATEMENT EXECUTE FUNCTION "{schema}".outbox_notify()'
        )
    )


def drop_outbox_notify(connection: Connection, schema: str) -> None:
    """Undo `create_outbox_notify`."""
    connection.execute(text(f'DROP TRIGGER IF EXISTS outbox_notify ON "{schema}".outbox'))
    connection.execute(text(f'DROP FUNCTION IF EXISTS "{schema}".outbox_notify()'))
