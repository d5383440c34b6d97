"""Need-to-know before a credential is released or rotated: a client the technician may not see.

DESIGN.md § staff directory: a technician reads credentials only of their staff row's `client_ids`
(none without an active row), anything else is 404. So the ask is answered exactly as for a
missing credential, before any lock, intake read or Vault call. Like every refused ask it is still
recorded (`release.denied`, rule `need_to_know`, and a release's outbox event), but best effort: a
failing audit must not turn the 404 into a 503 that would tell the caller the credential exists.
"""

from __future__ import annotations

from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from mspkit.errors import AppError, NotFound
from mspkit.logging import get_logger
from mspkit.tenancy import sees_client
from secrets_broker.release import gate
from secrets_broker.release.policy import NEED_TO_KNOW
from secrets_broker.settings import Settings
from secrets_broker.vault.gateway import VaultGateway

log = get_logger("secrets_broker.need_to_know")


def ensure_need_to_know(session: Session, ask: gate.Ask, *, gateway: VaultGateway, settings: Settings) -> None:
    """Raise the 404 of a missing credential (the refusal audited) unless the caller may see its client."""
    if sees_client(ask.user, ask.credential.client_id):
        return
    try:
        gate.refuse(session, ask, NEED_TO_KNOW, gateway=gateway, settings=settings)
    except (AppError, SQLAlchemyError) as exc:
        session.rollback()
        log.error("need_to_know_denial_not_audited", operation=ask.operation, error=type(exc).__name__)
    raise NotFound("credential not found")
