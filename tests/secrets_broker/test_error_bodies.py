"""The broker's error bodies: a non-JSON body, every problem listed, another client's list as a missing one."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from broker_helpers import World, audit_rows
from sqlalchemy import text

NOT_JSON = "body: send the body as JSON with the header Content-Type: application/json (this request had {shown})"


def _credentials(engine: Any, client_id: uuid.UUID) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(text("SELECT count(*) FROM credentials WHERE client_id = :c"), {"c": client_id}).scalar_one()
        )


@pytest.mark.parametrize(
    ("content_type", "shown"),
    [
        (None, "no Content-Type"),
        ("text/plain", "Content-Type text/plain"),
        ("application/x-www-form-urlencoded", "Content-Type application/x-www-form-urlencoded"),
    ],
    ids=["missing", "text", "form"],
)
def test_a_credential_body_that_is_not_json_is_422_and_stores_nothing(
    world: World, engine: Any, content_type: str | None, shown: str
) -> None:
    client_id = world.new_client()
    headers = dict(world.admin)
    if content_type is not None:
        headers["Content-Type"] = content_type
    content = (
        f'{{"client_id": "{client_id}", "kind": "password", "owner": "client", "category": "isp",'
        f' "name": "ISP", "username": "u", "secret": "pw-{uuid.uuid4().hex}"}}'
    )
    response = world.broker.post("/v1/credentials", content=content.encode(), headers=headers)
    assert response.status_code == 422
    detail = NOT_JSON.format(shown=shown)
    assert response.json() == {
        "error": "validation_error",
        "detail": detail,
        "field": "body",
        "errors": [{"field": "body", "detail": detail}],
    }
    assert _credentials(engine, client_id) == 0
    assert audit_rows(engine, client_id=client_id) == []


def test_a_credential_with_two_bad_fields_lists_both(world: World, engine: Any) -> None:
    client_id = world.new_client()
    body = {
        "client_id": str(client_id),
        "kind": "password",
        "owner": "client",
        "category": "isp",
        "name": "ISP\u202eportal",  # a bidi override: refused in words, not with the published regex
        "username": "u",
        "secret": "pw",
        "url": "https://user:pw@portal.example/",
    }
    response = world.broker.post("/v1/credentials", json=body, headers=world.admin)
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert [e["field"] for e in errors] == ["name", "url"]
    assert errors[0]["detail"].startswith("name: may hold only letters, digits, inner spaces and these characters: - _")
    assert errors[1]["detail"] == "url: must be an http or https address without a user name, password or query string"
    assert _credentials(engine, client_id) == 0


LISTS = ["/v1/credentials", "/v1/audit", "/v1/disclosures"]


@pytest.mark.parametrize("path", LISTS)
def test_a_client_admin_filtering_on_another_client_gets_a_missing_clients_404(world: World, path: str) -> None:
    mine, theirs = world.new_client(), world.new_client()
    world.new_credential(mine)
    world.new_credential(theirs)
    missing = world.intake.get(f"/v1/clients/{uuid.uuid4()}", headers=world.admin)
    assert missing.status_code == 404  # the contract's missing object, as intake answers for it
    boss = world.auth("client_admin", "boss", mine)

    for other in (theirs, uuid.uuid4()):
        foreign = world.broker.get(path, params={"client_id": str(other)}, headers=boss)
        assert (foreign.status_code, foreign.json()) == (404, missing.json()), path
    own = world.broker.get(path, params={"client_id": str(mine)}, headers=boss)
    assert own.status_code == 200, own.text
    assert {i["client_id"] for i in own.json()["items"]} <= {str(mine)}
    if path != "/v1/disclosures":  # storing a credential discloses nothing
        assert own.json()["items"]
    # An admin's filter is not a tenancy question: another client's id lists that client.
    assert world.broker.get(path, params={"client_id": str(theirs)}, headers=world.admin).status_code == 200
