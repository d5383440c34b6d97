"""Who signed in: the id_token's claims read through the same `mspkit.auth` claim mapping as every verifier."""

from __future__ import annotations

from typing import Any

from mspkit.auth import ClaimMap, principal_from_claims
from mspkit.errors import Unauthenticated
from portal.auth.store import Identity

PEOPLE_ROLES = frozenset({"client_user", "client_admin", "technician", "admin"})


def identity_from_claims(claims: dict[str, Any], claim_map: ClaimMap, *, now: float) -> Identity:
    """The person of a verified id_token; raises Unauthenticated for no valid role or a service identity."""
    principal = principal_from_claims(claims, claim_map)
    if principal.role not in PEOPLE_ROLES:
        raise Unauthenticated("a service identity cannot sign in to the portal")
    name = claims.get("name")
    auth_time = claims.get("auth_time")
    return Identity(
        sub=principal.sub,
        role=principal.role,
        client_id=str(principal.client_id) if principal.client_id else None,
        name=str(name)[:200] if isinstance(name, str) and name else principal.sub,
        auth_time=int(auth_time) if isinstance(auth_time, int | float) else int(now),
    )
