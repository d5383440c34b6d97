"""One-time unwrap (`POST /v1/unwrap`) and third-party reveal (`POST /v1/reveal`)."""
