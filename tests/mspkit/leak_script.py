"""Plants a canary everywhere a secret could escape, then logs and renders (run as a subprocess)."""

from __future__ import annotations

import logging
import sys

import httpx
import structlog
from fastapi.testclient import TestClient
from pydantic import SecretStr

from mspkit.app import create_app
from mspkit.errors import AppError
from mspkit.logging import get_logger
from mspkit.settings import KitSettings

CANARY = sys.argv[1]


class Settings(KitSettings):
    service_name = "leaktest"
    api_key: SecretStr = SecretStr(CANARY)


settings = Settings()
app = create_app(service="leaktest", settings=settings)
log = get_logger("leaktest")


def _explode() -> None:
    secret = CANARY  # a local variable that a traceback with locals would print
    raise ValueError(f"could not use {secret}")


@app.get("/boom")
def boom() -> None:
    _explode()


@app.get("/domain-error")
def domain_error() -> None:
    password = CANARY
    raise AppError("bad thing") from ValueError(password)


try:
    _explode()
except ValueError:
    log.exception("explicit_failure")
log.info("settings_loaded", settings=settings.model_dump(), api_key=settings.api_key)
log.info("calling_vendor", url=f"https://vendor.example/api?key={CANARY}&x=1")
log.info("plain_value_of_registered_secret", value=f"prefix-{CANARY}-suffix")
logging.getLogger("httpx").warning("HTTP Request: GET https://vendor.example/x?token=%s", CANARY)
logging.getLogger("uvicorn.error").error("failure", exc_info=ValueError(CANARY))
structlog.get_logger().warning("context", password=CANARY, nested={"token": CANARY, "ok": "fine"})
try:
    httpx.get(f"http://127.0.0.1:1/?secret={CANARY}", timeout=0.5)
except httpx.HTTPError:
    log.exception("vendor_unreachable")

client = TestClient(app, raise_server_exceptions=False)
for path in ("/boom", "/domain-error"):
    response = client.get(path)
    print(f"RESPONSE {path} {response.status_code} {response.text}")
