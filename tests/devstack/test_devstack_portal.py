"""The portal as a part of the dev stack: its env and program (fast), then `mspctl up` with it (slow)."""

from __future__ import annotations

import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mspctl import parts
from mspctl.stack import Stack

sys.path.insert(0, str(Path(__file__).parents[1] / "portal"))


def _plan(tmp_path: Path, mode: str = "auto") -> tuple[Stack, dict[str, str], dict[str, object]]:
    stack = Stack(tmp_path / "ds", ports=mode, externals={})
    stack.layout.create()
    ports = {name: 20000 + i for i, name in enumerate(parts.PORT_NAMES)}
    sec = stack._secrets()
    env = stack._env_values(ports, sec, True)
    programs = {p.name: p for p in stack._programs(ports, env, sec)}
    return stack, env, programs


def test_the_portal_is_a_part_with_its_own_port_and_schema():
    assert "portal" in parts.ALL_PARTS and "portal" in parts.PORT_NAMES and "portal" in parts.SERVICES
    assert parts.expand(["portal"]) == ["postgres", "issuer", "portal"]
    assert parts.PORTAL_PORT == 8000


def test_the_portal_program_gets_only_what_it_needs(tmp_path):
    stack, env, programs = _plan(tmp_path)
    portal = programs["portal"]
    assert portal.command[-6:] == ["portal.main:app", "--host", "127.0.0.1", "--port", "20011", "--no-access-log"][-6:]
    got = portal.environment
    assert got["PORTAL_DATABASE_URL"] == env["PORTAL_DATABASE_URL"] and "@" in got["PORTAL_DATABASE_URL"]
    assert "//portal:" in got["PORTAL_DATABASE_URL"]  # its own role
    for key in ("MSP_JWT_ISSUER", "MSP_JWKS_URL", "MSP_TOKEN_URL", "MSP_PORTAL_URL", "MSP_INTAKE_URL",
                "MSP_SECRETS_BROKER_URL", "MSP_VENDOR_SYNC_URL", "PORTAL_CLIENT_SECRET", "PORTAL_SESSION_KEY"):
        assert got.get(key), key
    # Never the admin URL, and nothing the portal must not reach (Vault, Redis, mail), and no service identity.
    for key in ("MSP_DATABASE_URL", "MSP_VAULT_ADDR", "MSP_REDIS_URL", "MSP_SMTP_URL", "PORTAL_SERVICE_CLIENT_SECRET"):
        assert key not in got, key
    assert env["MSP_DATABASE_URL"] not in got.values()
    from mspctl import issuer

    assert got["PORTAL_CLIENT_SECRET"] == issuer.portal_client_secret(stack.layout)
    # Only the portal gets the session key.
    for name, program in programs.items():
        if name != "portal":
            assert got["PORTAL_SESSION_KEY"] not in program.environment.values(), name
    # The issuer registers the portal's callback at the portal's URL.
    assert programs["issuer"].environment["MSP_PORTAL_URL"] == env["MSP_PORTAL_URL"] == "http://127.0.0.1:20011"


def test_the_env_file_names_the_portal(tmp_path):
    from mspctl.envfile import ALL_KEYS, render

    _, env, _ = _plan(tmp_path)
    assert {"MSP_PORTAL_URL", "PORTAL_DATABASE_URL"} <= set(ALL_KEYS)
    text = render(env)
    assert "MSP_PORTAL_URL=http://127.0.0.1:20011" in text and "SESSION_KEY" not in text


def test_the_session_key_is_kept_across_ups(tmp_path):
    _, _, first = _plan(tmp_path)
    _, _, second = _plan(tmp_path)
    assert first["portal"].environment["PORTAL_SESSION_KEY"] == second["portal"].environment["PORTAL_SESSION_KEY"]


def test_port_8000_taken_fails_clearly(mspctl, tmp_path: Path):
    holder = None
    try:
        holder = socket.socket()
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", 8000))
        holder.listen()
    except OSError:
        holder = None  # already taken by something else (e.g. a `make up` stack): same expectation
    try:
        result = mspctl(tmp_path / "ds", "up", "--detach", "--only", "portal", "--ports", "fixed")
    finally:
        if holder:
            holder.close()
    assert result.returncode == 1
    assert "8000" in result.stderr and "portal" in result.stderr
    assert not (tmp_path / "ds" / "supervisord.pid").exists()


@pytest.fixture(scope="module")
def full(mspctl) -> Iterator[dict]:
    root = Path(tempfile.mkdtemp(prefix="mspctl-portal-"))
    result = mspctl(root, "up", "--detach", "--ports", "auto", timeout=300)
    try:
        yield {"root": root, "result": result}
    finally:
        mspctl(root, "down", timeout=120)
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_up_starts_the_portal_and_people_sign_in(mspctl, full):
    result = full["result"]
    assert result.returncode == 0, result.stderr[-3000:]
    urls = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert urls["portal"].startswith("http://127.0.0.1:")
    assert httpx.get(urls["portal"] + "/readyz").json()["checks"] == {"database": "ok"}
    assert "portal: open" in result.stderr
    status = {line.split()[0]: line.split()[1:] for line in mspctl(full["root"], "status").stdout.splitlines()}
    assert status["portal"][0] == "RUNNING" and status["portal"][1].isdigit()

    from portal_helpers import sign_in

    # The real processes: issuer, portal, intake; a demo client's admin signs in and lands at home.
    client = sign_in(urls["portal"], "acme-admin", return_to="/approvals")
    assert client.landed_on == "/approvals"
    assert 'href="/approvals"' in client.get("/").text
    # The session key reaches the portal's program only: never the env file or any log.
    conf = (full["root"] / "supervisord.conf").read_text()
    key = conf.split('PORTAL_SESSION_KEY="', 1)[1].split('"', 1)[0]
    assert key not in (full["root"] / "env").read_text()
    for log in (full["root"] / "logs").glob("*.log"):
        assert key not in log.read_text(errors="replace"), log.name
