"""The parts of the dev stack: names, order, dependencies, the service each belongs to."""

from __future__ import annotations

INFRA = ("postgres", "redis", "openbao", "mail", "issuer", "vendor_sim")
APPS = (
    "intake",
    "intake-relay",
    "intake-worker",
    "intake-beat",
    "secrets_broker",
    "secrets_broker-worker",
    "secrets_broker-relay",
    "vendor_sync",
    "vendor_sync-worker",
    "vendor_sync-beat",
    "portal",
)
ALL_PARTS = INFRA + APPS

# What the tests' in-process suites need (the pytest plugin starts exactly these).
TEST_INFRA = ("postgres", "redis", "openbao", "issuer", "mail")

APIS = ("intake", "secrets_broker", "vendor_sync")
# Each has its own database role, schema, migrations and env (the portal has no service identity, though).
SERVICES = ("intake", "vendor_sync", "secrets_broker", "portal")
# Parts that serve HTTP with a /readyz on a port of their own (the portal on 8000 beside the APIs).
HTTP_APPS = (*APIS, "portal")
PORTAL_PORT = 8000

SERVICE_OF = {part: part.split("-")[0] for part in APPS}

# Parts started implicitly with another (`up --only intake` also brings up what intake needs).
DEPENDS: dict[str, tuple[str, ...]] = {
    "intake": ("postgres", "issuer"),
    "intake-relay": ("postgres", "redis"),
    "intake-worker": ("postgres", "redis"),
    "intake-beat": ("redis",),
    "secrets_broker": ("postgres", "openbao", "issuer"),
    "secrets_broker-worker": ("postgres", "redis", "openbao", "issuer"),
    "secrets_broker-relay": ("postgres", "redis"),
    "vendor_sync": ("postgres", "redis", "issuer"),
    "vendor_sync-worker": ("postgres", "redis", "issuer", "vendor_sim"),
    "vendor_sync-beat": ("redis",),
    # The portal reaches the APIs over HTTP only; it needs its database and the IdP to start.
    "portal": ("postgres", "issuer"),
}

# Parts whose broker process starts through the AppRole launcher, and with which role.
LAUNCHED_WITH_ROLE = {"secrets_broker": "msp-broker-api", "secrets_broker-worker": "msp-broker-revoker"}

PORT_NAMES = (
    "postgres",
    "redis",
    "openbao",
    "openbao_cluster",  # raft's cluster listener (one node, but raft wants the address)
    "mail_smtp",
    "mail_http",
    "issuer",
    "vendor_sim",
    "intake",
    "secrets_broker",
    "vendor_sync",
    "portal",
)


def expand(only: list[str] | None) -> list[str]:
    """The parts to start, dependencies included, in start order; raises ValueError on unknown names."""
    if not only:
        return list(ALL_PARTS)
    unknown = [p for p in only if p not in ALL_PARTS]
    if unknown:
        raise ValueError(f"unknown part(s) {', '.join(unknown)}; parts are: {', '.join(ALL_PARTS)}")
    wanted = set(only)
    for part in only:
        wanted.update(DEPENDS.get(part, ()))
    return [p for p in ALL_PARTS if p in wanted]


def parse_only(value: str | None) -> list[str] | None:
    """Parse `--only a,b,c` (None or empty means everything)."""
    if not value:
        return None
    return [p.strip() for p in value.split(",") if p.strip()]
