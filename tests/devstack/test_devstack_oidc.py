"""The dev issuer as the portal's OpenID provider: /authorize, code + PKCE, refresh per API, revocation.

The issuer app runs in-process (Starlette's TestClient) on a temporary devstack layout.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from starlette.testclient import TestClient

from mspctl import issuer, oidc, people
from mspctl.demo import CLIENTS
from mspctl.files import write_json_private
from mspctl.layout import Layout
from mspctl.stack import Stack
from mspctl.tokens import ensure_key

pytestmark = pytest.mark.timeout(60)
ISSUER = "http://127.0.0.1:18999"
CALLBACK = "http://127.0.0.1:8000/auth/callback"


class Clock:
    """A clock the test moves by hand (codes expire without waiting)."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Issuer:
    client: TestClient
    layout: Layout
    portal_secret: str
    clients: dict[str, str]  # demo client name -> id
    clock: Clock
    profile: str


def _devstack(root: Path) -> tuple[Layout, dict[str, str]]:
    layout = Layout(root)
    layout.create()
    ensure_key(layout)
    services = {svc: issuer.new_client_secret() for svc in issuer.SERVICES}
    write_json_private(layout.secrets_file, {"clients": dict(services)})
    issuer.write_clients(layout, services)
    clients = {spec["name"]: str(uuid.uuid4()) for spec in CLIENTS}
    people.record(layout, clients)
    return layout, clients


@pytest.fixture(params=["dev", "entra"])
def idp(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Issuer]:
    """The issuer of a seeded devstack, in each token profile."""
    monkeypatch.delenv("MSP_PORTAL_URL", raising=False)
    layout, clients = _devstack(tmp_path / "devstack")
    clock = Clock()
    app = issuer.create_app(layout.root, ISSUER, request.param, clock=clock)
    with TestClient(app, base_url=ISSUER, follow_redirects=False) as client:
        yield Issuer(client, layout, issuer.portal_client_secret(layout), clients, clock, request.param)


class _Forms(HTMLParser):
    """The sign-in page's forms: action, hidden fields and the button's label and value."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self._in_button = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"method": a.get("method"), "action": a.get("action"), "fields": {}, "label": ""})
        elif tag == "input" and a.get("type") == "hidden":
            self.forms[-1]["fields"][a["name"]] = a["value"]
        elif tag == "button":
            self.forms[-1]["button"] = (a.get("type"), a.get("name"), a.get("value"))
            self._in_button = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "button":
            self._in_button = False

    def handle_data(self, data: str) -> None:
        if self._in_button:
            self.forms[-1]["label"] += data


def _forms(html: str) -> list[dict[str, Any]]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def _authorize_params(challenge: str, **extra: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": "portal",
        "redirect_uri": CALLBACK,
        "state": secrets.token_urlsafe(16),
        "nonce": secrets.token_urlsafe(16),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "scope": "openid profile email offline_access",
        **extra,
    }


def _sign_in(idp: Issuer, sub: str, **extra: str) -> tuple[str, str, dict[str, str]]:
    """Open /authorize, press `Sign in as <sub>`; (code, verifier, the authorize params)."""
    verifier, challenge = _pkce()
    params = _authorize_params(challenge, **extra)
    page = idp.client.get("/authorize", params=params)
    assert page.status_code == 200, page.text
    (form,) = [f for f in _forms(page.text) if f["label"] == f"Sign in as {sub}"]
    assert form["method"] == "post" and form["action"] == "/authorize"
    _, name, value = form["button"]
    pressed = idp.client.post(form["action"], data={**form["fields"], name: value})
    assert pressed.status_code == 303, pressed.text
    location = urlsplit(pressed.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == CALLBACK
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert query["state"] == params["state"] and query["iss"] == ISSUER
    return query["code"], verifier, params


def _exchange(idp: Issuer, code: str, verifier: str, **extra: str) -> Any:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK, "code_verifier": verifier}
    return idp.client.post("/oauth/token", data={**data, **extra}, auth=("portal", idp.portal_secret))


def _refresh(idp: Issuer, refresh_token: str, **target: str) -> Any:
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token, **target}
    return idp.client.post("/oauth/token", data=data, auth=("portal", idp.portal_secret))


def _verify(idp: Issuer, token: str, audience: str) -> dict[str, Any]:
    keys = jwt.PyJWKSet.from_dict(idp.client.get("/.well-known/jwks.json").json())
    key = keys[jwt.get_unverified_header(token)["kid"]].key
    return jwt.decode(
        token,
        key,
        algorithms=["EdDSA"],
        audience=audience,
        issuer=ISSUER,
        options={"require": ["exp", "nbf", "iat", "iss", "aud", "sub"]},
    )


def _person(idp: Issuer, claims: dict[str, Any]) -> tuple[str, str, str | None]:
    """(sub, role, client id) of a token, read the way the profile's claim mapping reads it."""
    if idp.profile == "entra":
        (role,) = claims["roles"]
        return claims["oid"], role, claims.get("extn.msp_client_id")
    return claims["sub"], claims["role"], claims.get("msp_client_id")


