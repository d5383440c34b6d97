"""Credential metadata (the secret and notes live in Vault only)."""
