"""Provisioning: an approved request carried out at the vendors, step by step (DESIGN.md § Provisioning)."""
