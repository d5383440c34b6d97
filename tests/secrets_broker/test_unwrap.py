"""POST /v1/unwrap against a real intake and a real OpenBao: once, for its technician, path-checked."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from broker_helpers import World, audit_rows, lookup_at_vault, release_row, unwrap_at_vault
from sqlalchemy import text


def _released(world: World) -> tuple[uuid.UUID, uuid.UUID, str, uuid.UUID, str, str, uuid.UUID]:
    client_id, credential_id, secret, task_id, sub = world.ready()
    r = world.release(sub, task_id, credential_id)
    assert r.status_code == 201, r.text
    return client_id, credential_id, secret, task_id, sub, r.json()["wrap_token"], uuid.UUID(r.json()["release_id"])


def test_unwrap_gives_the_secret_once_to_its_technician(world: World, engine: Any, vault_addr: str) -> None:
    _, credential_id, secret, task_id, sub, token, release_id = _released(world)

    first = world.unwrap(sub, token)

    assert first.status_code == 200, first.text
    assert first.headers["cache-control"] == "no-store"
    assert first.json() == {
        "credential_id": str(credential_id),
        "name": "ISP portal",
        "username": "admin@example.com",
        "secret": secret,
        "url": None,
    }
    # Consumed at Vault: nobody can unwrap it again, there or here.
    assert unwrap_at_vault(vault_addr, token).status_code == 400
    second = world.unwrap(sub, token)
    assert (second.status_code, second.json()["error"]) == (410, "wrap_token_invalid")

    assert release_row(engine, release_id).status == "unwrapped"
    assert world.broker.get(f"/v1/releases/{release_id}", headers=world.tech(sub)).json()["status"] == "unwrapped"
    actions = [(a.action, a.actor, a.release_id) for a in audit_rows(engine, task_id=task_id)]
    assert actions == [
        ("release.granted", sub, release_id),
        ("unwrap.succeeded", sub, release_id),
        ("unwrap.refused", sub, release_id),
    ]
    assert json.loads(audit_rows(engine, task_id=task_id)[-1].canonical)["details"]["reason"] == "unwrapped"


def test_anyone_else_gets_403_and_the_token_survives(world: World, vault_addr: str, engine: Any) -> None:
    _, _, secret, task_id, sub, token, release_id = _released(world)

    other = world.unwrap("tech-someone-else", token)
    admin = world.broker.post("/v1/unwrap", headers=world.admin, json={"wrap_token": token})
    anonymous = world.broker.post("/v1/unwrap", json={"wrap_token": token})

    assert (other.status_code, other.json()["error"]) == (403, "forbidden")
    assert (admin.status_code, admin.json()["error"]) == (403, "forbidden")
    assert anonymous.status_code == 401
    assert secret not in other.text + admin.text + anonymous.text
    assert lookup_at_vault(vault_addr, token).status_code == 200
    assert release_row(engine, release_id).status == "issued"
    refused = [a for a in audit_rows(engine, task_id=task_id) if a.action == "unwrap.refused"]
    assert [(a.actor, json.loads(a.canonical)["details"]["reason"]) for a in refused] == [
        ("tech-someone-else", "not_recipient")
    ]
    assert world.unwrap(sub, token).json()["secret"] == secret


def test_live_recheck_refuses_a_task_no_longer_in_progress(world: World, vault_addr: str, engine: Any) -> None:
    _, _, secret, task_id, sub, token, _release_id = _released(world)
    world.transition(task_id, "on_hold", world.tech(sub))

    r = world.unwrap(sub, token)

    assert (r.status_code, r.json()["error"], r.json()["rule"]) == (403, "release_denied", "task_not_in_progress")
    assert lookup_at_vault(vault_addr, token).status_code == 200  # not consumed
    last = audit_rows(engine, task_id=task_id)[-1]
    assert (last.action, last.rule) == ("unwrap.refused", "task_not_in_progress")
    # Back in progress with the same technician (no worker ran, so the token is still live).
    world.transition(task_id, "in_progress", world.tech(sub))
    assert world.unwrap(sub, token).json()["secret"] == secret


def test_live_recheck_refuses_after_a_reassignment(world: World, vault_addr: str) -> None:
    _, _, _, task_id, sub, token, _ = _released(world)
    world.assign(task_id, "tech-successor")

    r = world.unwrap(sub, token)

    assert (r.status_code, r.json()["rule"]) == (403, "caller_not_assignee")
    assert lookup_at_vault(vault_addr, token).status_code == 200


def test_token_unwrapped_elsewhere_first_is_reported_as_intercepted(
    world: World, vault_addr: str, engine: Any
) -> None:
    client_id, _credential_id, secret, task_id, sub, token, release_id = _released(world)
    assert unwrap_at_vault(vault_addr, token).json()["data"]["data"]["secret"] == secret  # the interceptor

    r = world.unwrap(sub, token)

    assert (r.status_code, r.json()["error"]) == (410, "wrap_token_invalid")
    assert secret not in r.text
    row = release_row(engine, release_id)
    assert (row.status, row.closed_reason) == ("revoked", "intercepted")
    last = audit_rows(engine, task_id=task_id)[-1]
    assert (last.action, last.actor, last.release_id) == ("security.wrap_token_reused", sub, release_id)
    with engine.connect() as conn:
        envelope = conn.execute(
            text("SELECT envelope FROM outbox WHERE type = 'release.denied' AND envelope->>'aggregate_id' = :r"),
            {"r": str(release_id)},
        ).scalar_one()
    assert envelope["client_id"] == str(client_id)
    assert envelope["data"]["release_id"] == str(release_id)
    assert envelope["data"]["reason"] == "wrap_token_reused"
    # Told once: asking again is a plain refusal of a revoked release.
    again = world.unwrap(sub, token)
    assert again.status_code == 410
    assert audit_rows(engine, task_id=task_id)[-1].action == "unwrap.refused"


def test_token_for_another_path_is_400_and_not_consumed(
    world: World, engine: Any, gateway: Any, vault_addr: str
) -> None:
    from secrets_broker.release.gate import fingerprint
    from secrets_broker.settings import get_settings
    from secrets_broker.vault.gateway import credential_path

    client_id, _credential_id, _secret, task_id, sub, _token, release_id = _released(world)
    other_id, other_secret = world.new_credential(client_id)
    # A token for the other credential, planted on this release (as a swapped or forged row would).
    planted = gateway.wrapped_read(credential_path(client_id, other_id), ttl_s=120).token
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE releases SET token_fingerprint = :f WHERE id = :i"),
            {"f": fingerprint(get_settings().fingerprint_key_bytes(), planted), "i": release_id},
        )

    r = world.unwrap(sub, planted)

    assert (r.status_code, r.json()["error"]) == (400, "wrap_token_wrong_path")
    assert other_secret not in r.text
    assert lookup_at_vault(vault_addr, planted).status_code == 200
    last = audit_rows(engine, task_id=task_id)[-1]
    assert (last.action, last.release_id) == ("security.wrap_token_wrong_path", release_id)
    assert release_row(engine, release_id).status == "issued"


def test_unknown_expired_and_revoked_tokens_are_410(world: World, engine: Any) -> None:
    _, _, _, _, sub, token, release_id = _released(world)

    unknown = world.unwrap(sub, "s.NotATokenAnyoneWasGiven000")
    assert (unknown.status_code, unknown.json()["error"]) == (410, "wrap_token_invalid")
    refused = audit_rows(engine, action="unwrap.refused", actor=sub)
    assert json.loads(refused[-1].canonical)["details"]["reason"] == "unknown"

    with engine.begin() as conn:
        conn.execute(text("UPDATE releases SET expires_at = now() - interval '1 second' WHERE id = :i"),
                     {"i": release_id})
    expired = world.unwrap(sub, token)
    assert (expired.status_code, expired.json()["error"]) == (410, "wrap_token_invalid")
    assert release_row(engine, release_id).status == "expired"

    _, _, _, _, sub2, token2, release2 = _released(world)
    with engine.begin() as conn:
        conn.execute(text("UPDATE releases SET status = 'revoked' WHERE id = :i"), {"i": release2})
    revoked = world.unwrap(sub2, token2)
    assert (revoked.status_code, revoked.json()["error"]) == (410, "wrap_token_invalid")


def test_malformed_token_is_422_naming_the_field(world: World) -> None:
    r = world.unwrap("tech-x", "not a token\n")
    assert (r.status_code, r.json()["field"]) == (422, "wrap_token")
    extra = world.broker.post("/v1/unwrap", headers=world.tech("tech-x"), json={"wrap_token": "s.x", "sub": "y"})
    assert extra.status_code == 422


def test_a_third_partys_code_cannot_be_unwrapped_by_the_technician(world: World) -> None:
    _, _, secret, _, sub, code = world.third_party_token()

    r = world.unwrap(sub, code)

    assert (r.status_code, r.json()["error"]) == (403, "forbidden")
    assert secret not in r.text
    # Not consumed: the recipient's reveal still works.
    assert world.reveal(code).json()["secret"] == secret


def test_intake_unreachable_at_unwrap_is_503_and_keeps_the_token(
    world: World, broker_app: Any, vault_addr: str, engine: Any
) -> None:
    from secrets_broker.deps import intake_dep
    from secrets_broker.errors import IntakeUnavailable

    _, _, secret, _, sub, token, release_id = _released(world)

    class Down:
        def authorization(self, _task_id: Any) -> Any:
            raise IntakeUnavailable("intake unreachable")

    broker_app.dependency_overrides[intake_dep] = lambda: Down()
    r = world.unwrap(sub, token)

    assert (r.status_code, r.json()["error"]) == (503, "unavailable")
    assert secret not in r.text
    assert lookup_at_vault(vault_addr, token).status_code == 200
    assert release_row(engine, release_id).status == "issued"


@contextmanager
def _audit_insert_revoked(admin_engine: Any) -> Iterator[None]:
    """REVOKE INSERT on the audit table from the broker's own role, then GRANT it back."""
    with admin_engine.begin() as conn:
        conn.execute(text("REVOKE INSERT ON secrets_broker.audit_entries FROM secrets_broker"))
    try:
        yield
    finally:
        with admin_engine.begin() as conn:
            conn.execute(text("GRANT INSERT ON secrets_broker.audit_entries TO secrets_broker"))