def test_discovery_describes_the_provider(idp):
    doc = idp.client.get("/.well-known/openid-configuration").json()
    assert doc["issuer"] == ISSUER and doc["mspctl_dev"] is True
    assert doc["authorization_endpoint"] == f"{ISSUER}/authorize"
    assert doc["token_endpoint"] == f"{ISSUER}/oauth/token"
    assert doc["revocation_endpoint"] == f"{ISSUER}/revoke"
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["response_types_supported"] == ["code"]
    assert {"authorization_code", "refresh_token", "client_credentials"} == set(doc["grant_types_supported"])


def test_sign_in_page_offers_each_demo_person(idp):
    _, challenge = _pkce()
    page = idp.client.get("/authorize", params=_authorize_params(challenge))
    assert page.status_code == 200
    assert "<h1>Dev sign-in</h1>" in page.text and "<script" not in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    labels = [f["label"] for f in _forms(page.text)]
    expected = [f"Sign in as {p.sub}" for p in people.load(idp.layout)]
    assert labels == expected
    assert {"Sign in as admin", "Sign in as tech1", "Sign in as tech2"} <= set(labels)
    assert len(labels) == 3 + 2 * len(CLIENTS)
    assert all(f["button"][0] == "submit" for f in _forms(page.text))  # real buttons: keyboard-reachable


def test_before_seeding_only_staff_can_sign_in(idp):
    (idp.layout.root / people.PEOPLE_FILE).unlink()
    _, challenge = _pkce()
    page = idp.client.get("/authorize", params=_authorize_params(challenge))
    assert [f["label"] for f in _forms(page.text)] == ["Sign in as admin", "Sign in as tech1", "Sign in as tech2"]
    assert "Only staff can sign in" in page.text


def test_the_page_escapes_what_the_request_carries(idp):
    _, challenge = _pkce()
    state = '"><script>alert(1)</script>'
    page = idp.client.get("/authorize", params=_authorize_params(challenge, state=state))
    assert "<script>" not in page.text
    assert all(f["fields"]["state"] == state for f in _forms(page.text))


def test_code_flow_gives_id_access_and_refresh_tokens(idp):
    code, verifier, params = _sign_in(idp, "acme-user", resource="intake")
    resp = _exchange(idp, code, verifier)
    assert resp.status_code == 200, resp.text
    assert resp.headers["cache-control"] == "no-store"
    body = resp.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] <= 300
    acme = idp.clients["Acme Dental"]

    id_claims = _verify(idp, body["id_token"], audience="portal")
    assert id_claims["nonce"] == params["nonce"]
    assert _person(idp, id_claims) == ("acme-user", "client_user", acme)
    assert id_claims["exp"] - id_claims["iat"] <= 300 and id_claims["auth_time"] == int(idp.clock.now)
    assert id_claims["email"] and id_claims["email_verified"] is True

    access = _verify(idp, body["access_token"], audience="intake")
    assert access["aud"] == ["intake"]  # the resource named at /authorize
    assert _person(idp, access) == ("acme-user", "client_user", acme)
    assert access["exp"] - access["iat"] <= 300
    assert isinstance(body["refresh_token"], str) and len(body["refresh_token"]) >= 32
    if idp.profile == "entra":
        # Entra's subject is pairwise: it differs between the id token and an API's token.
        assert id_claims["sub"] != access["sub"] and "role" not in access
    else:
        assert id_claims["sub"] == access["sub"] == "acme-user"


@pytest.mark.parametrize(
    ("target", "aud"),
    [({"resource": "secrets_broker"}, "secrets_broker"), ({"scope": "vendor_sync/.default"}, "vendor_sync")],
)
def test_refresh_gives_a_token_for_the_one_api_named(idp, target, aud):
    code, verifier, _ = _sign_in(idp, "tech1")
    refresh_token = _exchange(idp, code, verifier).json()["refresh_token"]
    resp = _refresh(idp, refresh_token, **target)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert "refresh_token" not in body and "id_token" not in body
    claims = _verify(idp, body["access_token"], audience=aud)
    assert claims["aud"] == [aud]
    assert _person(idp, claims) == ("tech1", "technician", None)
    assert claims["exp"] - claims["iat"] <= 300 and body["expires_in"] <= 300


