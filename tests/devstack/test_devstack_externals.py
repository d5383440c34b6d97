"""MSP_DATABASE_URL / MSP_REDIS_URL / MSP_VAULT_ADDR: use those servers and start nothing for them."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from mspctl.layout import Layout
from mspctl.stack import Stack, StackError

pytestmark = pytest.mark.timeout(120)


def test_external_servers_are_used_not_started(infra):
    root = Path(tempfile.mkdtemp(prefix="mspctl-ext-"))
    outer = infra.env
    externals = {
        "MSP_DATABASE_URL": outer["MSP_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://"),
        "MSP_REDIS_URL": outer["MSP_REDIS_URL"],
        "MSP_VAULT_ADDR": outer["MSP_VAULT_ADDR"],
        "MSP_VAULT_BOOTSTRAP_TOKEN": Layout(infra.dir).root_token.read_text().strip(),
    }
    # Roles are cluster-wide and provisioning sets their passwords: share the session stack's ones.
    shutil.copy2(Layout(infra.dir).secrets_file, Layout(root).secrets_file)
    stack = Stack(root, ports="auto", externals=externals)
    try:
        stack.up(only=["postgres", "redis", "openbao", "issuer"])
        env = stack.env
        assert env["MSP_DATABASE_URL"] == outer["MSP_DATABASE_URL"]
        assert env["MSP_REDIS_URL"] == outer["MSP_REDIS_URL"]
        assert env["MSP_VAULT_ADDR"] == outer["MSP_VAULT_ADDR"]
        assert env["INTAKE_DATABASE_URL"].startswith("postgresql+psycopg://intake:")
        states = {s.name: s.state for s in stack.status()}
        assert states["postgres"] == states["redis"] == states["openbao"] == "EXTERNAL"
        assert states["issuer"] == "RUNNING"
        layout = Layout(root)
        assert layout.launcher_token.exists() and not layout.root_token.exists()
        assert not layout.pg_data.exists()
    finally:
        stack.down()
        shutil.rmtree(root, ignore_errors=True)


def test_external_vault_needs_a_bootstrap_token(infra):
    root = Path(tempfile.mkdtemp(prefix="mspctl-ext-"))
    stack = Stack(root, ports="auto", externals={"MSP_VAULT_ADDR": infra.env["MSP_VAULT_ADDR"]})
    try:
        with pytest.raises(StackError, match="MSP_VAULT_BOOTSTRAP_TOKEN") as err:
            stack.up(only=["openbao"])
        assert err.value.part == "openbao"
    finally:
        stack.down()
        shutil.rmtree(root, ignore_errors=True)
