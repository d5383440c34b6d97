"""Vendors, client vendor accounts and their contacts."""
