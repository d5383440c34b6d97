"""vendor_sim: served RDAP data, bootstrap, fault modes, latency and the request log.

The simulator's waits (delay, drip pauses, added latency) go through the `sleep` it is built with;
these tests pass one that records each wait instead of measuring how long a request took.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from email.utils import parsedate_to_datetime

import httpx
import pytest
from starlette.testclient import TestClient

from mspctl.ports import free_port
from mspctl.threaded_server import ThreadedServer
from mspkit.http import FetchLimits, RetryPolicy, VendorHTTP, VendorNotFound
from vendor_sim.app import create_app
from vendor_sim.rdap import DOMAINS
from vendor_sync.adapters.rdap import RdapClient

RDAP = "application/rdap+json"


class Waits:
    """The simulator's `sleep`: records how long it was asked to wait, and returns at once."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


@pytest.fixture
def waits() -> Waits:
    return Waits()


@pytest.fixture
def sim(waits: Waits) -> Iterator[TestClient]:
    # A loopback Host: the /_sim control API refuses any other.
    with TestClient(create_app(latency_ms=0, sleep=waits), base_url="http://127.0.0.1") as client:
        yield client


@pytest.fixture
def recorded_sim_url(waits: Waits) -> Iterator[str]:
    """A simulator on a real socket (uvicorn in a thread) whose waits are recorded."""
    served = ThreadedServer(create_app(latency_ms=0, sleep=waits), free_port(), lifespan="auto").start()
    yield served.url
    served.stop()


