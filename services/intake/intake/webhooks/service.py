"""Receiving a PSA callback: parse, verify, dedupe, then apply it to the linked task in one transaction."""

from __future__ import annotations

from collections.abc import Mapping

from sqlmodel import Session

from intake.psa.factory import get_adapter
from intake.psa.inbound import apply_callback, first_time
from intake.psa.protocol import CallbackRejected, callback_fingerprint
from intake.settings import get_settings
from intake.webhooks.schemas import CallbackAck
from mspkit.errors import NotFound, Unauthenticated, Unavailable, ValidationFailed
from mspkit.http import VendorError
from mspkit.logging import get_logger

log = get_logger("intake.webhooks")
# The signing key could not be had now: the PSA calls again later, so say so rather than "bad signature".
_TRY_LATER = frozenset({"key unavailable", "key fetch rate limited"})
# Outcomes of a first-seen callback that changed no task.
_NOTHING_DONE = frozenset({"unlinked", "unchanged", "already_closed"})


def receive(session: Session, *, raw: bytes, headers: Mapping[str, str]) -> CallbackAck:
    """Apply one callback; 422 when it does not parse, 401 when its signature fails, 503 when the PSA is away."""
    adapter = get_adapter()
    if adapter is None:
        raise NotFound("unknown PSA provider: only the configured PSA calls this")
    try:
        callback = adapter.parse_callback(raw)
    except CallbackRejected:
        raise ValidationFailed("the body is not a ticket callback of this PSA", field="body") from None
    try:
        adapter.verify_callback(raw, headers, callback)
    except CallbackRejected as exc:
        if exc.reason in _TRY_LATER:
            raise Unavailable("the PSA's signing key could not be fetched; call again later") from None
        raise Unauthenticated("bad webhook signature") from None
    fingerprint = callback_fingerprint(raw)
    if not first_time(session, fingerprint=fingerprint, provider=adapter.provider, ticket_id=callback.ticket_id):
        session.rollback()
        return CallbackAck(applied=False, outcome="duplicate")
    try:
        applied = apply_callback(
            session, adapter=adapter, settings=get_settings(), callback=callback, fingerprint=fingerprint
        )
    except VendorError:
        # Nothing is kept, the fingerprint included: the PSA's retry applies it.
        session.rollback()
        raise Unavailable("the PSA did not answer the ticket's re-fetch; call again later") from None
    session.commit()
    log.info("psa_callback_applied", ticket_id=callback.ticket_id, action=callback.action, outcome=applied.outcome)
    return CallbackAck(applied=applied.outcome not in _NOTHING_DONE, outcome=applied.outcome)
