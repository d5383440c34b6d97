# OpenBao, production: raft storage, a TLS listener, and the file audit device (OpenBao refuses audit
# devices created through the API, so it is declared here). Mounted read-only at /openbao/config.
# Unseal: Shamir keys by default (`bao operator init`, then `bao operator unseal` after each restart);
# swap in a `seal "awskms" | "gcpckms" | "azurekeyvault" | "transit"` stanza for auto-unseal.
# See docs/operations.md.

ui            = false
disable_mlock = true
api_addr      = "https://openbao:8200"
cluster_addr  = "https://openbao:8201"

storage "raft" {
  path    = "/openbao/data"
  node_id = "openbao-1"
  # A cluster adds one `retry_join { leader_api_addr = "https://openbao-2:8200" ... }` per peer
  # (docs/scaling.md).
}

listener "tcp" {
  address            = "0.0.0.0:8200"
  cluster_address    = "0.0.0.0:8201"
  tls_cert_file      = "/run/secrets/openbao_tls_cert"
  tls_key_file       = "/run/secrets/openbao_tls_key"
  tls_min_version    = "tls12"
  # Never reachable from technicians' machines: anyone holding a wrapping token could unwrap it.
}

audit "file" "file" {
  options {
    file_path = "/openbao/audit/audit.log"
    # HMAC every secret value in the log (the default), never `log_raw`.
  }
}
