"""ApiClient: the person's own token per API (refresh_token grant naming it), cached encrypted, and its failures."""

from __future__ import annotations

import asyncio
import base64
import json
import urllib.parse
from dataclasses import replace

import httpx
import jwt
import pytest
import sqlalchemy as sa
from portal_helpers import session_id, sign_in

from portal.api import ApiClient
from portal.auth.crypto import digest
from portal.auth.store import load_session
from portal.auth.tables import sessions
from portal.errors import ApiUnavailable, SessionExpired

pytestmark = pytest.mark.timeout(120)


def _record(rt, client):
    return load_session(rt.engine, rt.box, session_id(client), now=rt.clock(), idle_s=rt.settings.session_idle_s)


async def _calls(rt, record, calls):
    """Run `calls(api)` with an ApiClient whose HTTP client records every request it sends."""
    sent: list[httpx.Request] = []

    async def hook(request: httpx.Request) -> None:
        sent.append(request)

    async with httpx.AsyncClient(event_hooks={"request": [hook]}, timeout=10) as http:
        mine = replace(rt, http=http)
        result = await calls(ApiClient(mine, record, return_to="/here"))
    return result, sent


def test_each_api_gets_the_persons_own_token_for_it(portal_live, portal_rt, intake_live, stack_env):
    client = sign_in(portal_live, "admin")
    record = _record(portal_rt, client)

    async def calls(api):
        listed = await api.get("intake", "/v1/clients", params={"limit": 5}, headers={"X-Request-ID": "req-portal-1"})
        again = await api.get("intake", "/v1/clients")
        return listed, again

    (listed, again), sent = asyncio.run(_calls(portal_rt, record, calls))
    assert listed.status_code == 200, listed.text
    assert again.status_code == 200
    assert "items" in listed.json()
    tokens = [r.headers["authorization"].removeprefix("Bearer ") for r in sent]
    assert tokens[0] == tokens[1]  # cached until shortly before it expires
    claims = jwt.decode(tokens[0], options={"verify_signature": False})
    assert claims["aud"] == ["intake"]
    assert claims["exp"] - claims["iat"] <= 300
    assert listed.headers.get("x-request-id")
    # Stored encrypted in the session row, per audience, for every replica.
    stored = portal_rt.box.open(_raw_row(portal_rt, client)["tokens_enc"])
    assert set(stored["access"]) == {"intake"} and stored["access"]["intake"]["token"] == tokens[0]


def test_another_api_gets_another_token(portal_live, portal_rt):
    client = sign_in(portal_live, "tech1")
    record = _record(portal_rt, client)
    # Nothing listens on port 9: the call fails as unavailable, but the token it sent shows its audience.
    settings = portal_rt.settings.model_copy(update={"vendor_sync_url": "http://127.0.0.1:9"})
    rt = replace(portal_rt, settings=settings)

    async def calls(api):
        with pytest.raises(ApiUnavailable):
            await api.get("vendor_sync", "/v1/vendors")

    _, sent = asyncio.run(_calls(rt, record, calls))
    claims = jwt.decode(sent[0].headers["authorization"][7:], options={"verify_signature": False})
    assert claims["aud"] == ["vendor_sync"]


def _raw_row(rt, client):
    with rt.engine.connect() as conn:
        query = sa.select(sessions).where(sessions.c.id_hash == digest(session_id(client)))
        return conn.execute(query).mappings().one()


def _forms(value: str) -> list[bytes]:
    raw = value.encode()
    return [
        raw,
        base64.b64encode(raw),
        base64.urlsafe_b64encode(raw),
        json.dumps(value).encode(),
        urllib.parse.quote(value).encode(),
        raw.hex().encode(),
        raw[10:40],  # any long slice of it
    ]


def test_tokens_are_not_in_the_database_in_any_readable_form(portal_live, portal_rt, intake_live, admin_engine):
    client = sign_in(portal_live, "admin")
    record = _record(portal_rt, client)
    asyncio.run(_calls(portal_rt, record, lambda api: api.get("intake", "/v1/clients")))
    tokens = portal_rt.box.open(_raw_row(portal_rt, client)["tokens_enc"])
    secrets = [tokens["refresh_token"], tokens["access"]["intake"]["token"], record.csrf, session_id(client)]
    with admin_engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT row_to_json(s)::text FROM portal.sessions s")).scalars().all()
        raw = conn.execute(sa.text("SELECT tokens_enc, csrf_enc FROM portal.sessions")).all()
    dump = ("\n".join(rows)).encode() + b"".join(bytes(a) + bytes(b) for a, b in raw)
    for secret in secrets:
        for form in _forms(secret):
            assert form not in dump


def test_a_refused_refresh_ends_the_session(portal_live, portal_rt, stack_env):
    client = sign_in(portal_live, "tech2")
    record = _record(portal_rt, client)
    revoked = httpx.post(
        stack_env["MSP_JWT_ISSUER"] + "/revoke",
        data={"token": record.tokens["refresh_token"]},
        auth=("portal", portal_rt.settings.client_secret.get_secret_value()),
    )
    assert revoked.status_code == 200

    async def calls(api):
        with pytest.raises(SessionExpired) as caught:
            await api.get("intake", "/v1/clients")
        return caught.value

    expired, sent = asyncio.run(_calls(portal_rt, record, calls))
    assert expired.return_to == "/here" and sent == []  # nothing reached the API
    assert client.get("/").status_code == 303  # the session is gone


def test_a_503_is_unavailable(portal_live, portal_rt):
    client = sign_in(portal_live, "admin")
    record = _record(portal_rt, client)

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"error": "unavailable", "detail": "down"})

    async def run():
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
            api = ApiClient(replace(portal_rt, http=http), record)
            with pytest.raises(ApiUnavailable):
                await api.get("secrets_broker", "/v1/credentials")
            with pytest.raises(ValueError):
                await api.get("billing", "/x")  # type: ignore[arg-type]
            with pytest.raises(ValueError):
                await api.get("intake", "//evil.example/x")

    asyncio.run(run())


def test_the_target_parameter_is_a_setting(portal_rt):
    s = portal_rt.settings
    assert s.target_params("intake") == {"resource": "intake"}
    assert s.model_copy(update={"token_target_param": "audience"}).target_params("intake") == {"audience": "intake"}
    scoped = s.model_copy(update={"token_target_param": "scope", "token_scope_template": "api://msp-{api}/.default"})
    assert scoped.target_params("vendor_sync") == {"scope": "api://msp-vendor_sync/.default"}
