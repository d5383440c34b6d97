"""The demo people: recorded by the demo seeding, listed by `mspctl people` as `SUB ROLE CLIENT_ID` lines."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest
import respx

from mspctl import demo, people
from mspctl.layout import Layout
from mspctl.tokens import ensure_key

pytestmark = pytest.mark.timeout(60)
STAFF_LINES = ["admin admin -", "tech1 technician -", "tech2 technician -"]


def test_before_seeding_people_lists_the_staff_only(mspctl, tmp_path):
    result = mspctl(tmp_path / "devstack", "people")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == STAFF_LINES
    assert "not seeded yet" in result.stderr


def test_people_lists_each_client_admin_and_user_with_the_client_id(mspctl, tmp_path):
    layout = Layout(tmp_path / "devstack")
    layout.create()
    clients = {spec["name"]: str(uuid.uuid4()) for spec in demo.CLIENTS}
    people.record(layout, clients)

    result = mspctl(layout.root, "people")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:3] == STAFF_LINES
    client_lines = lines[3:]
    assert len(client_lines) == 2 * len(demo.CLIENTS)
    for spec in demo.CLIENTS:
        slug = people.client_slug(spec["name"])
        assert f"{slug}-admin client_admin {clients[spec['name']]}" in client_lines
        assert f"{slug}-user client_user {clients[spec['name']]}" in client_lines
    assert all(len(line.split(" ")) == 3 for line in lines)
    assert "not seeded" not in result.stderr


def test_client_slugs_are_short_and_distinct():
    slugs = [people.client_slug(spec["name"]) for spec in demo.CLIENTS]
    assert slugs == ["acme", "northwind"]


def _json(status: int, body: dict) -> httpx.Response:
    return httpx.Response(status, json=body)


def test_demo_seed_records_the_people_with_the_created_client_ids(tmp_path):
    layout = Layout(tmp_path / "devstack")
    layout.create()
    ensure_key(layout)
    layout.env_file.write_text("MSP_ENV=dev\nMSP_JWT_ISSUER=http://127.0.0.1:1\n")
    env = {
        "MSP_INTAKE_URL": "http://intake.test",
        "MSP_VENDOR_SYNC_URL": "http://vendor-sync.test",
        "MSP_SECRETS_BROKER_URL": "http://broker.test",
    }
    created: list[str] = []

    def new_client(request: httpx.Request) -> httpx.Response:
        created.append(str(uuid.uuid4()))
        return _json(201, {"id": created[-1], **json.loads(request.content)})

    def with_id(request: httpx.Request) -> httpx.Response:
        return _json(201, {"id": str(uuid.uuid4())})

    with respx.mock(assert_all_mocked=True) as mock:
        mock.post("http://intake.test/v1/clients").mock(side_effect=new_client)
        mock.post(url__startswith="http://intake.test/").mock(side_effect=with_id)
        mock.post(url__startswith="http://vendor-sync.test/").mock(side_effect=with_id)
        mock.post(url__startswith="http://broker.test/").mock(side_effect=with_id)
        summary = demo.seed(layout, env)

    assert summary is not None and sorted(summary.clients.values()) == sorted(created)
    recorded = json.loads((layout.root / people.PEOPLE_FILE).read_text())["people"]
    by_sub = {p["sub"]: p for p in recorded}
    assert {"admin", "tech1", "tech2"} <= by_sub.keys()
    assert by_sub["admin"]["client_id"] is None and by_sub["tech1"]["role"] == "technician"
    for spec in demo.CLIENTS:
        slug = people.client_slug(spec["name"])
        assert by_sub[f"{slug}-admin"]["client_id"] == summary.clients[spec["name"]]
        assert by_sub[f"{slug}-admin"]["role"] == "client_admin"
        assert by_sub[f"{slug}-user"]["client_id"] == summary.clients[spec["name"]]
        assert by_sub[f"{slug}-user"]["role"] == "client_user"
    assert [p.sub for p in people.load(layout)] == [p["sub"] for p in recorded]


def test_people_file_is_not_readable_by_others(tmp_path: Path):
    layout = Layout(tmp_path / "devstack")
    layout.create()
    people.record(layout, {spec["name"]: str(uuid.uuid4()) for spec in demo.CLIENTS})
    assert (layout.root / people.PEOPLE_FILE).stat().st_mode & 0o077 == 0
