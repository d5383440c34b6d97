"""Alembic environment for vendor_sync (version table in schema `vendor_sync`)."""

from mspkit.alembic_env import run

run()
