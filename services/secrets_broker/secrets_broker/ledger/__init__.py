"""The disclosure ledger: one row per third-party release, served as JSON and CSV (`csv_export`)."""
