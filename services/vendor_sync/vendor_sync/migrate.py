"""Run vendor_sync's migrations: `python -m vendor_sync.migrate`."""

from pathlib import Path

from mspkit.migrations import upgrade_head
from vendor_sync.db import SCHEMA
from vendor_sync.settings import get_settings


def main() -> None:
    """Upgrade the vendor_sync schema to head."""
    upgrade_head(Path(__file__).parent / "migrations", get_settings().database_url, SCHEMA)


if __name__ == "__main__":
    main()
