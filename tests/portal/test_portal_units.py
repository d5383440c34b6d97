"""Pure rules of the portal core: return_to, the recent-sign-in rule, claims to identity, the session box."""

from __future__ import annotations

import uuid

import pytest
from cryptography.fernet import Fernet, InvalidToken

from mspkit.auth import ClaimMap
from mspkit.errors import Unauthenticated
from portal.auth import signed_in_recently
from portal.auth.crypto import Box, SessionKeyError
from portal.auth.identity import identity_from_claims
from portal.auth.returnto import safe_return_to
from portal.deps import Viewer


@pytest.mark.parametrize("value", ["/", "/requests", "/tasks?status=ready&mine=1", "/requests/3fa85f64#top", "/a/b/"])
def test_relative_paths_are_kept(value):
    assert safe_return_to(value) == value


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "//evil.example/x",
        "///evil.example",
        "/\\evil.example",
        "/\\/evil.example",
        "\\\\evil.example",
        "http://evil.example/",
        "https://evil.example/",
        "HTTP://evil.example",
        "javascript:alert(1)",
        "evil.example/x",
        "/x\r\nSet-Cookie: a=b",
        "/x\ty",
        " /x",
        "/" + "a" * 3000,
    ],
)
def test_anything_else_becomes_root(value):
    assert safe_return_to(value) == "/"


def _viewer(auth_time: int) -> Viewer:
    return Viewer("tech1", "technician", None, "Tech One", auth_time, "csrf")


def test_signed_in_recently_is_the_15_minute_rule():
    now = 1_000_000.0
    assert signed_in_recently(_viewer(int(now)), now)
    assert signed_in_recently(_viewer(int(now) - 900), now)
    assert not signed_in_recently(_viewer(int(now) - 901), now)
    assert signed_in_recently(_viewer(int(now) - 100), now, max_age=100)
    assert not signed_in_recently(_viewer(int(now) - 101), now, max_age=100)


def test_identity_reads_the_dev_claims():
    client = str(uuid.uuid4())
    claims = {"sub": "acme-admin", "role": "client_admin", "msp_client_id": client, "name": "Acme", "auth_time": 5}
    who = identity_from_claims(claims, ClaimMap(), now=10)
    assert (who.sub, who.role, who.client_id) == ("acme-admin", "client_admin", client)
    assert (who.name, who.auth_time) == ("Acme", 5)


def test_identity_reads_the_entra_claims_through_the_mapping():
    client = str(uuid.uuid4())
    mapping = ClaimMap(subject="oid", role="", roles="roles", tenant="extn.msp_client_id")
    claims = {"sub": "pairwise-xyz", "oid": "acme-user", "roles": ["client_user"], "extn.msp_client_id": client}
    who = identity_from_claims(claims, mapping, now=10)
    assert (who.sub, who.role, who.client_id) == ("acme-user", "client_user", client)
    assert (who.name, who.auth_time) == ("acme-user", 10)


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": "svc:intake", "role": "service"},
        {"sub": "x", "role": "root"},
        {"sub": "x"},
        {"sub": "x", "role": "client_user"},  # a client role without its tenant
    ],
)
def test_identity_refuses_what_is_not_a_person_of_ours(claims):
    with pytest.raises(Unauthenticated):
        identity_from_claims(claims, ClaimMap(), now=0)


def test_box_round_trips_and_refuses_another_key():
    box = Box(Fernet.generate_key().decode())
    sealed = box.seal({"refresh_token": "rt-123"})
    assert b"rt-123" not in sealed
    assert box.open(sealed) == {"refresh_token": "rt-123"}
    with pytest.raises(InvalidToken):
        Box(Fernet.generate_key().decode()).open(sealed)


def test_a_malformed_session_key_is_named():
    with pytest.raises(SessionKeyError, match="PORTAL_SESSION_KEY"):
        Box("not-a-key")


def test_fresh_sign_in_url_forces_a_new_sign_in_and_comes_back():
    from portal.auth import fresh_sign_in_url

    assert fresh_sign_in_url("/tasks/1?x=2") == "/login?prompt=login&return_to=%2Ftasks%2F1%3Fx%3D2"
