"""The kit's HTTP rules: error envelope, field paths, 1 MiB cap, unknown fields, metrics, health."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from mspkit import metrics
from mspkit.app import create_app
from mspkit.errors import InvalidTransition, NotFound
from mspkit.settings import KitSettings


class _Settings(KitSettings):
    service_name = "kit"


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")
    quantity: int = Field(ge=1)


class Order(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=50)
    items: list[Item] = Field(max_length=100)


@pytest.fixture(scope="module")
def client() -> TestClient:
    ready = {"ok": True}

    def _db() -> None:
        if not ready["ok"]:
            raise ConnectionError("postgresql://user:pw@host/db unreachable")

    app = create_app(service="kit", settings=_Settings(), ready_checks={"database": _db})
    app.state.ready = ready

    @app.post("/orders/{order_id}")
    def create(order_id: int, order: Order) -> dict[str, int]:
        return {"id": order_id, "items": len(order.items)}

    @app.get("/missing")
    def missing() -> None:
        raise NotFound("order not found")

    @app.get("/transition")
    def transition() -> None:
        raise InvalidTransition(current_status="done", allowed=["ready"])

    return TestClient(app)


def test_nested_validation_error_names_the_dotted_field(client):
    response = client.post("/orders/1", json={"name": "x", "items": [{"quantity": 1}, {"quantity": 0}]})
    assert response.status_code == 422
    assert response.json()["error"] == "validation_error"
    assert response.json()["field"] == "items.1.quantity"


def test_unknown_field_is_refused_naming_it(client):
    response = client.post("/orders/1", json={"name": "x", "items": [], "status": "done"})
    assert response.status_code == 422
    assert response.json()["field"] == "status"


def test_wrong_type_in_path_names_the_param(client):
    response = client.post("/orders/abc", json={"name": "x", "items": []})
    assert response.status_code == 422
    assert response.json()["field"] == "order_id"


def test_body_over_1_mib_is_413_before_parsing(client):
    body = json.dumps({"name": "x", "items": [], "pad": "a" * (1024 * 1024 + 10)})
    response = client.post("/orders/1", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"


def test_chunked_body_over_1_mib_is_413(client):
    def chunks():
        for _ in range(20):
            yield b"a" * (64 * 1024)

    response = client.post("/orders/1", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413


def test_domain_errors_render_the_envelope(client):
    assert client.get("/missing").json() == {"error": "not_found", "detail": "order not found"}
    body = client.get("/transition").json()
    assert (body["error"], body["current_status"], body["allowed"]) == ("invalid_transition", "done", ["ready"])
    assert client.get("/no-such-route").json()["error"] == "not_found"


def test_error_responses_are_declared_in_openapi(client):
    spec = client.get("/openapi.json").json()
    responses = spec["paths"]["/orders/{order_id}"]["post"]["responses"]
    for code in ("401", "403", "404", "413", "422", "503"):
        assert code in responses
    assert "ErrorBody" in json.dumps(responses["422"])


def test_metrics_are_labelled_by_route_template(client):
    client.post("/orders/raw-order-id", json={"name": "x", "items": []})
    text = client.get("/metrics").text
    routes = {
        sample.labels.get("route")
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert "/orders/{order_id}" in routes
    # Label values only: sample values (sums, created timestamps) may hold any digits.
    assert not any("raw-order-id" in (route or "") for route in routes)
    assert "raw-order-id" not in text


def _requests_total(client, route: str, status: str) -> float:
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "http_requests_total" and labels.get("route") == route and labels["status"] == status:
                if labels["service"] == "kit" and labels["method"] == "POST":
                    return sample.value
    return 0.0


def test_metrics_count_every_request_through_the_cached_labels(client):
    route = "/orders/{order_id}"
    ok, refused = _requests_total(client, route, "200"), _requests_total(client, route, "422")
    for _ in range(3):
        assert client.post("/orders/1", json={"name": "x", "items": []}).status_code == 200
    assert client.post("/orders/1", json={"name": "x", "items": [{"quantity": 0}]}).status_code == 422
    assert _requests_total(client, route, "200") == ok + 3
    assert _requests_total(client, route, "422") == refused + 1


def test_metrics_label_cache_is_bounded_but_still_counts(monkeypatch):
    # A client picks the method: a flood of made-up ones must not grow the middleware's cache forever.
    monkeypatch.setattr(metrics, "MAX_CACHED_LABELS", 2)
    middleware = metrics.MetricsMiddleware(app=None, service="bounded")  # type: ignore[arg-type]
    for method in ("A", "B", "C", "D"):
        count, _ = middleware._labelled(method, "/x", 200)
        count.inc()
    assert len(middleware._children) == 2
    count, _ = middleware._labelled("D", "/x", 200)  # not cached: the same child from the registry
    assert count._value.get() == 1
    count.inc()
    assert metrics.REQUESTS.labels("bounded", "D", "/x", "200")._value.get() == 2


def test_readyz_fails_without_the_database_and_hides_the_message(client):
    assert client.get("/readyz").status_code == 200
    client.app.state.ready["ok"] = False
    try:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert "pw" not in response.text and "ConnectionError" in response.text
        assert client.get("/healthz").status_code == 200  # liveness is not readiness
    finally:
        client.app.state.ready["ok"] = True


def test_shared_values_come_from_msp_prefix_and_service_prefix_wins(monkeypatch):
    class Svc(KitSettings):
        model_config = _Settings.model_config | {"env_prefix": "KITSVC_"}
        service_name = "kitsvc"

    monkeypatch.setenv("MSP_REDIS_URL", "redis://shared:1/0")
    assert Svc().redis_url == "redis://shared:1/0"
    monkeypatch.setenv("KITSVC_REDIS_URL", "redis://own:2/0")
    assert Svc().redis_url == "redis://own:2/0"
    assert _Settings().redis_url != "redis://own:2/0"  # another service's prefix does not leak across


def test_placeholder_secrets_are_refused_outside_dev(monkeypatch):
    class Svc(KitSettings):
        service_name = "kitsvc"
        api_key: SecretStr = SecretStr("changeme")

    monkeypatch.setenv("MSP_ENV", "production")
    with pytest.raises(ValidationError, match="placeholder"):
        Svc()
    monkeypatch.setenv("MSP_ENV", "dev")
    assert Svc().api_key.get_secret_value() == "changeme"