@pytest.mark.parametrize("name", sorted(DOMAINS))
def test_each_domain_is_served_under_its_own_name(sim: TestClient, name: str) -> None:
    response = sim.get(f"/rdap/domain/{name.upper()}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(RDAP)
    assert response.json()["ldhName"].lower() == name


def test_google_related_link_points_at_the_simulated_registrar(sim: TestClient) -> None:
    data = sim.get("/rdap/domain/google.com").json()
    related = [link["href"] for link in data["links"] if link["rel"] == "related"]
    assert related == ["http://127.0.0.1/rdap-registrar/domain/google.com"]
    registrar = sim.get("/rdap-registrar/domain/google.com")
    assert registrar.status_code == 200
    assert any(e["eventAction"] == "last changed" for e in registrar.json()["events"])
    # The recorded duplicate secureDNS member is served byte for byte.
    assert sim.get("/rdap/domain/google.com").text.count('"secureDNS"') == 2


def test_unknown_names_get_an_rdap_404(sim: TestClient) -> None:
    for path in ("/rdap/domain/unknown.com", "/rdap-registrar/domain/norway.no", "/rdap/nameserver/ns1.x"):
        response = sim.get(path)
        assert response.status_code == 404
        assert response.headers["content-type"].startswith(RDAP)
        assert response.json()["errorCode"] == 404


def test_bootstrap_maps_every_tld_to_the_simulator(sim: TestClient) -> None:
    response = sim.get("/rdap/bootstrap/dns.json", headers={"Host": "sim.local:9999"})
    assert response.status_code == 200
    services = response.json()["services"]
    assert sorted(services[0][0]) == sorted(["com", "no", "cz", "fr", "click", "example"])
    assert services[0][1] == ["http://sim.local:9999/rdap/"]
    assert "max-age" in response.headers["cache-control"]


def test_healthz(sim: TestClient) -> None:
    assert sim.get("/healthz").json() == {"status": "ok"}


def _fault(sim: TestClient, **body: object) -> dict[str, object]:
    response = sim.post("/_sim/faults", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def test_503_burst_then_normal(sim: TestClient) -> None:
    _fault(sim, mode="503", count=2, path_prefix="/rdap/domain/")
    codes = [sim.get("/rdap/domain/norway.no").status_code for _ in range(3)]
    assert codes == [503, 503, 200]
    assert sim.get("/_sim/faults").json()["items"] == []


def test_429_with_retry_after_seconds_and_date(sim: TestClient) -> None:
    _fault(sim, mode="429", count=1, retry_after=3)
    response = sim.get("/rdap/domain/norway.no")
    assert response.status_code == 429 and response.headers["retry-after"] == "3"
    date = "Wed, 21 Oct 2037 07:28:00 GMT"
    _fault(sim, mode="429", count=1, retry_after=date)
    response = sim.get("/rdap/domain/norway.no")
    assert parsedate_to_datetime(response.headers["retry-after"]).year == 2037


def test_malformed_html_redirect_and_error_modes(sim: TestClient) -> None:
    _fault(sim, mode="malformed", count=1)
    response = sim.get("/rdap/domain/norway.no")
    assert response.status_code == 200 and response.headers["content-type"].startswith(RDAP)
    with pytest.raises(json.JSONDecodeError):
        response.json()
    _fault(sim, mode="html", count=1)
    response = sim.get("/rdap/domain/norway.no")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    _fault(sim, mode="redirect", count=1, location="http://169.254.169.254/latest/meta-data/")
    response = sim.get("/rdap/domain/norway.no", follow_redirects=False)
    assert response.status_code == 302
    assert response.headers["location"] == "http://169.254.169.254/latest/meta-data/"
    _fault(sim, mode="error", count=1, status=500)
    assert sim.get("/rdap/domain/norway.no").status_code == 500


def test_delay_mode_and_latency(sim: TestClient, waits: Waits) -> None:
    assert sim.get("/rdap/domain/norway.no").status_code == 200
    assert waits.seconds == []  # no fault, no latency: no wait
    _fault(sim, mode="delay", count=1, seconds=0.3)
    assert sim.get("/rdap/domain/norway.no").status_code == 200
    assert waits.seconds == [0.3]
    assert sim.post("/_sim/latency", json={"ms": 200}).json() == {"ms": 200.0}
    sim.get("/rdap/domain/norway.no")
    assert waits.seconds == [0.3, 0.2]  # the fault was used up; the latency applies to every request
    sim.get("/_sim/faults")
    assert waits.seconds == [0.3, 0.2]  # the admin API is never slowed
    assert sim.post("/_sim/latency", json={"ms": -1}).status_code == 422


def test_fault_validation(sim: TestClient) -> None:
    for body in (
        {"mode": "explode"},
        {"mode": "503", "count": 0},
        {"mode": "redirect"},
        {"mode": "503", "path_prefix": "rdap"},
        {"mode": "503", "bogus": 1},
    ):
        assert sim.post("/_sim/faults", json=body).status_code == 422
    _fault(sim, mode="503", path_prefix="/rdap/domain/")
    assert sim.delete("/_sim/faults").json() == {"removed": 1}


def test_faults_match_by_prefix_only(sim: TestClient) -> None:
    _fault(sim, mode="503", path_prefix="/rdap/domain/google")
    assert sim.get("/rdap/domain/norway.no").status_code == 200
    assert sim.get("/rdap/domain/google.com").status_code == 503
    assert sim.get("/_sim/faults").status_code == 200  # the admin API is never faulted


def test_request_log(sim: TestClient) -> None:
    _fault(sim, mode="503", count=1)
    before = time.time()
    sim.get("/rdap/domain/norway.no")
    sim.get("/rdap/domain/norway.no")
    sim.get("/rdap/bootstrap/dns.json")
    items = sim.get("/_sim/requests", params={"path_prefix": "/rdap/domain/"}).json()["items"]
    assert [(i["path"], i["status"], i["fault"]) for i in items] == [
        ("/rdap/domain/norway.no", 503, "503"),
        ("/rdap/domain/norway.no", 200, None),
    ]
    assert before <= items[0]["t"] <= items[1]["t"] <= time.time()
    assert len(sim.get("/_sim/requests").json()["items"]) == 3
    sim.delete("/_sim/requests")
    assert sim.get("/_sim/requests").json()["items"] == []


def test_drip_and_huge_over_a_real_socket(recorded_sim_url: str, waits: Waits) -> None:
    sim_url = recorded_sim_url
    httpx.post(f"{sim_url}/_sim/faults", json={"mode": "drip", "seconds": 1, "chunks": 5, "count": 1})
    body = httpx.get(f"{sim_url}/rdap/domain/norway.no", timeout=10).content
    # Five pieces, each after a 0.2 s pause: the body took its whole second to arrive, and is intact.
    assert waits.seconds == [0.2] * 5
    assert json.loads(body)["ldhName"] == "norway.no"
    httpx.post(f"{sim_url}/_sim/faults", json={"mode": "huge", "size_mb": 6, "count": 1})
    with httpx.stream("GET", f"{sim_url}/rdap/domain/norway.no", timeout=30) as response:
        assert sum(len(c) for c in response.iter_bytes()) == 6 * 1024 * 1024


def test_rdap_client_end_to_end_against_the_simulator(sim_url: str) -> None:
    host = sim_url.split("//", 1)[1]
    http = VendorHTTP(
        "rdap",
        allowed_hosts=[host],
        limits=FetchLimits(deadline_s=5),
        retry=RetryPolicy(max_attempts=3, base_s=0.01, cap_s=0.05),
    )
    rdap = RdapClient(http, bootstrap_url=f"{sim_url}/rdap/bootstrap/dns.json")
    record = rdap.lookup_domain("google.com")
    assert record.registrar_data == "followed"
    assert record.last_changed_at is not None and record.registrar_iana_id == 292
    assert rdap.lookup_domain("fóo.example").name == "xn--fo-5ja.example"
    with pytest.raises(VendorNotFound):
        rdap.lookup_domain("unknown.com")
    # A 503 burst is absorbed by the retries.
    httpx.post(f"{sim_url}/_sim/faults", json={"mode": "503", "count": 2, "path_prefix": "/rdap/domain/"})
    assert rdap.lookup_domain("norway.no").registrar == "Domeneshop AS"
    paths = [i["path"] for i in httpx.get(f"{sim_url}/_sim/requests").json()["items"]]
    assert paths.count("/rdap/bootstrap/dns.json") == 1  # cached per Cache-Control
    assert paths.count("/rdap/domain/norway.no") == 3
