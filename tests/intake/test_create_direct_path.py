"""POST /v1/requests' direct path (intake.requests.fast_route) agrees with the declared FastAPI route.

The direct path answers plain requests without FastAPI's parameter machinery; everything else falls
through to the declared route. These tests check that it is really taken, that it accepts exactly
what the declaration accepts, and that what it answers is what the declared route answers.
"""

from __future__ import annotations

import json
import uuid
from typing import Annotated

import pytest
from fastapi import FastAPI, Header
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from intake_factories import make_client, purchase_body, submit
from pydantic import TypeAdapter, ValidationError

import mspkit.auth
from intake.requests.routes import KEY_MAX_LENGTH, KEY_PATTERN, plain
from intake.requests.schemas import RequestCreate
from mspkit.auth import Principal


@pytest.fixture
def tenant(api, admin_h, auth):
    client = make_client(api, admin_h)
    return client, auth("client_user", "dora", client["id"])


@pytest.fixture
def declared_calls(monkeypatch):
    """How many times the declared route's role check ran (the direct path never runs it)."""
    calls: list[str] = []
    real = mspkit.auth._verified

    async def counting(request, credentials):
        calls.append(request.url.path)
        return await real(request, credentials)

    monkeypatch.setattr(mspkit.auth, "_verified", counting)
    return calls


def test_a_cached_token_takes_the_direct_path_and_a_new_one_the_declared_route(api, tenant, declared_calls, sql):
    client, headers = tenant
    api.app.state.verified_tokens.clear()
    first = submit(api, headers, purchase_body(), key="d-1")  # unseen token: verified by the declared route
    assert declared_calls == ["/v1/requests"]
    second = submit(api, headers, purchase_body(), key="d-2")  # now cached: the direct path
    assert declared_calls == ["/v1/requests"]
    assert first.status_code == second.status_code == 201
    assert first.json().keys() == second.json().keys()
    rows = sql("SELECT count(*) FROM intake.requests WHERE client_id = :c", c=client["id"])
    assert rows[0][0] == 2


def test_replay_through_either_path_gives_the_same_bytes(api, tenant, declared_calls):
    _, headers = tenant
    first = submit(api, headers, purchase_body(), key="d-3")
    direct = submit(api, headers, purchase_body(), key="d-3")
    api.app.state.verified_tokens.clear()
    declared = submit(api, headers, purchase_body(), key="d-3")
    assert first.content == direct.content == declared.content
    assert declared_calls  # the last one went through the declared route


@pytest.mark.parametrize(
    ("mutate", "status"),
    [
        (lambda h, b: ({**h, "Idempotency-Key": "x" * (KEY_MAX_LENGTH + 1)}, b), 422),
        (lambda h, b: ({**h, "Idempotency-Key": " leading-space"}, b), 422),
        (lambda h, b: ({k: v for k, v in h.items() if k != "Idempotency-Key"}, b), 422),
        (lambda h, b: (h, {**b, "items": []}), 422),
        (lambda h, b: (h, {**b, "type": "no_such_type"}), 422),
        (lambda h, b: (h, {**b, "client_id": str(uuid.uuid4())}), 422),
        (lambda h, b: ({**h, "Authorization": "Bearer not-a-token"}, b), 401),
    ],
    ids=["key-too-long", "key-pattern", "key-missing", "empty-items", "bad-type", "client-names-client", "bad-token"],
)
def test_refusals_are_the_declared_routes_own(api, tenant, mutate, status):
    """Each refusal is answered from a warm cache (the direct path's chance) and a cold one: same bytes."""
    _, headers = tenant
    base = {**headers, "Idempotency-Key": "d-refused"}
    submit(api, headers, purchase_body(), key="d-warm")  # caches the token
    h, body = mutate(base, purchase_body())
    warm = api.post("/v1/requests", json=body, headers=h)
    api.app.state.verified_tokens.clear()
    cold = api.post("/v1/requests", json=body, headers=h)
    assert warm.status_code == cold.status_code == status
    assert warm.content == cold.content


def test_a_role_that_may_not_request_is_refused_from_a_warm_cache(api, auth, admin_h):
    client = make_client(api, admin_h)
    tech = auth("technician", "tess")
    api.get("/v1/clients", headers=tech)  # caches the technician's token
    response = api.post(
        "/v1/requests",
        json={**purchase_body(), "client_id": client["id"]},
        headers={**tech, "Idempotency-Key": "d-tech"},
    )
    assert response.status_code == 403


def test_a_non_json_content_type_is_left_to_the_declared_route(api, tenant):
    _, headers = tenant
    submit(api, headers, purchase_body(), key="d-warm-2")
    response = api.post(
        "/v1/requests",
        content=b"type=purchase",
        headers={**headers, "Idempotency-Key": "d-form", "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 422


# ---- the checks themselves, against FastAPI's own validation of the declaration ------------------------


_probe_app = FastAPI()
DeclaredKey = Annotated[
    str, Header(alias="Idempotency-Key", min_length=1, max_length=KEY_MAX_LENGTH, pattern=KEY_PATTERN)
]


@_probe_app.get("/")
def _probe(key: DeclaredKey) -> dict[str, str]:
    return {"key": key}


_probe_client = TestClient(_probe_app)


def _declared_key_accepts(value: str) -> bool:
    return _probe_client.get("/", headers={"Idempotency-Key": value}).status_code == 200


_PROBE_KEYS = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), min_size=0, max_size=130)


@settings(max_examples=60, deadline=None)
@given(_PROBE_KEYS)
def test_idempotency_key_rule_matches_the_declared_header(value):
    assert (plain.idempotency_key(value) is not None) == _declared_key_accepts(value)


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"null", b"[]", b'{"type": "purchase"}', b"\xff\xfe", b'{"type": "purchase", "items": "x"}'],
)
def test_a_body_the_declared_route_would_refuse_is_not_parsed(raw):
    assert plain.parse(raw) is None


def test_a_valid_body_parses_to_the_declared_model():
    raw = json.dumps(purchase_body()).encode()
    assert plain.parse(raw) == TypeAdapter(RequestCreate).validate_json(raw)
    with pytest.raises(ValidationError):
        TypeAdapter(RequestCreate).validate_json(b'{"type": "purchase"}')


def test_principal_needs_a_bearer_token_already_cached_with_an_allowed_role(api):
    cache = api.app.state.verified_tokens
    cache.clear()
    request = type("R", (), {"app": api.app})()
    user = Principal(sub="u", role="client_user", client_id=uuid.uuid4(), claims={"exp": 2**40})
    tech = Principal(sub="t", role="technician", claims={"exp": 2**40})
    cache.put("tok-user", user)
    cache.put("tok-tech", tech)
    assert plain.principal(request, "Bearer tok-user") is user
    assert plain.principal(request, "bearer tok-user") is user
    assert plain.principal(request, "Bearer tok-user ") is user  # parsed as HTTPBearer parses it
    assert plain.principal(request, "Bearer tok-tech") is None  # technicians may not submit requests
    assert plain.principal(request, "Bearer unknown") is None
    assert plain.principal(request, "Basic tok-user") is None
    assert plain.principal(request, "Bearer ") is None
    assert plain.principal(request, None) is None
