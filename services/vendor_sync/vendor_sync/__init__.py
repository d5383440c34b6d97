"""The vendor_sync service."""
