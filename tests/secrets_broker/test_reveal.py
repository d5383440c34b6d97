"""POST /v1/reveal and GET /reveal: a third party's mailed link shows the secret once, with no bearer token."""

from __future__ import annotations

import json
import random
import uuid
from typing import Any

from broker_helpers import World, audit_rows, lookup_at_vault
from fastapi.testclient import TestClient


def _client_at(broker_app: Any, address: str) -> TestClient:
    return TestClient(broker_app, raise_server_exceptions=False, client=(address, 50000))


def _address() -> str:
    # A fresh address per test: the limit is per address and shared in Redis across runs.
    return f"10.{random.randint(0, 255)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


def test_reveal_shows_a_third_partys_secret_once(world: World, broker_app: Any, engine: Any, vault_addr: str) -> None:
    _, credential_id, secret, task_id, _, token = world.third_party_token()
    address = _address()
    client = _client_at(broker_app, address)

    first = client.post("/v1/reveal", json={"wrap_token": token})

    assert first.status_code == 200, first.text
    assert first.headers["cache-control"] == "no-store"
    assert first.json()["secret"] == secret
    assert first.json()["credential_id"] == str(credential_id)
    assert lookup_at_vault(vault_addr, token).status_code == 400
    second = client.post("/v1/reveal", json={"wrap_token": token})
    assert (second.status_code, second.json()["error"]) == (410, "wrap_token_invalid")

    entries = [a for a in audit_rows(engine, task_id=task_id) if a.action.startswith("unwrap.")]
    assert [a.action for a in entries] == ["unwrap.succeeded", "unwrap.refused"]
    details = json.loads(entries[0].canonical)["details"]
    assert details["door"] == "reveal" and details["client_ip"] == address
    assert entries[0].actor.startswith("third_party:")


def test_reveal_refuses_a_technicians_token_without_consuming_it(world: World, vault_addr: str) -> None:
    _, credential_id, secret, task_id, sub = world.ready()
    token = world.release(sub, task_id, credential_id).json()["wrap_token"]

    r = world.reveal(token)

    assert (r.status_code, r.json()["error"]) == (403, "forbidden")
    assert secret not in r.text
    assert lookup_at_vault(vault_addr, token).status_code == 200
    assert world.unwrap(sub, token).json()["secret"] == secret


def test_reveal_rechecks_intake(world: World, vault_addr: str) -> None:
    _, _, _, task_id, sub, token = world.third_party_token()
    world.transition(task_id, "on_hold", world.tech(sub))

    r = world.reveal(token)

    assert (r.status_code, r.json()["rule"]) == (403, "task_not_in_progress")
    assert lookup_at_vault(vault_addr, token).status_code == 200


def test_reveal_is_rate_limited_per_address(world: World, broker_app: Any) -> None:
    from secrets_broker.deps import settings_dep
    from secrets_broker.settings import get_settings

    broker_app.dependency_overrides[settings_dep] = lambda: get_settings().model_copy(
        update={"reveal_rate_limit": "3/minute"}
    )
    guesser = _client_at(broker_app, _address())
    codes = [guesser.post("/v1/reveal", json={"wrap_token": f"s.guess{i}"}).status_code for i in range(5)]
    assert codes == [410, 410, 410, 429, 429]
    limited = guesser.post("/v1/reveal", json={"wrap_token": "s.guess9"})
    assert limited.json()["error"] == "rate_limited"
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    # Another address is counted on its own.
    assert _client_at(broker_app, _address()).post("/v1/reveal", json={"wrap_token": "s.x"}).status_code == 410


def test_reveal_fails_closed_when_the_limiter_cannot_count(world: World, broker_app: Any) -> None:
    from secrets_broker.deps import settings_dep
    from secrets_broker.settings import get_settings

    _, _, secret, _, _, token = world.third_party_token()
    broker_app.dependency_overrides[settings_dep] = lambda: get_settings().model_copy(
        update={"redis_url": "redis://127.0.0.1:1/0", "redis_timeout_s": 0.2}
    )
    r = world.reveal(token)
    assert (r.status_code, r.json()["error"]) == (503, "unavailable")
    assert secret not in r.text


def test_reveal_page_headers_keep_it_out_of_caches_referers_and_frames(world: World) -> None:
    page = world.broker.get("/reveal")

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    script = world.broker.get("/reveal/reveal.js")
    assert script.status_code == 200 and "location.hash" in script.text
    assert world.broker.get("/reveal/../settings.py").status_code == 404
    assert world.broker.get("/reveal/other.js").status_code == 404
    # The token never travels as a query string: the page ignores one and the API takes a body.
    assert "search" not in script.text
    assert world.broker.post(f"/v1/reveal?wrap_token=s.{uuid.uuid4().hex}").status_code == 422
