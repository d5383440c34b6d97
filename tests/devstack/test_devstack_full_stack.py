"""The whole stack through the CLI, as `make up` runs it (slow: every part, real processes)."""

from __future__ import annotations

import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from mspctl import parts
from mspctl.bao import is_unsealed
from mspctl.layout import Layout

sys.path.insert(0, str(Path(__file__).parents[1] / "secrets_broker"))

from broker_helpers import World

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def full(mspctl) -> Iterator[dict]:
    root = Path(tempfile.mkdtemp(prefix="mspctl-full-"))
    started = time.monotonic()
    # timeout= only bounds how long the test waits; how fast `up` is belongs to a benchmark, not here.
    result = mspctl(root, "up", "--detach", "--ports", "auto", timeout=240)
    print(f"\nmspctl up --detach took {time.monotonic() - started:.1f} s")
    try:
        yield {"root": root, "result": result}
    finally:
        mspctl(root, "down", timeout=120)
        shutil.rmtree(root, ignore_errors=True)


def _status(mspctl, root: Path) -> dict[str, tuple[str, int | None]]:
    out = mspctl(root, "status").stdout
    rows = [line.split() for line in out.splitlines()]
    return {name: (state, int(pid) if pid.isdigit() else None) for name, state, pid in rows}


def _ready(base_url: str) -> bool:
    # RUNNING in supervisor can come before uvicorn listens (startsecs=1): refused means "not yet".
    try:
        return httpx.get(base_url + "/readyz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def _urls(full) -> dict[str, str]:
    return dict(line.split(" ", 1) for line in full["result"].stdout.splitlines())


def _world(root: Path, urls: dict[str, str]) -> World:
    """The broker tests' helpers, speaking HTTP to this stack's processes with its issuer's tokens."""
    from mspctl.tokens import mint

    staffed: set[str] = set()

    def auth(role: str, sub: str = "user", client_id: Any = None, *, aud: list[str] | None = None) -> dict[str, str]:
        if aud is None and role == "service":
            aud = ["secrets_broker"]
        token = mint(root, role=role, sub=sub, client_id=str(client_id) if client_id else None, aud=aud)
        if role == "technician" and sub not in staffed:
            _add_staff(urls["intake"], mint(root, role="admin", sub="stack-admin"), sub)
            staffed.add(sub)
        return {"Authorization": f"Bearer {token}"}

    broker = httpx.Client(base_url=urls["secrets_broker"], timeout=30)
    return World(broker, urls["intake"], auth, root, vendor_sync_url=urls["vendor_sync"])


def _add_staff(intake_url: str, admin_token: str, sub: str) -> None:
    """Give a technician a staff row (every client) through the API, as an admin of a real stack would."""
    r = httpx.post(
        f"{intake_url}/v1/staff",
        headers={"Authorization": f"Bearer {admin_token}"},
        json={"sub": sub, "display_name": f"Technician {sub}", "email": f"{sub}@msp.example", "role": "technician"},
        timeout=30,
    )
    assert r.status_code in (201, 409), r.text


def _released_secret(world: World, sub: str, task_id: Any, credential_id: Any) -> str:
    released = world.release(sub, task_id, credential_id)
    assert released.status_code == 201, released.text
    unwrapped = world.unwrap(sub, released.json()["wrap_token"])
    assert unwrapped.status_code == 200, unwrapped.text
    return str(unwrapped.json()["secret"])


def test_up_detach_prints_every_part_and_apis_are_ready(full):
    result = full["result"]
    assert result.returncode == 0, result.stderr[-3000:]
    urls = _urls(full)
    assert list(urls) == list(parts.ALL_PARTS)
    for api in parts.APIS:
        assert httpx.get(urls[api] + "/readyz").status_code == 200
        assert urls[api].startswith("http://127.0.0.1:")
    assert httpx.get(urls["vendor_sim"] + "/healthz").status_code == 200
    assert httpx.get(urls["issuer"] + "/.well-known/jwks.json").status_code == 200
    # No credentials in what `up` prints.
    assert "@" not in result.stdout


def test_up_seeds_demo_data_once_through_the_apis(mspctl, full):
    from mspctl.tokens import mint

    assert "demo data:" in full["result"].stderr
    assert (full["root"] / "demo-seeded").exists()
    urls = _urls(full)
    headers = {"Authorization": f"Bearer {mint(full['root'], role='admin', sub='t')}"}
    tasks = httpx.get(urls["intake"] + "/v1/tasks?limit=100", headers=headers).json()["items"]
    # The demo's requests made four tasks; vendor_sync may add renewal tasks for the recorded registry
    # answers whose expiry has passed (raised asynchronously, so their number depends on timing).
    requested = [t for t in tasks if t["type"] not in ("renewal", "drift_review")]
    assert sorted(t["status"] for t in requested) == ["awaiting_approval", "awaiting_approval", "ready", "ready"]
    assert {t["type"] for t in tasks} - {t["type"] for t in requested} <= {"renewal"}
    clients = httpx.get(urls["intake"] + "/v1/clients", headers=headers).json()["items"]
    assert {c["name"] for c in clients} == {"Acme Dental", "Northwind Legal"}
    staff = httpx.get(urls["intake"] + "/v1/staff", headers=headers).json()["items"]
    assert {(s["sub"], s["role"], s["active"], s["client_ids"]) for s in staff} == {
        ("admin", "admin", True, None),
        ("tech1", "technician", True, None),
        ("tech2", "technician", True, None),
    }
    # A demo technician reads every demo client's tasks (no staff row would leave them reading nothing).
    tech = {"Authorization": f"Bearer {mint(full['root'], role='technician', sub='tech1')}"}
    tech_tasks = httpx.get(urls["intake"] + "/v1/tasks?limit=100", headers=tech).json()["items"]
    assert {t["id"] for t in requested} <= {t["id"] for t in tech_tasks}
    # The demo credentials' secrets are in OpenBao and never printed.
    env = dict(line.split("=", 1) for line in (full["root"] / "env").read_text().splitlines() if "=" in line)
    vault = httpx.Client(
        base_url=env["MSP_VAULT_ADDR"],
        headers={"X-Vault-Token": (full["root"] / "bao" / "root-token").read_text().strip()},
    )
    printed = full["result"].stdout + full["result"].stderr
    secrets_seen = 0
    for client_id in vault.request("LIST", "/v1/msp-kv/metadata/clients").json()["data"]["keys"]:
        for cred in vault.request("LIST", f"/v1/msp-kv/metadata/clients/{client_id}credentials").json()["data"]["keys"]:
            secret = vault.get(f"/v1/msp-kv/data/clients/{client_id}credentials/{cred}").json()["data"]["data"][
                "secret"
            ]
            assert secret not in printed
            secrets_seen += 1
    # Per client: the ISP portal password, and the Cloudflare, GoDaddy and MailChannels API keys.
    assert secrets_seen == 8


def test_every_part_is_running(mspctl, full):
    status = _status(mspctl, full["root"])
    assert list(status) == list(parts.ALL_PARTS)
    assert all(state == "RUNNING" and pid for state, pid in status.values()), status


def test_second_up_changes_nothing(mspctl, full):
    before = _status(mspctl, full["root"])
    conf = Layout(full["root"]).supervisor_conf.stat().st_mtime_ns
    again = mspctl(full["root"], "up", "--detach", "--ports", "auto", timeout=240)
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stdout == full["result"].stdout
    assert _status(mspctl, full["root"]) == before
    assert Layout(full["root"]).supervisor_conf.stat().st_mtime_ns == conf


def test_kill_intake_restarts_it_while_others_keep_answering(mspctl, full):
    urls = _urls(full)
    old = _status(mspctl, full["root"])["intake"][1]
    failures: list[str] = []
    stop = threading.Event()

    def poll_others() -> None:
        while not stop.is_set():
            for api in ("secrets_broker", "vendor_sync"):
                try:
                    if httpx.get(urls[api] + "/readyz", timeout=5).status_code != 200:
                        failures.append(api)
                except httpx.HTTPError:
                    failures.append(api)
            time.sleep(0.1)

    watcher = threading.Thread(target=poll_others)
    watcher.start()
    try:
        result = mspctl(full["root"], "kill", "intake")
        assert result.returncode == 0, result.stderr
        gone_by = time.monotonic() + 10
        while psutil.pid_exists(old) and psutil.Process(old).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < gone_by, "the killed intake process is still alive"
            time.sleep(0.05)
        deadline = time.monotonic() + 60
        while True:
            state, pid = _status(mspctl, full["root"])["intake"]
            if state == "RUNNING" and pid and pid != old and _ready(urls["intake"]):
                break
            assert time.monotonic() < deadline, "intake did not come back"
            time.sleep(0.2)
    finally:
        stop.set()
        watcher.join()
    assert failures == []


def test_openbao_restart_unseals_itself_and_the_broker_keeps_running(mspctl, full):
    urls = _urls(full)
    world = _world(full["root"], urls)
    _, credential_id, secret, task_id, sub = world.ready()
    before = _status(mspctl, full["root"])

    assert mspctl(full["root"], "kill", "openbao").returncode == 0

    deadline = time.monotonic() + 60
    while True:
        now = _status(mspctl, full["root"])
        restarted = now["openbao"][0] == "RUNNING" and now["openbao"][1] != before["openbao"][1]
        if restarted and is_unsealed(urls["openbao"]):
            break
        assert time.monotonic() < deadline, f"openbao did not come back unsealed: {now}"
        time.sleep(0.3)
    # Nothing in OpenBao was lost, so the broker processes keep running on the tokens they hold.
    assert all(now[p] == before[p] for p in parts.LAUNCHED_WITH_ROLE), now
    assert _released_secret(world, sub, task_id, credential_id) == secret


def test_a_stored_credential_survives_down_and_up(mspctl, full):
    root = full["root"]
    world = _world(root, _urls(full))
    _, credential_id, secret, task_id, sub = world.ready()
    assert "openbao: initialised" in full["result"].stderr

    assert mspctl(root, "down", timeout=120).returncode == 0
    again = mspctl(root, "up", "--detach", "--ports", "auto", timeout=240)

    assert again.returncode == 0, again.stderr[-3000:]
    assert "openbao: initialised" not in again.stderr and "openbao: bootstrapped" not in again.stderr
    urls = dict(line.split(" ", 1) for line in again.stdout.splitlines())
    assert _released_secret(_world(root, urls), sub, task_id, credential_id) == secret


def test_down_leaves_no_process(mspctl, full):
    root = full["root"]
    pids = {pid for _, pid in _status(mspctl, root).values() if pid}
    sup = int(Layout(root).supervisor_pid.read_text())
    tree = [psutil.Process(sup), *psutil.Process(sup).children(recursive=True)]
    pids |= {p.pid for p in tree}
    assert len(pids) > len(parts.ALL_PARTS)
    result = mspctl(root, "down", timeout=120)
    assert result.returncode == 0, result.stderr
    alive = []
    for proc in tree:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc.pid)
        except psutil.NoSuchProcess:
            pass
    assert alive == []
    status = _status(mspctl, root)
    assert all(state == "STOPPED" and pid is None for state, pid in status.values())
