"""Per-part control on the infra stack: kill brings a part back; OpenBao is bootstrapped again."""

from __future__ import annotations

import time

import pytest

from mspctl.bao import is_bootstrapped, mint_wrapped_secret_id
from mspctl.layout import Layout

pytestmark = pytest.mark.timeout(120)


def _wait_new_pid(stack, part: str, old: int, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entry = next(s for s in stack.status() if s.name == part)
        if entry.state == "RUNNING" and entry.pid and entry.pid != old:
            return entry.pid
        time.sleep(0.2)
    raise AssertionError(f"{part} did not come back")


def test_killed_openbao_comes_back_bootstrapped(mspctl, infra):
    old_launcher = Layout(infra.dir).launcher_token.read_text()
    old = infra.stack.pid("openbao")
    result = mspctl(infra.dir, "kill", "openbao")
    assert result.returncode == 0, result.stderr
    _wait_new_pid(infra.stack, "openbao", old)
    addr = infra.env["MSP_VAULT_ADDR"]
    deadline = time.monotonic() + 30
    while not is_bootstrapped(addr, Layout(infra.dir)):
        assert time.monotonic() < deadline, "openbao was not bootstrapped again after its restart"
        time.sleep(0.2)
    assert Layout(infra.dir).launcher_token.read_text() != old_launcher
    role_id, wrapped = mint_wrapped_secret_id(infra.dir, "msp-broker-api")
    assert role_id and wrapped


def test_stop_and_start_one_part(mspctl, infra):
    assert mspctl(infra.dir, "stop", "redis").returncode == 0
    assert next(s for s in infra.stack.status() if s.name == "redis").state == "STOPPED"
    result = mspctl(infra.dir, "start", "redis")
    assert result.returncode == 0, result.stderr
    assert next(s for s in infra.stack.status() if s.name == "redis").state == "RUNNING"