def test_refresh_for_an_unknown_api_is_refused(idp):
    code, verifier, _ = _sign_in(idp, "admin")
    refresh_token = _exchange(idp, code, verifier).json()["refresh_token"]
    resp = _refresh(idp, refresh_token, resource="billing")
    assert resp.status_code == 400
    assert resp.json()["error"] == "invalid_target" and "billing" in resp.json()["error_description"]


def test_a_replayed_code_is_refused_and_revokes_its_refresh_token(idp):
    code, verifier, _ = _sign_in(idp, "northwind-admin")
    first = _exchange(idp, code, verifier)
    assert first.status_code == 200
    refresh_token = first.json()["refresh_token"]
    assert _refresh(idp, refresh_token, resource="intake").status_code == 200

    replay = _exchange(idp, code, verifier)
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    assert "already used" in replay.json()["error_description"]
    assert "access_token" not in replay.json()
    after = _refresh(idp, refresh_token, resource="intake")
    assert after.status_code == 400 and after.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"code_verifier": "x" * 43}, "does not match the code_challenge"),
        ({"code_verifier": ""}, "code_verifier is missing"),
        ({"redirect_uri": "http://127.0.0.1:8000/auth/other"}, "redirect_uri differs"),
    ],
)
def test_a_code_presented_wrongly_is_refused_and_spent(idp, change, words):
    code, verifier, _ = _sign_in(idp, "acme-admin")
    resp = _exchange(idp, code, verifier, **change)
    assert resp.status_code == 400
    assert resp.json()["error"] == "invalid_grant" and words in resp.json()["error_description"]
    assert "access_token" not in resp.json()
    # A code shown with the wrong proof may have been stolen: the right proof no longer redeems it.
    assert _exchange(idp, code, verifier).json()["error"] == "invalid_grant"


@pytest.mark.parametrize("auth", [("portal", "not-the-secret"), ("svc:intake", None), None])
def test_a_wrong_client_is_refused_and_the_code_stays_good(idp, auth):
    code, verifier, _ = _sign_in(idp, "acme-user")
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK, "code_verifier": verifier}
    if auth is not None and auth[1] is None:
        auth = (auth[0], Stack(idp.layout.root).client_secret("intake"))
    resp = idp.client.post("/oauth/token", data=data, auth=auth)
    if auth and auth[0] == "svc:intake":
        assert resp.status_code == 400
        assert resp.json() == {
            "error": "unauthorized_client",
            "error_description": "svc:intake may not use authorization_code",
        }
    else:
        assert resp.status_code == 401
        assert resp.json() == {"error": "invalid_client"}
    # Someone without the portal's secret cannot spend the portal's code.
    assert _exchange(idp, code, verifier).status_code == 200


def test_client_secret_post_works_too(idp):
    code, verifier, _ = _sign_in(idp, "tech2")
    resp = idp.client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK,
            "code_verifier": verifier,
            "client_id": "portal",
            "client_secret": idp.portal_secret,
        },
    )
    assert resp.status_code == 200, resp.text
    assert _person(idp, _verify(idp, resp.json()["access_token"], audience="portal"))[0] == "tech2"


def test_a_code_expires_after_a_minute(idp):
    code, verifier, _ = _sign_in(idp, "admin")
    idp.clock.now += oidc.CODE_TTL + 1
    resp = _exchange(idp, code, verifier)
    assert resp.status_code == 400
    assert resp.json() == {"error": "invalid_grant", "error_description": "unknown or expired code"}


def test_codes_kept_in_memory_are_bounded(idp, monkeypatch):
    monkeypatch.setattr(oidc, "MAX_CODES", 2)
    oldest = _sign_in(idp, "admin")
    newer = [_sign_in(idp, "tech1") for _ in range(2)]
    assert _exchange(idp, oldest[0], oldest[1]).json()["error"] == "invalid_grant"
    for code, verifier, _ in newer:
        assert _exchange(idp, code, verifier).status_code == 200


