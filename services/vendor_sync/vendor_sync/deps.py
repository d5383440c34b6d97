"""Shared route dependencies: who may call a route, and what a client-role caller may see."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends

from mspkit.auth import CLIENT_ROLES, CurrentUser, Principal
from mspkit.errors import Forbidden

STAFF = ("admin", "technician")
CLIENT = tuple(sorted(CLIENT_ROLES))


def allow(*roles: str, services: tuple[str, ...] = ()) -> Callable[[Principal], Principal]:
    """Dependency factory: one of `roles`, or a service token whose `sub` is in `services`."""
    allowed_roles = frozenset(roles) - {"service"}
    allowed_services = frozenset(services)

    def _check(user: CurrentUser) -> Principal:
        if user.role == "service":
            if user.sub in allowed_services:
                return user
            raise Forbidden("service not allowed on this route")
        if user.role not in allowed_roles:
            raise Forbidden("role not allowed")
        return user

    return _check


AdminOnly = Annotated[Principal, Depends(allow("admin"))]
Staff = Annotated[Principal, Depends(allow(*STAFF))]
VendorReader = Annotated[Principal, Depends(allow(*STAFF, services=("svc:intake",)))]
AccountReader = Annotated[
    Principal, Depends(allow(*STAFF, *CLIENT, services=("svc:intake", "svc:secrets_broker")))
]
DomainReader = Annotated[Principal, Depends(allow(*STAFF, *CLIENT))]
