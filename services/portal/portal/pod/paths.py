"""Which requests are the pod's: only these read the pod cookie, and only these ignore the session cookie."""

from __future__ import annotations

from starlette.requests import Request

POD_PREFIX = "/pod/"
# The pop-up that signs a person in for the pod: a first-party page outside /pod/ (it needs the
# portal's own session cookie, which /pod/* never reads).
SIGNIN_PATH = "/pod-signin"


def is_pod_path(path: str) -> bool:
    """True for `/pod/...`: the pod cookie is honoured there and nowhere else."""
    return path.startswith(POD_PREFIX)


def is_pod_request(request: Request) -> bool:
    """True when the request came to a pod path."""
    return is_pod_path(request.url.path)


def pod_page(provider: str, ticket_id: str) -> str:
    """The pod page of a ticket."""
    return f"/pod/{provider}/tickets/{ticket_id}"


def pod_page_of(request: Request) -> str | None:
    """The pod page a pod request belongs to (from its path), or None for `/pod/session`."""
    provider, ticket_id = request.path_params.get("provider"), request.path_params.get("ticket_id")
    if isinstance(provider, str) and isinstance(ticket_id, str):
        return pod_page(provider, ticket_id)
    return None
