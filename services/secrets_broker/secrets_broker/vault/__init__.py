"""Vault/OpenBao: its errors, the AppRole session, the gateway and the wrapping-token client."""
