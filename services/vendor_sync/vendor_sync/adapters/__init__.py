"""Vendor adapters: one thin client per vendor behind a Protocol."""
