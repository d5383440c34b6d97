"""The disclosure ledger: third-party credential releases and information disclosures, one shape, JSON and CSV."""
