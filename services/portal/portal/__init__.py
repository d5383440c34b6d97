"""The people's web interface: a backend-for-frontend over the intake, secrets_broker and vendor_sync APIs."""
