"""Client domains, their sync runs and drift events."""
