"""Alembic environment for portal (version table in schema `portal`)."""

from mspkit.alembic_env import run

run()
