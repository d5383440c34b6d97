"""Releasing credentials: the pure decision (`policy`), the service and its routes."""
