"""The tamper-evident audit log: the pure hash chain (`chain`) and its storage."""
