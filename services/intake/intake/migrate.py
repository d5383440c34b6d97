"""Run intake's migrations: `python -m intake.migrate`."""

from pathlib import Path

from intake.db import SCHEMA
from intake.settings import get_settings
from mspkit.migrations import upgrade_head


def main() -> None:
    """Upgrade the intake schema to head."""
    upgrade_head(Path(__file__).parent / "migrations", get_settings().database_url, SCHEMA)


if __name__ == "__main__":
    main()
