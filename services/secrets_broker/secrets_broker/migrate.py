"""Run secrets_broker's migrations: `python -m secrets_broker.migrate`."""

from pathlib import Path

from mspkit.migrations import upgrade_head
from secrets_broker.db import SCHEMA
from secrets_broker.settings import get_settings


def main() -> None:
    """Upgrade the secrets_broker schema to head."""
    upgrade_head(Path(__file__).parent / "migrations", get_settings().database_url, SCHEMA)


if __name__ == "__main__":
    main()
