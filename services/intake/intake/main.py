"""intake's FastAPI app."""

from __future__ import annotations

from intake.approvals.routes import router as approvals_router
from intake.clients.routes import router as clients_router
from intake.db import get_engine
from intake.internal.routes import router as internal_router
from intake.requests.routes import router as requests_router
from intake.requests.schemas import BODY_TYPES
from intake.settings import get_settings
from intake.staff.routes import router as staff_router
from intake.tasks.routes import router as tasks_router
from intake.webhooks.routes import router as webhooks_router
from mspkit.app import create_app
from mspkit.db import ping
from mspkit.vocabulary import PARTY_CATEGORIES

# Discriminated unions put the tag in the error path (body.purchase.items.0); it names no field.
_TAGS = frozenset(BODY_TYPES) | frozenset(PARTY_CATEGORIES)
_HEADERS = {"idempotency-key": "Idempotency-Key"}

app = create_app(
    service="intake",
    settings=get_settings(),
    ready_checks={"database": lambda: ping(get_engine())},
    union_tags=_TAGS,
    header_names=_HEADERS,
)
routers = (
    clients_router,
    requests_router,
    tasks_router,
    approvals_router,
    staff_router,
    internal_router,
    webhooks_router,
)
for router in routers:
    app.include_router(router)