def test_an_unwrap_that_cannot_be_recorded_closes_the_release_and_raises_no_false_alarm(
    world: World, engine: Any, admin_engine: Any, vault_addr: str
) -> None:
    _, _, secret, task_id, sub, token, release_id = _released(world)

    with _audit_insert_revoked(admin_engine):
        failed = world.unwrap(sub, token)

    assert (failed.status_code, failed.json()["error"]) == (503, "unavailable")
    assert secret not in failed.text
    assert lookup_at_vault(vault_addr, token).status_code == 400  # Vault consumed it
    # Recorded durably although the audit refused: the token is spent, the release closed.
    row = release_row(engine, release_id)
    assert (row.status, row.closed_reason) == ("revoked", "unwrap_not_recorded")

    retry = world.unwrap(sub, token)

    assert (retry.status_code, retry.json()["error"]) == (410, "wrap_token_invalid")
    assert secret not in retry.text
    entries = audit_rows(engine, task_id=task_id)
    assert [a.action for a in entries] == ["release.granted", "unwrap.refused"]
    assert json.loads(entries[-1].canonical)["details"]["reason"] == "revoked"
    with engine.connect() as conn:
        alarms = conn.execute(
            text("SELECT count(*) FROM outbox WHERE type = 'release.denied' AND envelope->>'aggregate_id' = :r"),
            {"r": str(release_id)},
        ).scalar_one()
    assert alarms == 0
    assert release_row(engine, release_id).closed_reason == "unwrap_not_recorded"


