"""The secrets_broker service."""
