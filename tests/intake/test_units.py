"""Pure pieces: the expansion table, the verified-token cache, cursors, and the schema matching the models."""

from __future__ import annotations

import uuid

import pytest
from intake_factories import isp_body, purchase_body, spam_body


def _body(data):
    from pydantic import TypeAdapter

    from intake.requests.schemas import RequestCreate

    return TypeAdapter(RequestCreate).validate_python(data)


@pytest.mark.parametrize(
    ("total", "threshold", "status"),
    [(100, 100, "ready"), (101, 100, "awaiting_approval"), (0, 0, "ready"), (1, 0, "awaiting_approval")],
)
def test_purchase_approval_applies_only_strictly_over_the_threshold(total, threshold, status):
    from intake.requests.expansion import expand

    [task] = expand(_body(purchase_body(total_cents=total))).tasks
    assert task.initial_status(threshold) == status


def test_isp_and_spam_always_wait_for_approval():
    from intake.requests.expansion import expand

    for body in (isp_body(), spam_body()):
        [task] = expand(_body(body)).tasks
        assert task.initial_status(10**12) == "awaiting_approval"


def test_vendor_contact_update_needs_its_account():
    from intake.requests.expansion import expand

    body = _body({"type": "vendor_contact_update", "vendor_account_id": str(uuid.uuid4()), "contacts": {}})
    with pytest.raises(ValueError, match="vendor account"):
        expand(body)


def test_a_tampered_token_is_not_served_from_the_cache(api, admin_h):
    """The cache is keyed by the exact token: changing one byte of a cached token is verified (and refused)."""
    assert api.get("/v1/clients", headers=admin_h).status_code == 200
    token = admin_h["Authorization"].removeprefix("Bearer ")
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    response = api.get("/v1/clients", headers={"Authorization": f"Bearer {tampered}"})
    assert (response.status_code, response.json()["detail"]) == (401, "token signature does not verify")


def test_cursor_round_trip():
    from datetime import UTC, datetime

    from mspkit.pagination import decode_cursor, encode_cursor

    moment = datetime(2026, 11, 24, 22, 13, 38, 123456, tzinfo=UTC)
    row_id = uuid.uuid4()
    assert decode_cursor(encode_cursor(moment, row_id)) == (moment, row_id)


def test_the_migrations_match_the_models(admin_engine):
    """Alembic finds nothing to change between the migrated schema and the SQLModel tables."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    # Every module that declares tables: the app's routes do not import the worker's (notifications).
    import intake.idempotency.models
    import intake.main
    import intake.notifications.models
    import intake.psa.models  # noqa: F401

    def _ours(obj, name, type_, reflected, compare_to):
        return getattr(obj, "schema", None) == "intake" if type_ == "table" else True

    with admin_engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"include_schemas": True, "include_object": _ours, "version_table_schema": "intake"}
        )
        diff = [d for d in compare_metadata(context, SQLModel.metadata) if "intake" in repr(d)]
    assert diff == []
