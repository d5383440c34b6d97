"""vendor_sync's error bodies: a non-JSON body, every problem listed, another client's list as a missing one."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).parent))
pytest.register_assert_rewrite("fixtures_registry")
from fixtures_registry import make_account, make_vendor, unique  # noqa: E402

pytest_plugins = ["fixtures_registry"]

NOT_JSON = "body: send the body as JSON with the header Content-Type: application/json (this request had {shown})"
CONTENT_TYPES = [
    (None, "no Content-Type"),
    ("text/plain", "Content-Type text/plain"),
    ("application/x-www-form-urlencoded", "Content-Type application/x-www-form-urlencoded"),
]


def _count(engine, table: str, **where) -> int:
    clause = " AND ".join(f"{k} = :{k}" for k in where) or "true"
    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM vendor_sync.{table} WHERE {clause}"), where).scalar_one())


def _not_json(response, shown: str) -> None:
    assert response.status_code == 422, response.text
    detail = NOT_JSON.format(shown=shown)
    assert response.json() == {
        "error": "validation_error",
        "detail": detail,
        "field": "body",
        "errors": [{"field": "body", "detail": detail}],
    }


@pytest.mark.parametrize(("content_type", "shown"), CONTENT_TYPES, ids=["missing", "text", "form"])
def test_a_vendor_body_that_is_not_json_is_422_and_writes_nothing(vs_api, hdr, vs_engine, content_type, shown):
    name = f"Vendor {unique()}"
    headers = hdr("admin")
    if content_type is not None:
        headers["Content-Type"] = content_type
    content = (
        f'{{"name": "{name}", "kind": "registrar"}}'
        if content_type != "application/x-www-form-urlencoded"
        else f"name={name}&kind=registrar"
    )
    _not_json(vs_api.post("/v1/vendors", content=content.encode(), headers=headers), shown)
    assert _count(vs_engine, "vendors", name=name) == 0


@pytest.mark.parametrize(("content_type", "shown"), CONTENT_TYPES, ids=["missing", "text", "form"])
def test_an_account_body_that_is_not_json_is_422_and_writes_nothing(
    vs_api, hdr, vs_engine, new_client, content_type, shown
):
    vendor = make_vendor(vs_api, hdr("admin"))
    client_id = new_client()
    headers = hdr("technician")
    if content_type is not None:
        headers["Content-Type"] = content_type
    content = f'{{"vendor_id": "{vendor["id"]}", "account_number": "A-1"}}'.encode()
    _not_json(vs_api.post(f"/v1/clients/{client_id}/vendor-accounts", content=content, headers=headers), shown)
    assert _count(vs_engine, "vendor_accounts", client_id=client_id) == 0


def test_a_vendor_with_two_bad_fields_lists_both(vs_api, hdr, vs_engine):
    name = f"Vendor {unique()}"
    body = {"name": name, "kind": "registrar", "website": "ftp://x", "support_email": "help"}
    response = vs_api.post("/v1/vendors", json=body, headers=hdr("admin"))
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {
            "field": "website",
            "detail": "website: must be an http or https address without a user name, password or blanks",
        },
        {"field": "support_email", "detail": "support_email: must be an e-mail address such as name@example.com"},
    ]
    assert _count(vs_engine, "vendors", name=name) == 0


@pytest.mark.parametrize("role", ["client_user", "client_admin"])
def test_a_client_roles_list_of_another_client_is_a_missing_clients_404(vs_api, hdr, new_client, role):
    vendor = make_vendor(vs_api, hdr("admin"))
    mine, theirs = new_client(), new_client()
    make_account(vs_api, hdr("admin"), mine, vendor["id"])
    make_account(vs_api, hdr("admin"), theirs, vendor["id"])
    missing = vs_api.get(f"/v1/clients/{uuid.uuid4()}/vendor-accounts", headers=hdr("admin"))
    assert missing.status_code == 404  # intake does not know this client: a missing object

    headers = hdr(role, client_id=mine)
    foreign = vs_api.get(f"/v1/clients/{theirs}/vendor-accounts", headers=headers)
    assert (foreign.status_code, foreign.content) == (404, missing.content)
    own = vs_api.get(f"/v1/clients/{mine}/vendor-accounts", headers=headers)
    assert own.status_code == 200 and [a["client_id"] for a in own.json()["items"]] == [str(mine)]
