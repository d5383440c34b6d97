"""Alembic environment for secrets_broker (version table in schema `secrets_broker`)."""

from mspkit.alembic_env import run

run()
