"""Packaging: docker-compose.yml runs each part production needs with mspctl's own command, no dev-only
part is in it, both compose files validate against the Compose Specification's JSON schema (vendored in
deploy/schema/), every Dockerfile passes hadolint, and the production images' mspctl carries only the
launcher and the Vault bootstrap. No image is built here (no Docker daemon)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from mspctl import parts
from mspctl.layout import repo_root

ROOT = repo_root()
PROD = ROOT / "docker-compose.yml"
DEV = ROOT / "docker-compose.dev.yml"
SCHEMA = ROOT / "deploy" / "schema" / "compose-spec.json"
DOCKERFILES = sorted((ROOT / "deploy" / "docker").glob("*.Dockerfile"))
BIN = Path(sys.executable).parent
# Parts that are never deployed: the dev issuer (anyone signs in as anyone), the mail sink, vendor_sim.
DEV_ONLY = ("mail", "issuer", "vendor_sim")
# Production runs these as images of their own (PostgreSQL, Redis, OpenBao), not with mspctl's binaries.
INFRA_IMAGES = {"postgres": "postgres:", "redis": "redis:", "openbao": "openbao/openbao:"}
# The ports docker-compose.yml gives the HTTP parts (mspctl's fixed ports) and the dev parts.
PORTS = {"portal": 8000, "intake": 8001, "secrets_broker": 8002, "vendor_sync": 8003, "vendor_sim": 8004,
         "issuer": 8010, "mail_smtp": 1025, "mail_http": 8025}
# Module-level names of the mspctl modules the production images keep (deploy/docker/*.Dockerfile).
LAUNCHER_MODULES = {"mspctl", "mspctl.__main__", "mspctl.cli", "mspctl.bao", "mspctl.parts", "mspctl.launcher",
                    "mspctl.layout", "mspctl.envfile", "mspctl.files"}


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def mspctl_commands(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """Each part's command as `mspctl up` would start it, with the fixed ports."""
    from mspctl.stack import Stack

    stack = Stack(tmp_path_factory.mktemp("parity"), ports="fixed", externals={})
    stack.layout.create()
    ports = {name: PORTS.get(name, 20000 + i) for i, name in enumerate(parts.PORT_NAMES)}
    sec = stack._secrets()
    env = stack._env_values(ports, sec, True)
    return {p.name: p.command for p in stack._programs(ports, env, sec) if p.name in parts.ALL_PARTS}


def _replace_after(command: list[str], flag: str, value: str, only: str | None = None) -> list[str]:
    """The command with the argument after `flag` set to `value` (only where it equals `only`, if given)."""
    out = list(command)
    for i in range(1, len(out)):
        if out[i - 1] == flag and (only is None or out[i] == only):
            out[i] = value
    return out


def _normalised(command: list[str], devstack: str | None = None) -> list[str]:
    """mspctl's command as a container runs it: `python`, listening on all interfaces, beat's schedule anywhere."""
    out = ["python" if arg == sys.executable else arg for arg in command]
    out = _replace_after(out, "--host", "0.0.0.0", only="127.0.0.1")
    out = _replace_after(out, "--schedule", "<schedule>")
    if devstack is not None:
        out = _replace_after(out, "--devstack", "<devstack>")
    return out


def test_every_part_production_needs_is_a_compose_service_with_mspctls_command(mspctl_commands):
    services = _load(PROD)["services"]
    production_parts = [p for p in parts.ALL_PARTS if p not in DEV_ONLY]
    for part in production_parts:
        assert part in services, f"{part} is missing from docker-compose.yml"
        if part in INFRA_IMAGES:
            assert services[part]["image"].startswith(INFRA_IMAGES[part])
            continue
        assert _normalised(services[part]["command"]) == _normalised(mspctl_commands[part]), part


def test_no_dev_only_part_is_in_production():
    prod = _load(PROD)
    assert not set(DEV_ONLY) & set(prod["services"])
    text = "\n".join(line for line in PROD.read_text().splitlines() if not line.lstrip().startswith("#"))
    for needle in ("mspctl.issuer", "mspctl.mailsink", "vendor_sim", "devtools", "MSP_ENV: dev", "MSP_ENV=dev"):
        assert needle not in text, needle
    for image in DOCKERFILES:
        if image.name != "devtools.Dockerfile":
            body = image.read_text()
            assert "vendor_sim" not in body and "MSP_ENV=production" in body, image.name


