"""POST /v1/reveal and GET /reveal: a third party's mailed reveal code shows the secret once, with no bearer token.

The broker mints no Vault token for a third party: the code is its own, stored only as an HMAC, and
a reveal re-checks intake live, then wraps and unwraps inside the broker.
"""

from __future__ import annotations

import json
import random
import re
import threading
import uuid
from collections.abc import Callable
from typing import Any

from broker_helpers import World, audit_rows, lookup_at_vault, release_row
from fastapi.testclient import TestClient
from sqlalchemy import text

CHAIN_LOCK = "secrets_broker:audit-chain"


def _client_at(broker_app: Any, address: str) -> TestClient:
    return TestClient(broker_app, raise_server_exceptions=False, client=(address, 50000))


def _address() -> str:
    # A fresh address per test: the limit is per address and shared in Redis across runs.
    return f"10.{random.randint(0, 255)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


def _release_id(engine: Any, task_id: uuid.UUID) -> uuid.UUID:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT id FROM releases WHERE task_id = :t AND recipient_type = 'third_party'"), {"t": task_id}
        ).scalar_one()


def _pending_for(engine: Any, release_id: uuid.UUID) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT count(*) FROM pending_revocations WHERE release_id = :r"), {"r": release_id}
            ).scalar_one()
        )


