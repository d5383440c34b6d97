"""Shared kit for the MSP services."""
