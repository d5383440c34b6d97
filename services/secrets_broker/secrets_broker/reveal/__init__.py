"""One-time reveal page for third-party recipients."""