def test_the_dev_file_adds_exactly_the_dev_parts_with_mspctls_commands(mspctl_commands):
    dev = _load(DEV)["services"]
    prod = _load(PROD)["services"]
    assert set(dev) - set(prod) == set(DEV_ONLY)
    for part in DEV_ONLY:
        expected = _normalised(mspctl_commands[part], devstack="x")
        got = _normalised(dev[part]["command"], devstack="x")
        if part in ("issuer", "mail"):  # in a container of its own it must listen beyond loopback
            assert got[-2:] == ["--host", "0.0.0.0"]
            got = got[:-2]
        if part == "mail":
            expected, got = _replace_after(expected, "--dir", "<dir>"), _replace_after(got, "--dir", "<dir>")
        assert got == expected, part
    for name, service in dev.items():
        assert service["environment"]["MSP_ENV"] == "dev", name


def test_long_running_services_have_healthchecks_limits_and_restart_policies():
    compose = _load(PROD)
    for name, service in compose["services"].items():
        one_shot = service.get("restart") == "no"
        assert "resources" in service.get("deploy", {}), name
        if one_shot:
            continue
        assert service.get("restart") == "unless-stopped", name
        assert service.get("healthcheck", {}).get("test"), name
        for dep, condition in (service.get("depends_on") or {}).items():
            done = compose["services"][dep].get("restart") == "no"
            wanted = "service_completed_successfully" if done else "service_healthy"
            assert condition["condition"] == wanted, (name, dep)
    assert set(compose["volumes"]) >= {"pgdata", "redisdata", "baodata", "baoaudit"}
    for secret in compose["secrets"].values():
        assert set(secret) == {"file"}  # secrets come from files, never from this file


def test_openbao_production_config_has_raft_tls_and_the_file_audit_device():
    text = (ROOT / "deploy" / "openbao" / "openbao.hcl").read_text()
    assert 'storage "raft"' in text and 'audit "file" "file"' in text
    assert "tls_cert_file" in text and "tls_disable" not in text


@pytest.mark.parametrize("path", [PROD, DEV], ids=lambda p: p.name)
def test_compose_files_validate_against_the_compose_specification(path: Path):
    assert json.loads(SCHEMA.read_text())["title"] == "Compose Specification"
    result = subprocess.run(
        [str(BIN / "check-jsonschema"), "--schemafile", str(SCHEMA), str(path)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_broken_compose_file_is_caught(tmp_path: Path):
    bad = tmp_path / "compose.yml"
    bad.write_text("services:\n  api:\n    image: x\n    restart: sometimes-maybe\n    healthcheck: {interval: 5}\n")
    result = subprocess.run(
        [str(BIN / "check-jsonschema"), "--schemafile", str(SCHEMA), str(bad)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfiles_pass_hadolint(dockerfile: Path):
    body = dockerfile.read_text()
    assert body.count("FROM ") >= 2 and "AS build" in body  # multi-stage
    assert "USER 10001:10001" in body and "HEALTHCHECK" in body
    result = subprocess.run(
        [str(BIN / "hadolint"), "--failure-threshold", "info", str(dockerfile)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_launcher_and_bootstrap_need_no_dev_module():
    """The production images keep only these mspctl modules: `run-with-secret-id` must import nothing else."""
    code = (
        "import sys, mspctl.cli\n"
        "print('\\n'.join(sorted(m for m in sys.modules if m == 'mspctl' or m.startswith('mspctl.'))))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSP_")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) <= LAUNCHER_MODULES
    for dockerfile in ("secrets_broker.Dockerfile", "bootstrap.Dockerfile"):
        body = (ROOT / "deploy" / "docker" / dockerfile).read_text()
        kept = {f"mspctl.{name[:-3]}" for name in body.split() if name.endswith(".py")}
        assert kept | {"mspctl", "mspctl.__init__"} >= LAUNCHER_MODULES - {"mspctl"}, dockerfile