class _SpendingWraps:
    """The real wrapping client; its unwrap spends the token at Vault but the answer holds no secret."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def lookup(self, token: str) -> Any:
        return self._real.lookup(token)

    def unwrap(self, token: str) -> dict[str, Any] | None:
        if self._real.unwrap(token) is None:
            return None
        return {"data": {"data": {}}}


def test_a_malformed_unwrap_that_cannot_be_recorded_is_closed_too(
    world: World, engine: Any, broker_app: Any, admin_engine: Any, vault_addr: str
) -> None:
    from secrets_broker.deps import wraps_dep
    from secrets_broker.vault.wrapping import get_wraps

    _, _, _, task_id, sub, token, release_id = _released(world)
    broker_app.dependency_overrides[wraps_dep] = lambda: _SpendingWraps(get_wraps())

    with _audit_insert_revoked(admin_engine):
        failed = world.unwrap(sub, token)
    assert (failed.status_code, failed.json()["error"]) == (503, "unavailable")
    assert lookup_at_vault(vault_addr, token).status_code == 400
    assert (release_row(engine, release_id).status, release_row(engine, release_id).closed_reason) == (
        "revoked",
        "unwrap_not_recorded",
    )

    # Audit back: the retry is refused plainly, never reported as an interception.
    retry = world.unwrap(sub, token)
    assert (retry.status_code, retry.json()["error"]) == (410, "wrap_token_invalid")
    assert [a.action for a in audit_rows(engine, task_id=task_id)] == ["release.granted", "unwrap.refused"]
