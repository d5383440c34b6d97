"""`mspctl vault-bootstrap --addr … --token-file …` against a fresh OpenBao of its own (raft, static seal,
not `-dev`): the same bootstrap as `mspctl up`, idempotent, and `--check` fails without an audit device."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mspctl import bao
from mspctl.layout import Layout
from mspctl.ports import free_port

pytestmark = pytest.mark.timeout(180)


def _server(root: Path, *, audit: bool) -> Iterator[tuple[str, Layout]]:
    layout = Layout(root)
    root.mkdir(mode=0o700, exist_ok=True)
    port, cluster = free_port(), free_port()
    bao.ensure_seal_key(layout)
    bao.write_config(layout, port, cluster)
    if not audit:  # the same config without its declared audit device
        text = layout.bao_hcl.read_text()
        layout.bao_hcl.write_text(re.sub(r'audit "file" "file" \{.*\n\}\n', "", text, flags=re.S))
        assert "audit \"file\"" not in layout.bao_hcl.read_text()
    log = open(root / "bao.log", "wb")  # closed below
    proc = subprocess.Popen(bao.server_command(layout), stdout=log, stderr=subprocess.STDOUT)
    addr = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not bao.is_serving(addr):  # answers "not initialised" once it listens
            assert proc.poll() is None and time.monotonic() < deadline, (root / "bao.log").read_text()
            time.sleep(0.2)
        bao.initialize(addr, layout, timeout=60)
        yield addr, layout
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


@pytest.fixture
def fresh_bao(tmp_path: Path) -> Iterator[tuple[str, Layout]]:
    yield from _server(tmp_path / "bao-audit", audit=True)


@pytest.fixture
def bao_without_audit(tmp_path: Path) -> Iterator[tuple[str, Layout]]:
    yield from _server(tmp_path / "bao-no-audit", audit=False)


def _mspctl(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MSP_", "VAULT_", "BAO_"))}
    return subprocess.run(
        [sys.executable, "-m", "mspctl", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_bootstrap_twice_is_idempotent_and_check_passes(fresh_bao: tuple[str, Layout], tmp_path: Path) -> None:
    addr, layout = fresh_bao
    state = tmp_path / "launcher"
    args = ("vault-bootstrap", "--addr", addr, "--token-file", str(layout.root_token), "--state-dir", str(state))

    before = _mspctl("vault-bootstrap", "--addr", addr, "--token-file", str(layout.root_token), "--check")
    assert before.returncode == 1
    assert "mount msp-kv/ is missing" in before.stdout and "policy msp-broker-api is missing" in before.stdout

    first = _mspctl(*args)
    assert first.returncode == 0, first.stderr
    assert "changed mount msp-kv/" in first.stdout and "changed approle msp-broker-api" in first.stdout
    launcher = Layout(state).launcher_token
    assert launcher.stat().st_mode & 0o777 == 0o600
    token = launcher.read_text()
    assert (state / "env").read_text().endswith(f"MSP_VAULT_ADDR={addr}\n")

    second = _mspctl(*args)
    assert second.returncode == 0, second.stderr
    assert second.stdout == ""  # nothing changed
    assert "nothing to change" in second.stderr
    assert launcher.read_text() == token  # the same launcher token is kept

    check = _mspctl("vault-bootstrap", "--addr", addr, "--token-file", str(layout.root_token), "--check")
    assert check.returncode == 0, check.stdout + check.stderr
    # The launcher mints a wrapped secret id from the state dir, as the broker's containers do.
    role_id, wrapped = bao.mint_wrapped_secret_id(state, bao.API_ROLE)
    assert role_id and wrapped
    root = layout.root_token.read_text().strip()
    assert root not in first.stdout + first.stderr + second.stdout + second.stderr


def test_check_and_bootstrap_refuse_a_server_without_audit_device(bao_without_audit: tuple[str, Layout]) -> None:
    addr, layout = bao_without_audit
    check = _mspctl("vault-bootstrap", "--addr", addr, "--token-file", str(layout.root_token), "--check")
    assert check.returncode == 1
    assert "missing no audit device is enabled" not in check.stdout
    assert "no audit device is enabled" in check.stdout
    state = layout.root / "launcher"
    run = _mspctl("vault-bootstrap", "--addr", addr, "--token-file", str(layout.root_token), "--state-dir", str(state))
    assert run.returncode == 1
    assert "no audit device is enabled" in run.stderr


def test_an_unreadable_token_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    result = _mspctl("vault-bootstrap", "--addr", "https://127.0.0.1:1", "--token-file", str(missing), "--check")
    assert result.returncode == 1
    assert "--token-file" in result.stderr
