"""docs/api.md stays true: its `sh` blocks run in order in one bash against a fresh `mspctl up` stack.

The walkthrough must end with the revealed password equal to the one it stored, and the second
token, left unused when the task closed, refused with 410 once the broker's worker revoked it.
The same stack checks what `up` prints for a first-time user and what `make status` prints.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mspctl import parts
from mspctl.tokens import mint

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "api.md"
SH_BLOCK = re.compile(r"^```sh\n(.*?)^```$", re.DOTALL | re.MULTILINE)
# What the test reads back from the doc's shell once every block has run.
KEPT = (
    "SECRET",
    "REVEALED",
    "CLIENT",
    "TASK",
    "CREDENTIAL",
    "RELEASE2_ID",
    "RELEASE2_STATUS",
    "RUN_STATUS",
    "TARA_TASKS",
)
MARK = "WALKTHROUGH-VARS "


def _clean_env(devstack: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MSP_", "VAULT_", "BAO_"))}
    env["MSP_DEVSTACK_DIR"] = str(devstack)
    return env


def _script() -> str:
    blocks = SH_BLOCK.findall(DOC.read_text())
    epilogue = (
        ".venv/bin/python -c 'import json, sys; a = sys.argv[1:]; "
        f'print("{MARK}" + json.dumps(dict(zip(a[::2], a[1::2]))))\' '
        + " ".join(f'{name} "${{{name}:-}}"' for name in KEPT)
    )
    # -e and pipefail: a call the doc shows succeeding must succeed (its curl uses --fail-with-body).
    return "set -euo pipefail\n" + "\n".join(blocks) + "\n" + epilogue + "\n"


@pytest.fixture(scope="module")
def stack(mspctl: Any) -> Iterator[dict[str, Any]]:
    root = Path(tempfile.mkdtemp(prefix="mspctl-docs-"))
    # The same command as `make up`, on free ports so it runs beside a developer's stack.
    result = mspctl(root, "up", "--detach", "--ports", "auto", timeout=240)
    try:
        assert result.returncode == 0, result.stderr[-3000:]
        yield {"root": root, "up": result, "urls": dict(line.split(" ", 1) for line in result.stdout.splitlines())}
    finally:
        mspctl(root, "down", timeout=120)
        shutil.rmtree(root, ignore_errors=True)


def test_the_doc_has_the_walkthrough_blocks() -> None:
    blocks = SH_BLOCK.findall(DOC.read_text())
    assert len(blocks) > 10
    text = "\n".join(blocks)
    for route in (
        "/v1/clients",
        "/v1/requests",
        "/decision",
        "/assign",
        "/v1/releases",
        "/v1/unwrap",
        "/v1/audit",
        "/v1/audit/verify",
        "/v1/disclosures",
        "format=csv",
    ):
        assert route in text, route


def test_the_simulators_known_domains_are_the_ones_listed() -> None:
    from vendor_sim.rdap import DOMAINS

    section = DOC.read_text().split("## 3.", 1)[1].split("## 4.", 1)[0]
    listed = re.findall(r"^\| `([^`]+)` \|", section, re.MULTILINE)
    assert sorted(listed) == sorted(DOMAINS)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_new_user_following_the_doc_reaches_a_revealed_and_a_revoked_credential(stack: dict[str, Any]) -> None:
    run = subprocess.run(
        ["bash", "-c", _script()],
        cwd=REPO,
        env=_clean_env(stack["root"]),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, f"stdout:\n{run.stdout[-3000:]}\nstderr:\n{run.stderr[-3000:]}"
    kept = json.loads(run.stdout.split(MARK, 1)[1].splitlines()[0])

    # The revealed credential: the password stored at the broker, read back through release + unwrap.
    assert len(kept["SECRET"]) >= 20
    assert kept["REVEALED"] == kept["SECRET"]
    assert "revealed: the password stored in step 2" in run.stdout
    assert kept["RUN_STATUS"] == "succeeded"

    # The revoked one: the worker revoked the unused release, and its token answers 410.
    assert kept["RELEASE2_STATUS"] == "revoked"
    assert '{"error":"wrap_token_invalid"' in run.stdout
    assert "HTTP 410" in run.stdout

    # Need-to-know: a technician limited to other clients sees none of this client's objects.
    assert kept["TARA_TASKS"] == "[]"
    assert "task: 404\n" in run.stdout and "credential: 404\n" in run.stdout

    # Checked again from outside the doc's shell.
    urls = stack["urls"]
    admin = {"Authorization": f"Bearer {mint(stack['root'], role='admin', sub='admin')}"}
    broker = urls["secrets_broker"]
    release = httpx.get(f"{broker}/v1/releases/{kept['RELEASE2_ID']}", headers=admin).json()
    assert release["status"] == "revoked"
    task = httpx.get(f"{urls['intake']}/v1/tasks/{kept['TASK']}", headers=admin).json()
    assert task["status"] == "done" and task["assignee"] == "tech1"
    audit = httpx.get(f"{broker}/v1/audit", params={"task_id": kept["TASK"], "limit": 200}, headers=admin).json()
    actions = [e["action"] for e in audit["items"]]
    assert actions.count("release.granted") == 3
    assert "unwrap.succeeded" in actions and "release.revoked" in actions
    assert httpx.get(f"{broker}/v1/audit/verify", headers=admin).json()["ok"] is True
    ledger = httpx.get(f"{broker}/v1/disclosures", params={"client_id": kept["CLIENT"]}, headers=admin).json()
    assert [(d["credential_id"], d["recipient_name"]) for d in ledger["items"]] == [
        (kept["CREDENTIAL"], "Blue Harbor Hosting support")
    ]
    # Of everything the doc's commands showed, only the unwrap's answer holds the password.
    shown = run.stdout.split(MARK, 1)[0] + run.stderr
    assert shown.count(kept["SECRET"]) == 1


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_up_prints_a_first_command_that_works_as_pasted(stack: dict[str, Any]) -> None:
    stderr = stack["up"].stderr
    line = next(line for line in stderr.splitlines() if line.startswith("first command"))
    command = line.split(": ", 1)[1]
    assert stack["urls"]["intake"] + "/v1/clients" in command
    assert "$MSP_" not in command
    # Pasted into a shell that knows nothing of the stack (no MSP_* variables).
    env = {k: v for k, v in _clean_env(stack["root"]).items() if k != "MSP_DEVSTACK_DIR"}
    pasted = subprocess.run(["bash", "-c", command], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert pasted.returncode == 0, pasted.stderr
    names = {c["name"] for c in json.loads(pasted.stdout)["items"]}
    assert {"Acme Dental", "Northwind Legal"} <= names
    assert f"API docs: {stack['urls']['intake']}/docs" in stderr


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_make_status_prints_the_parts_then_the_urls_of_up(stack: dict[str, Any]) -> None:
    make = subprocess.run(
        ["make", "-s", "status"], cwd=REPO, env=_clean_env(stack["root"]), capture_output=True, text=True, timeout=300
    )
    assert make.returncode == 0, make.stderr
    lines = make.stdout.splitlines()
    count = len(parts.ALL_PARTS)
    assert len(lines) == 2 * count
    status = [line.split(" ") for line in lines[:count]]
    assert [row[0] for row in status] == list(parts.ALL_PARTS)
    assert all(len(row) == 3 and row[1] == "RUNNING" and row[2].isdigit() for row in status), status
    assert lines[count:] == stack["up"].stdout.splitlines()
