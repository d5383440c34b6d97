"""The dev stack's PSA: intake talks to the simulator's ConnectWise, with random API keys kept in the devstack.

The keys are files (`<devstack>/psa/connectwise-*`, mode 0600) named by intake's
`INTAKE_PSA_CONNECTWISE_*_FILE` settings, as in production: never the broker, which holds clients'
credentials. The simulator accepts any key but `bad-key`, so they only need to exist and stay put.
intake registers its callback URL at the simulator when its worker starts. Tickets link to the
simulator's ticket screen, which frames the portal's ticket pod (PORTAL_PSA_*, VENDOR_SIM_PORTAL_URL).
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from mspctl.files import write_private
from mspctl.layout import Layout

PROVIDER = "connectwise"
# The company the dev integration logs in as (ConnectWise's "company" of `company+publicKey`).
COMPANY = "msp-dev"
KEY_NAMES = ("public_key", "private_key", "client_id")
# The ticket's screen in the simulator, which frames the portal's pod as ConnectWise's would. It is
# reached as `localhost` while the portal is `127.0.0.1`: two sites, so the pod is a cross-site frame
# (its cookie must be SameSite=None; Partitioned) exactly as under a real PSA.
SCREEN_ORIGIN = "http://localhost:{port}"
TICKET_URL_TEMPLATE = SCREEN_ORIGIN + "/_sim/psa/connectwise/tickets/{{ticket_id}}/screen"


def ensure_keys(sec: dict[str, Any]) -> bool:
    """Add the dev integration's keys to the devstack's secrets; True when any was made."""
    keys = sec.setdefault("psa_connectwise", {})
    missing = [name for name in KEY_NAMES if name not in keys]
    for name in missing:
        keys[name] = secrets.token_hex(16)
    return bool(missing)


def key_file(layout: Layout, name: str) -> Path:
    """Where one of the dev integration's keys is kept."""
    return layout.root / "psa" / f"{PROVIDER}-{name.replace('_', '-')}"


def intake_env(layout: Layout, sec: dict[str, Any], *, sim_url: str, sim_port: int, intake_url: str) -> dict[str, str]:
    """intake's PSA settings for the dev stack, writing the key files they name."""
    for name in KEY_NAMES:
        write_private(key_file(layout, name), str(sec["psa_connectwise"][name]) + "\n")
    return {
        "INTAKE_PSA_PROVIDER": PROVIDER,
        "INTAKE_PSA_CONNECTWISE_SITE_URL": f"{sim_url}/connectwise",
        "INTAKE_PSA_CONNECTWISE_COMPANY": COMPANY,
        "INTAKE_PSA_CONNECTWISE_PUBLIC_KEY_FILE": str(key_file(layout, "public_key")),
        "INTAKE_PSA_CONNECTWISE_PRIVATE_KEY_FILE": str(key_file(layout, "private_key")),
        "INTAKE_PSA_CONNECTWISE_CLIENT_ID_FILE": str(key_file(layout, "client_id")),
        "INTAKE_PSA_CALLBACK_URL": f"{intake_url}/v1/webhooks/psa/{PROVIDER}",
        "INTAKE_PSA_TICKET_URL_TEMPLATE": TICKET_URL_TEMPLATE.format(port=sim_port),
    }


def portal_env(*, sim_port: int) -> dict[str, str]:
    """The portal's pod settings: the simulator's ConnectWise, whose ticket screen (at localhost) frames it."""
    return {"PORTAL_PSA_PROVIDER": PROVIDER, "PORTAL_PSA_ORIGIN": SCREEN_ORIGIN.format(port=sim_port)}
