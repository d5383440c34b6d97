"""Sign-in against the real dev issuer: state, nonce, code replay, audience, return_to, rotation, expiry, logout."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa
from portal_helpers import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    callback_query,
    finish_sign_in,
    new_browser,
    press_sign_in_as,
    session_id,
    sign_in,
    start_sign_in,
)

from portal.auth.crypto import digest
from portal.auth.oidc import OIDCClient, SignInRefused
from portal.auth.tables import logins, sessions

pytestmark = pytest.mark.timeout(120)


def _row(rt, client: httpx.Client):
    with rt.engine.connect() as conn:
        query = sa.select(sessions).where(sessions.c.id_hash == digest(session_id(client)))
        return conn.execute(query).mappings().first()


def _refused(resp: httpx.Response, words: str) -> None:
    assert resp.status_code == 400, resp.text
    assert words in resp.text
    assert SESSION_COOKIE not in resp.headers.get("set-cookie", "")


def test_signing_in_lands_on_return_to_with_a_host_cookie(portal_live, portal_rt):
    before = int(time.time())
    client = sign_in(portal_live, "admin", return_to="/clients?status=active")
    assert client.landed_on == "/clients?status=active"
    home = client.get("/")
    assert home.status_code == 200
    for href in ("/clients", "/staff", "/vendors", "/audit", "/disclosures"):
        assert f'href="{href}"' in home.text
    assert 'action="/logout"' in home.text
    row = _row(portal_rt, client)
    assert (row["sub"], row["role"], row["client_id"]) == ("admin", "admin", None)
    assert before <= row["auth_time"] <= time.time()  # the sign-in just made, not a stale one
    # Only a hash of the id is stored.
    assert session_id(client) not in str(dict(row))


def test_home_sends_someone_signed_out_to_sign_in_and_back(portal_live):
    resp = httpx.get(portal_live + "/?x=1")
    assert resp.status_code == 303
    assert resp.headers["location"] == "/login?return_to=%2F%3Fx%3D1"
    headers = {"HX-Request": "true", "HX-Current-URL": portal_live + "/tasks?a=b"}
    htmx = httpx.get(portal_live + "/tasks", headers=headers)
    assert htmx.status_code == 401 and htmx.headers["HX-Redirect"] == "/login?return_to=%2Ftasks%3Fa%3Db"


def test_login_asks_for_code_with_pkce_state_and_nonce(portal_live, stack_env):
    client = new_browser(portal_live)
    location = start_sign_in(client, return_to="/tasks")
    assert location.startswith(stack_env["MSP_JWT_ISSUER"] + "/authorize?")
    query = callback_query(location)
    assert query["response_type"] == "code" and query["client_id"] == "portal"
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert query["state"] and query["nonce"] and query["state"] != query["nonce"]
    assert query["redirect_uri"] == portal_live + "/auth/callback"
    assert "openid" in query["scope"].split() and "prompt" not in query
    fresh = callback_query(start_sign_in(client, prompt="login"))
    assert fresh["prompt"] == "login" and fresh["max_age"] == "0"


@pytest.mark.parametrize(
    "return_to", ["//evil.example/x", "http://evil.example/", "/\\evil.example", "https:evil.example", "javascript:x"]
)
def test_return_to_off_site_lands_on_home(portal_live, return_to):
    assert sign_in(portal_live, "tech1", return_to=return_to).landed_on == "/"


def test_an_unknown_state_is_refused(portal_live):
    client = new_browser(portal_live)
    callback = press_sign_in_as(start_sign_in(client), "admin")
    query = callback_query(callback)
    resp = client.get("/auth/callback", params={**query, "state": "forged-state"})
    _refused(resp, "expired or was already used")


def test_a_callback_in_another_browser_is_refused(portal_live):
    victim = new_browser(portal_live)
    callback = press_sign_in_as(start_sign_in(new_browser(portal_live)), "admin")
    _refused(finish_sign_in(victim, callback), "started in another browser")


def test_a_callback_is_taken_once(portal_live):
    client = new_browser(portal_live)
    callback = press_sign_in_as(start_sign_in(client), "tech2")
    assert finish_sign_in(client, callback).status_code == 303
    _refused(finish_sign_in(client, callback), "expired or was already used")


def test_a_bad_nonce_is_refused(portal_live, portal_rt):
    client = new_browser(portal_live)
    location = start_sign_in(client)
    state_hash = digest(callback_query(location)["state"])
    with portal_rt.engine.begin() as conn:
        sealed = conn.execute(sa.select(logins.c.secrets_enc).where(logins.c.state_hash == state_hash)).scalar_one()
        held = portal_rt.box.open(sealed)
        held["nonce"] = "another-nonce"
        resealed = portal_rt.box.seal(held)
        conn.execute(logins.update().where(logins.c.state_hash == state_hash).values(secrets_enc=resealed))
    _refused(finish_sign_in(client, press_sign_in_as(location, "admin")), "could not be completed")


def test_a_replayed_code_is_refused_and_ends_what_it_gave(portal_live, portal_rt):
    first = new_browser(portal_live)
    callback = press_sign_in_as(start_sign_in(first), "admin")
    assert finish_sign_in(first, callback).status_code == 303
    # An attacker who saw the code starts their own sign-in and pastes the old code into its callback.
    attacker = new_browser(portal_live)
    state = callback_query(start_sign_in(attacker))["state"]
    code = callback_query(callback)["code"]
    _refused(attacker.get("/auth/callback", params={"code": code, "state": state}), "could not be completed")
    # The issuer revoked what the code gave (RFC 6749 §4.1.2): the first session's refresh token is dead.
    tokens = portal_rt.box.open(_row(portal_rt, first)["tokens_enc"])
    with pytest.raises(Exception, match="invalid_grant"):
        asyncio.run(OIDCClient(portal_rt.settings).refresh(tokens["refresh_token"], "intake"))


def _sign_token(devstack_dir, **claims):
    from mspctl.layout import Layout
    from mspctl.tokens import sign

    return sign(Layout(devstack_dir), claims)


@pytest.mark.parametrize(
    ("change", "accepted"),
    [
        ({}, True),
        ({"aud": ["intake"]}, False),
        ({"aud": ["portal", "intake"]}, True),
        ({"iss": "http://evil"}, False),
        ({"nonce": "other"}, False),
        ({"exp": 1}, False),
    ],
)
def test_id_token_checks(portal_rt, devstack_dir, stack_env, change, accepted):
    now = int(time.time())
    claims = {
        "iss": stack_env["MSP_JWT_ISSUER"],
        "sub": "admin",
        "role": "admin",
        "aud": ["portal"],
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "nonce": "n-1",
        "auth_time": now,
        **change,
    }
    if change.get("aud") == ["portal", "intake"]:
        claims["azp"] = "portal"  # OIDC: several audiences need azp naming this client
    token = _sign_token(devstack_dir, **claims)
    check = OIDCClient(portal_rt.settings).verify_id_token(token, nonce="n-1")
    if accepted:
        assert asyncio.run(check)["sub"] == "admin"
    else:
        with pytest.raises(SignInRefused):
            asyncio.run(check)


def test_an_id_token_signed_by_another_key_is_refused(portal_rt, stack_env):
    import jwt
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    now = int(time.time())
    claims = {
        "iss": stack_env["MSP_JWT_ISSUER"],
        "sub": "admin",
        "role": "admin",
        "aud": ["portal"],
        "iat": now,
        "exp": now + 300,
        "nonce": "n",
    }
    kid = jwt.get_unverified_header(_sign_token_any(portal_rt))["kid"]
    forged = jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": kid})
    with pytest.raises(SignInRefused):
        asyncio.run(OIDCClient(portal_rt.settings).verify_id_token(forged, nonce="n"))


def _sign_token_any(portal_rt) -> str:
    from mspctl.tokens import mint

    return mint(None, role="admin", sub="x")


def test_signing_in_again_rotates_the_session_id(portal_live):
    client = sign_in(portal_live, "admin")
    old = session_id(client)
    sign_in(portal_live, "tech1", client=client)
    assert session_id(client) != old
    assert 'href="/tasks"' in client.get("/").text
    stale = httpx.get(portal_live + "/", cookies={SESSION_COOKIE: old})
    assert stale.status_code == 303 and stale.headers["location"].startswith("/login")


@pytest.mark.parametrize("column", ["last_seen_at", "expires_at"])
def test_idle_and_absolute_expiry_end_the_session(portal_live, portal_rt, column):
    client = sign_in(portal_live, "tech2")
    assert client.get("/").status_code == 200
    idle = portal_rt.settings.session_idle_s
    past = datetime.now(UTC) - timedelta(seconds=idle + 1 if column == "last_seen_at" else 1)
    with portal_rt.engine.begin() as conn:
        conn.execute(sessions.update().where(sessions.c.id_hash == digest(session_id(client))).values({column: past}))
    resp = client.get("/")
    assert resp.status_code == 303 and resp.headers["location"] == "/login?return_to=%2F"
    assert _row(portal_rt, client) is None  # deleted on the way


def test_logout_needs_csrf_then_revokes_and_clears(portal_live, portal_rt, stack_env):
    client = sign_in(portal_live, "admin")
    row = _row(portal_rt, client)
    refresh_token = portal_rt.box.open(row["tokens_enc"])["refresh_token"]

    refused = client.post("/logout", data={"csrf_token": "wrong"})
    assert refused.status_code == 403
    assert "Go back, reload the form and submit it again." in refused.text
    assert "Sign out" in refused.text  # still signed in: the 403 page has the usual header
    assert client.post("/logout").status_code == 403
    assert _row(portal_rt, client) is not None and client.get("/").status_code == 200  # nothing changed

    csrf = portal_rt.box.open(row["csrf_enc"])
    done = client.post("/logout", headers={"X-CSRF-Token": csrf})
    assert done.status_code == 303 and done.headers["location"] == "/signed-out"
    cleared = client.set_cookies[SESSION_COOKIE]
    assert cleared["max-age"] == "0" and "secure" in cleared["raw"].lower()
    assert _row(portal_rt, client) is None
    after = httpx.post(
        stack_env["MSP_TOKEN_URL"],
        data={"grant_type": "refresh_token", "refresh_token": refresh_token, "resource": "intake"},
        auth=("portal", portal_rt.settings.client_secret.get_secret_value()),
    )
    assert after.status_code == 400 and after.json()["error"] == "invalid_grant"
    assert client.get("/signed-out").status_code == 200


def test_logout_with_the_form_field_works_too(portal_live, portal_rt):
    client = sign_in(portal_live, "tech1")
    csrf = portal_rt.box.open(_row(portal_rt, client)["csrf_enc"])
    home = client.get("/").text
    assert f'value="{csrf}"' in home and f'"X-CSRF-Token": "{csrf}"' in home
    assert client.post("/logout", data={"csrf_token": csrf}).status_code == 303
    assert client.get("/").status_code == 303


def test_prompt_login_gives_a_fresh_auth_time(portal_live, portal_rt):
    client = sign_in(portal_live, "tech1")
    with portal_rt.engine.begin() as conn:  # as if that sign-in were an hour old
        conn.execute(sessions.update().where(sessions.c.id_hash == digest(session_id(client))).values(auth_time=1))
    before = int(time.time())
    sign_in(portal_live, "tech1", prompt="login", return_to="/tasks/1", client=client)
    assert client.landed_on == "/tasks/1"
    assert before <= _row(portal_rt, client)["auth_time"] <= time.time()


def test_a_client_person_gets_their_areas(portal_live, portal_rt, people):
    admin = sign_in(portal_live, "acme-admin")
    page = admin.get("/").text
    for href in ("/requests", "/approvals", "/disclosures", "/access"):
        assert f'href="{href}"' in page
    assert 'href="/clients"' not in page
    row = _row(portal_rt, admin)
    assert row["client_id"] == people["acme-admin"].client_id and row["role"] == "client_admin"
    user_page = sign_in(portal_live, "acme-user").get("/").text
    assert 'href="/requests"' in user_page and 'href="/approvals"' not in user_page


def test_the_login_cookie_is_cleared_at_callback(portal_live):
    client = sign_in(portal_live, "admin")
    assert client.set_cookies[LOGIN_COOKIE]["max-age"] == "0"
    assert uuid  # (keeps the import list honest for later tests)