def _chain_head(engine: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT coalesce(max(index), -1) FROM audit_entries")).scalar_one())


def _refused_metric(broker: Any, reason: str) -> float:
    body = broker.get("/metrics").text
    found = re.search(rf'^msp_broker_reveal_refused_total\{{reason="{reason}"\}} ([0-9.e+]+)$', body, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def _gone(r: Any) -> None:
    assert r.status_code == 410, r.text
    assert r.json() == {
        "error": "reveal_code_invalid",
        "detail": "this link was already used, has expired or was withdrawn",
        "field": "code",
    }


def test_reveal_shows_a_third_partys_secret_once(world: World, broker_app: Any, engine: Any) -> None:
    _, credential_id, secret, task_id, _, code = world.third_party_token()
    release_id = _release_id(engine, task_id)
    address = _address()
    client = _client_at(broker_app, address)

    first = client.post("/v1/reveal", json={"code": code})

    assert first.status_code == 200, first.text
    assert first.headers["cache-control"] == "no-store"
    assert first.json() == {
        "credential_id": str(credential_id),
        "name": "ISP portal",
        "username": "admin@example.com",
        "secret": secret,
        "url": None,
    }
    assert release_row(engine, release_id).status == "unwrapped"
    second = client.post("/v1/reveal", json={"code": code})
    _gone(second)
    assert secret not in second.text

    entries = [a for a in audit_rows(engine, task_id=task_id) if a.action.startswith("unwrap.")]
    assert [a.action for a in entries] == ["unwrap.succeeded", "unwrap.refused"]
    details = [json.loads(a.canonical)["details"] for a in entries]
    assert details[0]["door"] == "reveal" and details[0]["client_ip"] == address
    assert details[1]["reason"] == "unwrapped"
    assert all(a.actor.startswith("third_party:") and a.release_id == release_id for a in entries)
    # The wrapping token minted at reveal was consumed there: nothing is left to revoke.
    assert _pending_for(engine, release_id) == 0


def test_concurrent_reveals_of_one_code_give_one_secret(world: World, broker_app: Any, engine: Any) -> None:
    _, _, secret, task_id, _, code = world.third_party_token()
    start = threading.Barrier(4)
    answers: list[Any] = []

    def knock() -> None:
        client = _client_at(broker_app, _address())
        start.wait()
        answers.append(client.post("/v1/reveal", json={"code": code}))

    threads = [threading.Thread(target=knock) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(a.status_code for a in answers) == [200, 410, 410, 410]
    assert sum(secret in a.text for a in answers) == 1
    succeeded = [a for a in audit_rows(engine, task_id=task_id) if a.action == "unwrap.succeeded"]
    assert len(succeeded) == 1


def test_unknown_codes_are_counted_and_not_audited(world: World, broker_app: Any, engine: Any) -> None:
    guesser = _client_at(broker_app, _address())
    before_metric = _refused_metric(world.broker, "unknown")
    head = _chain_head(engine)

    answers = [guesser.post("/v1/reveal", json={"code": uuid.uuid4().hex}) for _ in range(3)]

    for r in answers:
        _gone(r)
    assert _chain_head(engine) == head
    assert _refused_metric(world.broker, "unknown") == before_metric + 3


def test_a_technicians_token_is_no_reveal_code(world: World, vault_addr: str) -> None:
    _, credential_id, secret, task_id, sub = world.ready()
    token = world.release(sub, task_id, credential_id).json()["wrap_token"]

    r = world.reveal(token)

    _gone(r)
    assert secret not in r.text
    assert lookup_at_vault(vault_addr, token).status_code == 200
    assert world.unwrap(sub, token).json()["secret"] == secret


def test_a_failed_live_recheck_withdraws_the_link_for_good(world: World, engine: Any) -> None:
    _, _, secret, task_id, sub, code = world.third_party_token()
    release_id = _release_id(engine, task_id)
    world.transition(task_id, "on_hold", world.tech(sub))

    refused = world.reveal(code)
    world.transition(task_id, "in_progress", world.tech(sub))
    again = world.reveal(code)

    _gone(refused)
    _gone(again)
    assert secret not in refused.text + again.text
    row = release_row(engine, release_id)
    assert (row.status, row.closed_reason) == ("revoked", "recheck_failed")
    entries = [a for a in audit_rows(engine, release_id=release_id) if a.action != "release.granted"]
    assert [(a.action, a.rule) for a in entries] == [
        ("unwrap.refused", "task_not_in_progress"),
        ("release.revoked", "task_not_in_progress"),
        ("unwrap.refused", None),
    ]
    assert json.loads(entries[2].canonical)["details"]["reason"] == "revoked"


def test_after_the_task_closes_the_code_reveals_nothing(world: World, engine: Any) -> None:
    client_id, credential_id, secret, task_id, sub = world.ready()
    contact = f"isp-{uuid.uuid4().hex[:8]}@fibre.example.net"
    approval_id = world.request_approval(
        task_id, credential_ids=[credential_id], categories=["credentials"], contact_email=contact
    )
    world.decide_approval(approval_id, client_id, "approved")
    released = world.release(sub, task_id, credential_id, approval_id=approval_id)
    code = world.mailed_token(contact)
    world.transition(task_id, "done", world.tech(sub))

    answers = [world.reveal(code) for _ in range(2)]

    for r in answers:
        _gone(r)
    assert all(secret not in r.text for r in [released, *answers])
    assert released.json()["wrap_token"] is None
    mails = world.mails_to(contact)
    assert len(mails) == 1 and secret not in mails[0].as_string()
    assert release_row(engine, released.json()["release_id"]).status == "revoked"


def test_a_release_revoked_by_the_worker_is_refused(world: World, engine: Any) -> None:
    from sqlmodel import Session

    from secrets_broker.common.types import utcnow
    from secrets_broker.revocation.service import TASK_LEFT_IN_PROGRESS, tombstone_task

    client_id, _, secret, task_id, _, code = world.third_party_token()
    release_id = _release_id(engine, task_id)
    with Session(engine) as session, session.begin():
        queued = tombstone_task(
            session,
            task_id=task_id,
            client_id=client_id,
            reason=TASK_LEFT_IN_PROGRESS,
            effective_at=utcnow(),
            event_id=uuid.uuid4(),
        )

    r = world.reveal(code)

    _gone(r)
    assert secret not in r.text
    # The release held no Vault token: the worker has nothing to revoke at Vault for it.
    assert queued == [] and _pending_for(engine, release_id) == 0
    assert release_row(engine, release_id).status == "revoked"
    last = audit_rows(engine, release_id=release_id)[-1]
    assert (last.action, json.loads(last.canonical)["details"]["reason"]) == ("unwrap.refused", "revoked")


def test_an_expired_code_is_refused_and_closed(world: World, engine: Any) -> None:
    _, _, secret, task_id, _, code = world.third_party_token()
    release_id = _release_id(engine, task_id)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE releases SET expires_at = now() - interval '1 second' WHERE id = :r"), {"r": release_id}
        )

    r = world.reveal(code)

    _gone(r)
    assert secret not in r.text
    assert release_row(engine, release_id).status == "expired"
    last = audit_rows(engine, release_id=release_id)[-1]
    assert (last.action, json.loads(last.canonical)["details"]["reason"]) == ("unwrap.refused", "expired")


def test_a_link_mailed_before_reveal_codes_reveals_once(world: World, engine: Any) -> None:
    from secrets_broker.release.gate import fingerprint
    from secrets_broker.settings import get_settings

    _, _, secret, task_id, _, _ = world.third_party_token()
    release_id = _release_id(engine, task_id)
    # Before migration 0004 the link carried a wrapping token, whose HMAC is the release's fingerprint.
    legacy = "s." + uuid.uuid4().hex[:24]
    digest = fingerprint(get_settings().fingerprint_key_bytes(), legacy)
    with engine.begin() as conn:
        conn.execute(text("UPDATE releases SET token_fingerprint = :f WHERE id = :r"), {"f": digest, "r": release_id})

    first, second = world.reveal(legacy), world.reveal(legacy)

    assert first.status_code == 200 and first.json()["secret"] == secret
    _gone(second)


class _Watched:
    """The real gateway, noting before each wrap whether another connection could take the chain's lock."""

    def __init__(self, gateway: Any, engine: Any, *, fail: bool = False) -> None:
        self._gateway = gateway
        self._engine = engine
        self._fail = fail
        self.chain_free: list[bool] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._gateway, name)

    def wrapped_read(self, path: str, *, ttl_s: int) -> Any:
        from secrets_broker.vault.errors import VaultUnreachable

        with self._engine.begin() as conn:
            self.chain_free.append(
                conn.execute(
                    text("SELECT pg_try_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": CHAIN_LOCK}
                ).scalar()
            )
        if self._fail:
            raise VaultUnreachable("Vault is sealed")
        return self._gateway.wrapped_read(path, ttl_s=ttl_s)


def _override(broker_app: Any, dep: Callable[..., Any], value: Any) -> None:
    broker_app.dependency_overrides[dep] = lambda: value


def test_vault_down_at_reveal_keeps_the_code_usable(world: World, broker_app: Any, engine: Any, gateway: Any) -> None:
    from secrets_broker.deps import gateway_dep

    _, _, secret, task_id, _, code = world.third_party_token()
    release_id = _release_id(engine, task_id)
    head = _chain_head(engine)
    sealed = _Watched(gateway, engine, fail=True)
    _override(broker_app, gateway_dep, sealed)

    down = world.reveal(code)

    assert (down.status_code, down.json()["error"]) == (503, "unavailable")
    assert secret not in down.text
    assert sealed.chain_free == [True]
    assert release_row(engine, release_id).status == "issued"
    assert _chain_head(engine) == head

    watched = _Watched(gateway, engine)
    _override(broker_app, gateway_dep, watched)
    up = world.reveal(code)
    assert up.status_code == 200 and up.json()["secret"] == secret
    # The chain's lock was free while the broker called Vault: it is taken only after.
    assert watched.chain_free == [True]


def test_unwrap_failing_after_the_wrap_queues_its_revocation_and_keeps_the_code(
    world: World, broker_app: Any, engine: Any
) -> None:
    from secrets_broker.deps import wraps_dep
    from secrets_broker.vault.wrapping import WrapClient

    _, _, secret, task_id, _, code = world.third_party_token()
    release_id = _release_id(engine, task_id)
    with engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM pending_revocations WHERE reason = 'reveal_failed'")).scalar()
    # Nothing listens on port 1: the wrap (through the gateway) succeeds, the unwrap cannot be sent.
    _override(broker_app, wraps_dep, WrapClient(addr="http://127.0.0.1:1", timeout_s=0.5))

    down = world.reveal(code)

    assert (down.status_code, down.json()["error"]) == (503, "unavailable")
    assert secret not in down.text
    assert release_row(engine, release_id).status == "issued"
    with engine.connect() as conn:
        after = conn.execute(text("SELECT count(*) FROM pending_revocations WHERE reason = 'reveal_failed'")).scalar()
    assert after == before + 1
    broker_app.dependency_overrides.clear()
    assert world.reveal(code).json()["secret"] == secret


def test_reveal_is_rate_limited_per_address(world: World, broker_app: Any) -> None:
    from secrets_broker.deps import settings_dep
    from secrets_broker.settings import get_settings

    broker_app.dependency_overrides[settings_dep] = lambda: get_settings().model_copy(
        update={"reveal_rate_limit": "3/minute"}
    )
    guesser = _client_at(broker_app, _address())
    codes = [guesser.post("/v1/reveal", json={"code": f"guess-{uuid.uuid4().hex}"}).status_code for _ in range(5)]
    assert codes == [410, 410, 410, 429, 429]
    limited = guesser.post("/v1/reveal", json={"code": f"guess-{uuid.uuid4().hex}"})
    assert limited.json()["error"] == "rate_limited"
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    # Another address is counted on its own.
    other = _client_at(broker_app, _address()).post("/v1/reveal", json={"code": uuid.uuid4().hex})
    assert other.status_code == 410


def test_reveal_fails_closed_when_the_limiter_cannot_count(world: World, broker_app: Any, engine: Any) -> None:
    from secrets_broker.deps import settings_dep
    from secrets_broker.settings import get_settings

    _, _, secret, task_id, _, code = world.third_party_token()
    broker_app.dependency_overrides[settings_dep] = lambda: get_settings().model_copy(
        update={"redis_url": "redis://127.0.0.1:1/0", "redis_timeout_s": 0.2}
    )
    r = world.reveal(code)
    assert (r.status_code, r.json()["error"]) == (503, "unavailable")
    assert secret not in r.text
    assert release_row(engine, _release_id(engine, task_id)).status == "issued"


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
    assert "JSON.stringify({ code: value })" in script.text
    assert world.broker.get("/reveal/../settings.py").status_code == 404
    assert world.broker.get("/reveal/other.js").status_code == 404
    # The code never travels as a query string: the page ignores one and the API takes a body.
    assert "search" not in script.text
    refused = world.broker.post(f"/v1/reveal?code={uuid.uuid4().hex}")
    assert (refused.status_code, refused.json()["error"]) == (422, "validation_error")


def test_reveal_declares_its_statuses_in_openapi(world: World) -> None:
    operation = world.broker.get("/openapi.json").json()["paths"]["/v1/reveal"]["post"]

    assert operation["security"] == []
    assert {"200", "410", "422", "429", "503"} <= set(operation["responses"])
    assert operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/RevealRequest")
