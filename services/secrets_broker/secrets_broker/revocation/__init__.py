"""Revocation that follows intake: the broker worker's consumers, tombstones and the revoker."""
