"""secrets_broker's event routing table: event type → [(Celery task name, queue)].

`release.granted` and `release.denied` are for intake (evidence note on the PSA ticket) and the
notifications service (access alert, and the interception alert: `release.denied` with
`reason: wrap_token_reused`). Neither consumer exists yet, so they route nowhere: the relay marks
them sent and they stay in the outbox as the record; when a consumer lands, its route goes here.
`release.revoke_requested` goes to the broker's own worker, which revokes the accessor kept in
`pending_revocations` (the event carries only that row's id); the worker's sweep also picks up
rows whose event was marked sent before this route existed, or whose Vault call failed.
"""

from __future__ import annotations

ROUTES: dict[str, list[tuple[str, str]]] = {
    "release.granted": [],
    "release.denied": [],
    "release.revoke_requested": [("secrets_broker.revocation.revoke_requested", "secrets_broker")],
}
