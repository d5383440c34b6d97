"""Alembic environment for intake (version table in schema `intake`)."""

from mspkit.alembic_env import run

run()
