"""The demo's synced vendor accounts: API keys in the broker, the simulator's state, first syncs, restarts.

The first test is fast (the seeding against mocked services); the others run the whole stack as
`make up` does (slow: every part, real processes) and read it only through its APIs, the simulator's
control API, OpenBao (for the secrets the demo never prints) and the simulator's state file.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from mspctl import demo, demo_vendors
from mspctl.layout import Layout
from mspctl.tokens import ensure_key

# --import-mode=importlib puts no test dir on sys.path: the full-stack helpers live with the browser tests.
sys.path.insert(0, str(Path(__file__).parents[1] / "browser"))

from browser_helpers import FullStack, parse_urls, run_mspctl

# Polling deadline (not a performance bound): a queued sync, run by the stack's worker.
SYNC_TIMEOUT_S = 90.0
SIM = "http://sim.test"
# Where the dev stack keeps the simulator's state (tools/devstack/mspctl/stack.py).
STATE_FILE = Path("vendor_sim") / "state.json"
SIM_VENDORS = ("cloudflare", "godaddy", "namecheap", "mailchannels", "connectwise")


def fingerprint(credential: str) -> str:
    return hashlib.sha256(credential.encode()).hexdigest()[:12]


# --- the seeding, against mocked services (fast) ----------------------------------------------------------


def _rdap(request: httpx.Request) -> httpx.Response:
    name = request.url.path.rsplit("/", 1)[-1]
    if name == "norway.no":  # as the recorded answer: no expiry
        return httpx.Response(200, json={"ldhName": name, "events": [], "nameservers": []})
    return httpx.Response(
        200,
        json={
            "ldhName": name,
            "status": ["client transfer prohibited"] if name == "google.com" else ["active"],
            "events": [{"eventAction": "expiration", "eventDate": "2030-01-02T03:04:05Z"}],
            "nameservers": [{"ldhName": f"NS1.{name.upper()}"}, {"ldhName": f"ns2.{name}."}],
        },
    )


def test_demo_gives_each_client_keyed_accounts_and_the_simulator_only_fingerprints(tmp_path):
    layout = Layout(tmp_path / "devstack")
    layout.create()
    ensure_key(layout)
    layout.env_file.write_text("MSP_ENV=dev\nMSP_JWT_ISSUER=http://127.0.0.1:1\n")
    env = {
        "MSP_INTAKE_URL": "http://intake.test",
        "MSP_VENDOR_SYNC_URL": "http://vendor-sync.test",
        "MSP_SECRETS_BROKER_URL": "http://broker.test",
        "MSP_VENDOR_SIM_URL": SIM,
    }
    calls: list[tuple[str, str, Any]] = []
    vendors: dict[str, str] = {}
    accounts: dict[str, dict[str, Any]] = {}  # account id -> its vendor and client
    credentials: dict[str, dict[str, Any]] = {}

    def record(request: httpx.Request) -> Any:
        body = json.loads(request.content) if request.content else None
        calls.append((request.method, str(request.url), body))
        return body

    def created(request: httpx.Request) -> httpx.Response:
        body = record(request) or {}
        new_id = str(uuid.uuid4())
        path = request.url.path
        if path == "/v1/vendors":
            vendors[new_id] = body["name"]
        elif path.endswith("/vendor-accounts"):
            accounts[new_id] = {"vendor": vendors[body["vendor_id"]], "client": path.split("/")[3]}
        elif path == "/v1/credentials":
            credentials[new_id] = body
        return httpx.Response(201 if "/sync" not in path else 202, json={"id": new_id, "sync_run_id": new_id})

    def echoed(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=record(request))

    with respx.mock(assert_all_mocked=True) as mock:
        mock.post(url__startswith="http://").mock(side_effect=created)
        mock.patch(url__startswith="http://vendor-sync.test/v1/vendor-accounts/").mock(side_effect=echoed)
        mock.get(url__startswith=f"{SIM}/rdap/domain/").mock(side_effect=_rdap)
        mock.put(url__startswith=f"{SIM}/_sim/").mock(side_effect=echoed)
        summary = demo.seed(layout, env)

    assert summary is not None and "GoDaddy" in summary.vendors.keys()
    synced = {aid: a for aid, a in accounts.items() if a["vendor"] in ("Cloudflare", "GoDaddy")}
    assert sorted(a["vendor"] for a in synced.values()) == ["Cloudflare", "Cloudflare", "GoDaddy", "GoDaddy"]
    # Each client's spam filter, keyed for provisioning: no state at the simulator, no sync.
    spam_filters = {aid: a for aid, a in accounts.items() if a["vendor"] == "MailChannels"}
    assert sorted(a["client"] for a in spam_filters.values()) == sorted(summary.clients.values())
    assert summary.counts["vendor_accounts"] == 4 * len(demo.CLIENTS)
    assert summary.counts["account_syncs"] == len(synced)
    keys = {c["vendor_account_id"]: (cid, c) for cid, c in credentials.items() if c["kind"] == "api_key"}
    assert set(keys) == set(synced) | set(spam_filters)
    for account_id, account in spam_filters.items():
        credential_id, credential = keys[account_id]
        assert (credential["owner"], credential["category"], credential["client_id"]) == (
            "msp",
            "spam_filter",
            account["client"],
        )
        url = f"http://vendor-sync.test/v1/vendor-accounts/{account_id}"
        assert ("PATCH", url, {"api_key_credential_id": credential_id}) in calls
        assert not [u for _, u, _ in calls if u.endswith(f"/vendor-accounts/{account_id}/sync")]
    secrets = [c["secret"] for c in credentials.values()]
    puts = [(url, body) for method, url, body in calls if method == "PUT"]
    for account_id, account in synced.items():
        credential_id, credential = keys[account_id]
        category = "dns_host" if account["vendor"] == "Cloudflare" else "registrar"
        assert (credential["owner"], credential["category"], credential["client_id"]) == (
            "msp",
            category,
            account["client"],
        )
        # The account gets the credential through PATCH, after it exists at the broker.
        assert (
            "PATCH",
            f"http://vendor-sync.test/v1/vendor-accounts/{account_id}",
            {"api_key_credential_id": credential_id},
        ) in calls
        # The simulator is told the key's fingerprint only (GoDaddy's key is the pair `key:secret`).
        sent = credential["secret"] if category == "dns_host" else f"{credential['username']}:{credential['secret']}"
        vendor = "cloudflare" if category == "dns_host" else "godaddy"
        (state,) = [body for url, body in puts if url == f"{SIM}/_sim/{vendor}/accounts/{fingerprint(sent)}/state"]
        spec = next(s for s in demo.CLIENTS if summary.clients[s["name"]] == account["client"])
        names = [demo_vendors.a_label(n) for n in spec["domains"]]
        if vendor == "cloudflare":
            assert [z["name"] for z in state["zones"]] == names
            assert all(any(r["type"] == "MX" for r in z["records"]) for z in state["zones"])
        else:
            # The registry's facts, so registrar and registry agree; a name it gives no expiry is not registered here.
            assert [d["name"] for d in state["domains"]] == [n for n in names if n != "norway.no"]
            google = {d["name"]: d for d in state["domains"]}.get("google.com")
            if google is not None:
                assert google["nameservers"] == ["ns1.google.com", "ns2.google.com"] and google["locked"] is True
    assert "xn--fo-5ja.example" in json.dumps([body for _, body in puts])
    assert not [url for url, _ in puts if "/_sim/mailchannels/" in url]
    assert not any(secret in json.dumps(body) for _, body in puts for secret in secrets)
    # Every sync is queued after the simulator holds every account's state.
    last_put = max(i for i, (method, _, _) in enumerate(calls) if method == "PUT")
    sync_calls = [i for i, (method, url, _) in enumerate(calls) if method == "POST" and url.endswith("/sync")]
    assert len(sync_calls) == len(synced) and min(sync_calls) > last_put


# --- the whole stack (slow) ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def started() -> Iterator[tuple[FullStack, str]]:
    """`mspctl up --detach --ports auto` in a fresh devstack dir, and what it printed; `mspctl down` after."""
    root = Path(tempfile.mkdtemp(prefix="msp-demo-vendors-"))
    try:
        # timeout= bounds the wait only; a first `up` creates the cluster, migrates and seeds the demo.
        result = run_mspctl(root, "up", "--detach", "--ports", "auto", timeout=240)
        assert result.returncode == 0, result.stderr[-3000:]
        assert "4 account_syncs" in result.stderr and "8 vendor_accounts" in result.stderr, result.stderr[-2000:]
        yield FullStack(root, parse_urls(result.stdout)), result.stdout + result.stderr
    finally:
        run_mspctl(root, "down", timeout=120)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def stack(started: tuple[FullStack, str]) -> FullStack:
    return started[0]


class Demo:
    """The stack as an admin: its APIs, the simulator's control API, and OpenBao for the stored secrets."""

    def __init__(self, stack: FullStack) -> None:
        token = stack.token("admin", "demo-vendors-admin")
        self.stack = stack
        self.intake = stack.api("intake", token)
        self.vendor_sync = stack.api("vendor_sync", token)
        self.broker = stack.api("secrets_broker", token)
        self.sim = httpx.Client(base_url=stack.urls["vendor_sim"], timeout=30)
        env = stack.env()
        self.vault = httpx.Client(
            base_url=env["MSP_VAULT_ADDR"],
            headers={"X-Vault-Token": (stack.root / "bao" / "root-token").read_text().strip()},
            timeout=30,
        )

    def close(self) -> None:
        for client in (self.intake, self.vendor_sync, self.broker, self.sim, self.vault):
            client.close()

    def get(self, client: httpx.Client, path: str) -> Any:
        response = client.get(path)
        assert response.status_code == 200, f"{path}: {response.status_code} {response.text[:300]}"
        return response.json()

    def clients(self) -> dict[str, str]:
        return {c["name"]: c["id"] for c in self.get(self.intake, "/v1/clients?limit=100")["items"]}

    def synced_accounts(self, client_id: str) -> dict[str, dict[str, Any]]:
        """The client's Cloudflare and GoDaddy accounts, by vendor name."""
        names = {v["id"]: v["name"] for v in self.get(self.vendor_sync, "/v1/vendors?limit=100")["items"]}
        items = self.get(self.vendor_sync, f"/v1/clients/{client_id}/vendor-accounts?limit=100")["items"]
        return {names[a["vendor_id"]]: a for a in items if names[a["vendor_id"]] in ("Cloudflare", "GoDaddy")}

    def domains(self, client_id: str) -> dict[str, dict[str, Any]]:
        return {d["name"]: d for d in self.get(self.vendor_sync, f"/v1/clients/{client_id}/domains?limit=200")["items"]}

    def sync(self, account_id: str) -> dict[str, Any]:
        """The account's sync run in flight (the demo's first one) or a new one, once it has ended."""
        queued = self.vendor_sync.post(f"/v1/vendor-accounts/{account_id}/sync", json={})
        assert queued.status_code == 202, queued.text
        run_id = queued.json()["sync_run_id"]
        deadline = time.monotonic() + SYNC_TIMEOUT_S
        while True:
            run: dict[str, Any] = self.get(self.vendor_sync, f"/v1/sync-runs/{run_id}")
            if run["status"] in ("succeeded", "failed") or time.monotonic() > deadline:
                return run
            time.sleep(0.5)

    def stored_secret(self, client_id: str, credential_id: str) -> str:
        response = self.vault.get(f"/v1/msp-kv/data/clients/{client_id}/credentials/{credential_id}")
        assert response.status_code == 200, response.text
        return str(response.json()["data"]["data"]["secret"])

    def wait_sim(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if self.sim.get("/healthz").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise AssertionError("vendor_sim did not come back")


@pytest.fixture(scope="module")
def demo_stack(stack: FullStack) -> Iterator[Demo]:
    handle = Demo(stack)
    try:
        yield handle
    finally:
        handle.close()


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_each_demo_client_syncs_its_own_zones_and_domains(demo_stack: Demo) -> None:
    clients = demo_stack.clients()
    assert set(clients) == {spec["name"] for spec in demo.CLIENTS}
    for spec in demo.CLIENTS:
        client_id = clients[spec["name"]]
        accounts = demo_stack.synced_accounts(client_id)
        assert set(accounts) == {"Cloudflare", "GoDaddy"}
        for vendor, account in accounts.items():
            credential_id = account["api_key_credential_id"]
            assert credential_id, f"{spec['name']}'s {vendor} account has no API key"
            credential = demo_stack.get(demo_stack.broker, f"/v1/credentials/{credential_id}")
            assert (credential["kind"], credential["owner"]) == ("api_key", "msp")
            assert credential["vendor_account_id"] == account["id"]
            run = demo_stack.sync(account["id"])
            assert run["status"] == "succeeded", run
        names = {demo_vendors.a_label(name) for name in spec["domains"]}
        domains = demo_stack.domains(client_id)
        # Only this client's names: the simulator gives each client's key its own account.
        assert set(domains) == names
        for name, domain in domains.items():
            assert domain["dns_host_account_id"] == accounts["Cloudflare"]["id"], name
            assert domain["mx"] == [f"10 mx1.{name}", f"20 mx2.{name}"], name
            records = demo_stack.get(demo_stack.vendor_sync, f"/v1/domains/{domain['id']}/records")["items"]
            assert {(r["type"], r["content"], r["priority"]) for r in records if r["type"] == "MX"} == {
                ("MX", f"mx1.{name}", 10),
                ("MX", f"mx2.{name}", 20),
            }
            # At the registrar: every name the registry gives an expiry for (norway.no has none).
            registered = domain["registrar_account_id"] == accounts["GoDaddy"]["id"]
            assert registered == (name != "norway.no"), name


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_the_registrar_and_the_registry_agree_so_no_drift_task(demo_stack: Demo) -> None:
    for client_id in demo_stack.clients().values():
        for account in demo_stack.synced_accounts(client_id).values():
            assert demo_stack.sync(account["id"])["status"] == "succeeded"
    events = demo_stack.get(demo_stack.vendor_sync, "/v1/drift-events?limit=200")["items"]
    # Only the registry's own expiry warnings (recorded answers with past dates): no change of a known value.
    assert {e["kind"] for e in events} <= {"expiry_warning"}, events
    tasks = demo_stack.get(demo_stack.intake, "/v1/tasks?limit=200")["items"]
    assert not [t for t in tasks if t["type"] == "drift_review"], tasks


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_the_simulator_knows_the_keys_by_fingerprint_only(demo_stack: Demo, started: tuple[FullStack, str]) -> None:
    stack, printed = started
    expected: dict[str, set[str]] = {"cloudflare": set(), "godaddy": set()}
    secrets: list[str] = []
    for client_id in demo_stack.clients().values():
        for vendor, account in demo_stack.synced_accounts(client_id).items():
            credential_id = account["api_key_credential_id"]
            secret = demo_stack.stored_secret(client_id, credential_id)
            secrets.append(secret)
            if vendor == "Cloudflare":
                expected["cloudflare"].add(fingerprint(secret))
            else:
                username = demo_stack.get(demo_stack.broker, f"/v1/credentials/{credential_id}")["username"]
                expected["godaddy"].add(fingerprint(f"{username}:{secret}"))
    for vendor, fingerprints in expected.items():
        assert set(demo_stack.get(demo_stack.sim, f"/_sim/{vendor}/accounts")["items"]) == fingerprints
    assert demo_stack.get(demo_stack.sim, "/_sim/mailchannels/state") == {"domains": []}
    shown = [json.dumps(demo_stack.get(demo_stack.sim, f"/_sim/{v}/state")) for v in SIM_VENDORS]
    shown.append(json.dumps(demo_stack.get(demo_stack.sim, "/_sim/requests")))
    shown.append((stack.root / STATE_FILE).read_text())
    logs = stack.root / "logs"
    shown += [path.read_text(errors="replace") for path in logs.glob("vendor_sim*")]
    shown.append(printed)
    for text in shown:
        assert not any(secret in text for secret in secrets)


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_the_vendors_state_outlives_a_simulator_restart(demo_stack: Demo, stack: FullStack) -> None:
    def states() -> dict[str, Any]:
        return {v: demo_stack.get(demo_stack.sim, f"/_sim/{v}/state") for v in SIM_VENDORS}

    before = states()
    assert before["cloudflare"]["accounts"] and before["godaddy"]["accounts"]
    # The demo's requests have tickets in the simulator's ConnectWise, and intake's callback is registered.
    assert before["connectwise"]["tickets"] and before["connectwise"]["callbacks"]
    kept = json.loads((stack.root / STATE_FILE).read_text())
    # The file keeps what each /state shows, and ConnectWise's callback signing key besides.
    signing_key = kept["connectwise"].pop("signing_key")
    assert set(signing_key) == {"id", "key"}
    assert kept == before
    # Killed (supervisord restarts it), then stopped and started as `mspctl` does.
    killed = stack.mspctl("kill", "vendor_sim")
    assert killed.returncode == 0, killed.stderr
    time.sleep(1.5)
    demo_stack.wait_sim()
    assert states() == before
    for command in ("stop", "start"):
        done = stack.mspctl(command, "vendor_sim", timeout=120)
        assert done.returncode == 0, done.stderr
    demo_stack.wait_sim()
    assert states() == before
    # The next sync sees the same accounts (zone and record ids kept): nothing to change, nothing unlinked.
    for client_id in demo_stack.clients().values():
        for account in demo_stack.synced_accounts(client_id).values():
            run = demo_stack.sync(account["id"])
            assert run["status"] == "succeeded", run
            assert run["plan"] == {"create": 0, "update": 0, "delete": 0}, run
