"""secrets_broker's event routing table: event type → [(Celery task name, queue)].

`release.granted` and `release.denied` are for intake (evidence note) and notifications (access
alert); neither consumer exists yet, so they route nowhere and the relay just marks them sent.
`release.revoke_requested` is for the broker worker of the lifecycle issue, which revokes by the
accessor kept in `pending_revocations` (the event carries only that row's id). Until then it routes
nowhere too; the worker must also sweep `pending_revocations WHERE done_at IS NULL`, which covers
events the relay marked sent before the route existed.
"""

from __future__ import annotations

ROUTES: dict[str, list[tuple[str, str]]] = {
    "release.granted": [],
    "release.denied": [],
    "release.revoke_requested": [],
}
