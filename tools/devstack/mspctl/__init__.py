"""mspctl: the MSP dev stack (embedded PostgreSQL, Redis, OpenBao, mail sink, token issuer, supervisor)."""
