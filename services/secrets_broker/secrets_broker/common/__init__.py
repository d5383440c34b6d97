"""Shared schema types of the broker."""
