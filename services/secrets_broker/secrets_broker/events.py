"""secrets_broker's event routing table: event type → [(Celery task name, queue)].

`release.granted` and `release.denied` go to intake's worker (queue `intake`): its notifications
mail the client's alert addresses about a release to a person, reading the details back through
`GET /internal/releases/{id}` (events carry ids only); a denial is mailed to nobody today. Both also
go to intake's PSA evidence note (`intake.psa.release_note`: the credential id and the rule, on the
task's ticket). Service releases write no event (they are listed on the portal's `/access`, not
mailed). `release.revoke_requested` goes to the broker's own worker, which revokes the accessor kept
in `pending_revocations` (the event carries only that row's id); the worker's sweep also picks up rows
whose event was marked sent before this route existed, or whose Vault call failed.
"""

from __future__ import annotations

# Task names fixed by intake's worker (intake/events.py); services never import each other.
INTAKE_QUEUE = "intake"

ROUTES: dict[str, list[tuple[str, str]]] = {
    "release.granted": [
        ("intake.notifications.release_granted", INTAKE_QUEUE),
        ("intake.psa.release_note", INTAKE_QUEUE),
    ],
    "release.denied": [
        ("intake.notifications.release_denied", INTAKE_QUEUE),
        ("intake.psa.release_note", INTAKE_QUEUE),
    ],
    "release.revoke_requested": [("secrets_broker.revocation.revoke_requested", "secrets_broker")],
}
