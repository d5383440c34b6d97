"""Swagger UI and ReDoc work offline: each service's pages load only assets the service itself serves."""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from mspkit.apidocs import ASSETS_DIR

SERVICES = {
    "intake": "intake.main",
    "secrets_broker": "secrets_broker.main",
    "vendor_sync": "vendor_sync.api",
}
# Every URL a page would fetch: attributes, and the spec URL Swagger UI and ReDoc are given in script.
ATTR_URL = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")
SPEC_URL = re.compile(r"""(?:url:\s*|spec-url=)["']([^"']+)["']""")
# Assets bigger than this are the real bundles (the page would be blank with an error page instead).
MIN_BUNDLE_BYTES = 100_000


def _client(service: str) -> TestClient:
    app: Any = importlib.import_module(SERVICES[service]).app
    # No lifespan: the pages and assets need no database, Vault or worker.
    return TestClient(app)


def _fetched_urls(html: str) -> list[str]:
    return ATTR_URL.findall(html) + SPEC_URL.findall(html)


@pytest.mark.parametrize("service", sorted(SERVICES))
@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_reference_only_same_origin_assets_that_answer(service: str, page: str) -> None:
    client = _client(service)
    response = client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    urls = _fetched_urls(html)
    scripts = [u for u in urls if u.endswith(".js")]
    assert scripts, f"{page} loads no script: {urls}"
    assert "/openapi.json" in urls
    for url in urls:
        parts = urlsplit(url)
        # Same origin: a path, never a scheme or a `//host` URL.
        assert not parts.scheme and not parts.netloc and url.startswith("/"), f"{page} of {service} loads {url}"
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert asset.content, url
    for script in scripts:
        assert len(client.get(script).content) > MIN_BUNDLE_BYTES, script
    assert "cdn.jsdelivr.net" not in html and "fonts.googleapis.com" not in html
    # The browser is held to the same origin too (ReDoc's bundle still names a CDN logo).
    policy = dict(d.strip().split(" ", 1) for d in response.headers["content-security-policy"].split(";"))
    assert policy["default-src"] == "'self'"
    assert policy["img-src"] == "'self' data:"
    assert policy["connect-src"] == "'self'"
    assert "http" not in response.headers["content-security-policy"]


def test_swagger_ui_has_no_online_validator() -> None:
    # Swagger UI sends the spec to validator.swagger.io for its badge unless told not to.
    html = _client("intake").get("/docs").text
    assert '"validatorUrl": null' in html


def test_the_packaged_assets_are_the_ones_served() -> None:
    client = _client("vendor_sync")
    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png"):
        assert client.get(f"/docs-assets/{name}").content == (ASSETS_DIR / name).read_bytes()
    assert client.get("/docs-assets/../apidocs.py").status_code == 404


def test_docs_pages_are_not_in_the_openapi_description() -> None:
    paths = _client("secrets_broker").get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith(("/docs", "/redoc"))]


# Words that describe how the code works rather than what an API user gets.
IMPLEMENTATION_WORDS = re.compile(
    r"advisory lock|for share|for update|transaction|commit|outbox|inbox|relay|celery|savepoint|hvac"
    r"|\btick\b|\w+\.py\b|\bmodule\b|\bORM\b|\bSQL\b|intake does not know|as the contract",
    re.IGNORECASE,
)


def _descriptions(spec: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            where = f"{method.upper()} {path}"
            yield where, f"{op.get('summary', '')} {op.get('description', '')}"
            for param in op.get("parameters", []):
                yield f"{where} ?{param['name']}", param.get("description", "")
    for name, schema in spec.get("components", {}).get("schemas", {}).items():
        yield name, schema.get("description", "")
        for field, prop in (schema.get("properties") or {}).items():
            yield f"{name}.{field}", prop.get("description", "")


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_openapi_descriptions_speak_to_api_users(service: str) -> None:
    spec = _client(service).get("/openapi.json").json()
    notes = [(where, text) for where, text in _descriptions(spec) if IMPLEMENTATION_WORDS.search(text)]
    assert notes == []
