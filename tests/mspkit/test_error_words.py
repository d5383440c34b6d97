"""Error bodies a caller can act on: every problem listed, in words, and a non-JSON body said plainly."""

from __future__ import annotations

import uuid
from typing import Annotated

import pytest
from fastapi import Form
from fastapi.testclient import TestClient
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from mspkit.app import create_app
from mspkit.errors import NOT_JSON_WORDS, ValidationFailed, looks_unplain
from mspkit.patterns import UNDESCRIBED, described, described_patterns, words_for
from mspkit.settings import KitSettings


class _Settings(KitSettings):
    service_name = "kit"


CODE = described(r"^[a-z]{3}-[0-9]{2}$", "must be three lowercase letters, '-' and two digits, such as abc-12")
UNDESCRIBED_REGEX = r"^[x]{2}[0-9]+$"


def _even(value: int) -> int:
    if value % 2:
        raise ValueError("must be even")
    return value


class Line(BaseModel):
    model_config = ConfigDict(extra="forbid")
    quantity: int = Field(ge=1)
    sku: str = Field(pattern=CODE)


class Order(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=5)
    owner: uuid.UUID | None = None
    odd: str | None = Field(None, pattern=UNDESCRIBED_REGEX)
    pairs: Annotated[int, AfterValidator(_even)] = 2
    lines: list[Line] = Field(default_factory=list)


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = create_app(service="kit", settings=_Settings())

    @app.post("/orders")
    def create(order: Order) -> dict[str, int]:
        return {"lines": len(order.lines)}

    @app.get("/domain-422")
    def domain_422() -> None:
        raise ValidationFailed("client_id: required for an admin", field="client_id")

    @app.post("/form")
    def form(code: Annotated[str, Form(pattern=CODE)]) -> dict[str, str]:
        return {"code": code}

    return TestClient(app)


def test_every_problem_is_listed_and_the_first_is_on_top(client):
    body = {"name": "too long", "lines": [{"quantity": 0, "sku": "ABC"}], "extra": 1}
    response = client.post("/orders", json=body)
    assert response.status_code == 422
    out = response.json()
    assert [(p["field"], p["detail"]) for p in out["errors"]] == [
        ("name", "name: String should have at most 5 characters"),
        ("lines.0.quantity", "lines.0.quantity: Input should be greater than or equal to 1"),
        ("lines.0.sku", "lines.0.sku: must be three lowercase letters, '-' and two digits, such as abc-12"),
        ("extra", "extra: unknown field"),
    ]
    assert (out["error"], out["field"], out["detail"]) == ("validation_error", "name", out["errors"][0]["detail"])


@pytest.mark.parametrize(
    ("override", "field", "words"),
    [
        ({"owner": "not-a-uuid"}, "owner", "must be a UUID such as 3f2504e0-4f89-41d3-9a0c-0305e82c3301"),
        ({"odd": "yy"}, "odd", UNDESCRIBED),
        ({"pairs": 3}, "pairs", "must be even"),  # pydantic's "Value error, " prefix is dropped
        ({"lines": ["x"]}, "lines.0", "must be a JSON object"),  # never the model's class name
    ],
)
def test_pydantic_messages_become_words(client, override, field, words):
    out = client.post("/orders", json={"name": "a", **override}).json()
    assert out["errors"] == [{"field": field, "detail": f"{field}: {words}"}]
    assert not looks_unplain(out["detail"])


def test_a_domain_validation_error_lists_itself(client):
    assert client.get("/domain-422").json() == {
        "error": "validation_error",
        "detail": "client_id: required for an admin",
        "field": "client_id",
        "errors": [{"field": "client_id", "detail": "client_id: required for an admin"}],
    }


def test_a_missing_field_and_broken_json_are_said_in_words(client):
    assert client.post("/orders", json={}).json()["detail"] == "name: is required"
    broken = client.post("/orders", content=b'{"name": ', headers={"Content-Type": "application/json"}).json()
    assert broken["field"] == "body" and broken["detail"].startswith("body: is not valid JSON")


@pytest.mark.parametrize(
    ("headers", "content", "shown"),
    [
        ({}, b'{"name": "a"}', "no Content-Type"),
        ({"Content-Type": "text/plain"}, b'{"name": "a"}', "Content-Type text/plain"),
        (
            {"Content-Type": "application/x-www-form-urlencoded"},
            b"name=a",
            "Content-Type application/x-www-form-urlencoded",
        ),
    ],
    ids=["missing", "text", "form"],
)
def test_a_body_that_is_not_json_is_422_for_the_body(client, headers, content, shown):
    response = client.post("/orders", content=content, headers=headers)
    assert response.status_code == 422
    detail = f"body: {NOT_JSON_WORDS} (this request had {shown})"
    assert response.json() == {
        "error": "validation_error",
        "detail": detail,
        "field": "body",
        "errors": [{"field": "body", "detail": detail}],
    }


def test_json_with_parameters_or_a_json_suffix_is_json(client):
    for media in ("application/json; charset=utf-8", "application/merge-patch+json"):
        response = client.post("/orders", content=b'{"name": "a"}', headers={"Content-Type": media})
        assert response.status_code == 200, (media, response.text)


def test_a_form_route_keeps_its_own_errors(client):
    response = client.post("/form", data={"code": "nope"})
    assert response.json()["errors"] == [{"field": "code", "detail": f"code: {words_for(CODE)}"}]


def test_one_pattern_has_one_description():
    assert described(CODE, words_for(CODE)) == CODE
    with pytest.raises(ValueError, match="already described"):
        described(CODE, "other words")
    assert described_patterns()[CODE] == words_for(CODE)


@pytest.mark.parametrize(
    "text",
    [
        "String should match pattern '^[A-Za-z0-9._\\-]+$'",
        "value ^[a-z]+",
        "has [0-9a-f] in it",
        "needs \\x00",
        "(?:abc)",
        "{0,61} times",
        "peer unreachable (ConnectError)",
        "not a valid domain name (IDNAError)",
        "raised KeyringException",
    ],
)
def test_regexes_and_class_names_are_recognised(text):
    assert looks_unplain(text)


@pytest.mark.parametrize(
    "text",
    ["name: is required", "items.0.quantity: Input should be greater than 0", "Error reading the page [1]"],
)
def test_words_are_not_mistaken_for_regexes(text):
    assert not looks_unplain(text)


def test_the_openapi_error_body_declares_errors_and_allowed(client):
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    props = schemas["ErrorBody"]["properties"]
    assert {"error", "detail", "field", "errors", "allowed", "current_status"} <= props.keys()
    assert schemas["FieldProblem"]["required"] == ["field", "detail"]