def test_revoke_ends_a_refresh_token(idp):
    code, verifier, _ = _sign_in(idp, "acme-admin")
    refresh_token = _exchange(idp, code, verifier).json()["refresh_token"]
    unauthenticated = idp.client.post("/revoke", data={"token": refresh_token})
    assert unauthenticated.status_code == 401
    assert _refresh(idp, refresh_token, resource="intake").status_code == 200  # still good

    resp = idp.client.post(
        "/revoke", data={"token": refresh_token, "token_type_hint": "refresh_token"}, auth=("portal", idp.portal_secret)
    )
    assert resp.status_code == 200
    after = _refresh(idp, refresh_token, resource="intake")
    assert after.status_code == 400 and after.json()["error"] == "invalid_grant"
    # RFC 7009: an unknown token is not an error.
    again = idp.client.post("/revoke", data={"token": refresh_token}, auth=("portal", idp.portal_secret))
    assert again.status_code == 200


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"client_id": "evil"}, "unknown client_id 'evil'"),
        ({"redirect_uri": "https://evil.example/auth/callback"}, "is not registered for portal"),
        ({"redirect_uri": CALLBACK + "/more"}, "is not registered for portal"),
        ({"code_challenge": ""}, "PKCE is required"),
        ({"code_challenge_method": "plain"}, "code_challenge_method must be S256"),
        ({"code_challenge_method": ""}, "code_challenge_method must be S256"),
        ({"code_challenge": "short"}, "code_challenge must be the unpadded base64url SHA-256"),
        ({"response_type": "token"}, "response_type must be 'code'"),
        ({"state": ""}, "state is required"),
        ({"nonce": ""}, "nonce is required"),
        ({"scope": "profile"}, "scope must include openid"),
        ({"resource": "billing"}, "no API 'billing'"),
    ],
)
def test_bad_authorization_requests_are_refused_in_words(idp, change, words):
    _, challenge = _pkce()
    params = _authorize_params(challenge, **change)
    page = idp.client.get("/authorize", params=params)
    assert page.status_code == 400
    assert words in page.text and "Sign in as" not in page.text
    as_json = idp.client.get("/authorize", params=params, headers={"Accept": "application/json"})
    assert as_json.status_code == 400 and words in as_json.json()["error_description"]
    # The button's POST checks the same rules: a tampered hidden field gets no code.
    pressed = idp.client.post("/authorize", data={**params, "sub": "admin"})
    assert pressed.status_code == 400 and "location" not in pressed.headers


def test_pressing_for_someone_who_is_not_a_demo_person_is_refused(idp):
    _, challenge = _pkce()
    pressed = idp.client.post("/authorize", data={**_authorize_params(challenge), "sub": "root"})
    assert pressed.status_code == 400
    assert "no demo person 'root'" in pressed.text and "location" not in pressed.headers


@pytest.mark.parametrize("where", ["devstack env", "environment"])
def test_the_portal_url_is_a_setting(tmp_path, monkeypatch, where):
    monkeypatch.delenv("MSP_PORTAL_URL", raising=False)
    layout, _ = _devstack(tmp_path / "devstack")
    moved = "http://127.0.0.1:18000"
    if where == "environment":
        monkeypatch.setenv("MSP_PORTAL_URL", moved)
    else:
        layout.env_file.write_text(f"MSP_ENV=dev\nMSP_PORTAL_URL={moved}\n")
    _, challenge = _pkce()
    with TestClient(issuer.create_app(layout.root, ISSUER), base_url=ISSUER) as client:
        there = client.get("/authorize", params=_authorize_params(challenge, redirect_uri=f"{moved}/auth/callback"))
        assert there.status_code == 200
        default = client.get("/authorize", params=_authorize_params(challenge))
        assert default.status_code == 400 and f"registered: {moved}/auth/callback" in default.text


def test_the_portal_is_registered_like_the_services(tmp_path):
    layout, _ = _devstack(tmp_path / "devstack")
    secret = Stack(layout.root).client_secret("portal")  # how the stack hands the portal its secret
    assert secret == issuer.portal_client_secret(layout)
    clients = layout.clients_file.read_text()
    assert secret not in clients and "portal" in clients  # only the digest is stored
    issuer.write_clients(layout, {svc: issuer.new_client_secret() for svc in issuer.SERVICES})
    assert issuer.portal_client_secret(layout) == secret  # a later `up` keeps it


def test_the_portal_gets_no_service_token(idp):
    resp = idp.client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "audience": "intake"},
        auth=("portal", idp.portal_secret),
    )
    assert resp.status_code == 400 and resp.json()["error"] == "unauthorized_client"
    assert "access_token" not in resp.json()


def test_s256_matches_the_rfc_7636_example():
    # RFC 7636 Appendix B: the specification's own verifier and challenge.
    assert oidc.s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
