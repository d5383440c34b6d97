"""Allow `python -m mspctl ...` (used by the generated supervisor programs)."""

from mspctl.cli import app

app()
