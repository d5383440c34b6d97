"""Temporary skeleton app (replaced as the service is built)."""

from fastapi import FastAPI

app = FastAPI(title="secrets_broker")


@app.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness."""
    return {"status": "ok"}


@app.get("/readyz")
def readyz() -> dict[str, str]:
    """Readiness."""
    return {"status": "ready"}
