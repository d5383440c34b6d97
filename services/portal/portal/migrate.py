"""Run portal's migrations: `python -m portal.migrate`."""

from pathlib import Path

from mspkit.migrations import upgrade_head
from portal.db import SCHEMA
from portal.settings import get_settings


def main() -> None:
    """Upgrade the portal schema to head."""
    upgrade_head(Path(__file__).parent / "migrations", get_settings().database_url, SCHEMA)


if __name__ == "__main__":
    main()
