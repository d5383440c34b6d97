"""Sign-in under the dev issuer's Entra-shaped profile (pairwise sub, `oid`, a roles array, an extn. tenant claim).

The portal reads who signed in through the `MSP_AUTH_*` claim mapping alone. When the whole suite runs
with MSP_DEV_TOKEN_PROFILE=entra every portal test does this; here a second issuer in the Entra profile
and a second portal configured for it run beside the suite's own, whatever profile the suite uses.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from portal_helpers import session_id, sign_in

from mspctl.ports import free_port
from mspctl.threaded_server import ThreadedServer
from mspctl.tokens import PROFILE_CLAIM_SETTINGS
from portal.auth.crypto import digest
from portal.auth.tables import sessions

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def entra_portal(monkeypatch, devstack_dir, portal_rt):
    from mspctl import issuer
    from portal.main import create_portal_app
    from portal.runtime import Runtime
    from portal.settings import Settings

    issuer_url = f"http://127.0.0.1:{free_port()}"
    portal_url = f"http://127.0.0.1:{free_port()}"
    # The in-process issuer reads MSP_PORTAL_URL per request: it registers this portal's callback.
    monkeypatch.setenv("MSP_PORTAL_URL", portal_url)
    idp = ThreadedServer(issuer.create_app(devstack_dir, issuer_url, "entra"), int(issuer_url.rsplit(":", 1)[1]))
    idp.start()
    monkeypatch.setenv("MSP_JWT_ISSUER", issuer_url)
    monkeypatch.setenv("MSP_JWKS_URL", issuer_url + "/.well-known/jwks.json")
    monkeypatch.setenv("MSP_TOKEN_URL", issuer_url + "/oauth/token")
    for key, value in PROFILE_CLAIM_SETTINGS["entra"].items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    app = create_portal_app(settings, runtime_factory=lambda: Runtime.build(settings, portal_rt.engine))
    served = ThreadedServer(app, int(portal_url.rsplit(":", 1)[1])).start()
    try:
        yield portal_url
    finally:
        served.stop()
        idp.stop()


def test_sign_in_on_the_entra_profile_reads_claims_through_the_mapping(entra_portal, portal_rt, people):
    client = sign_in(entra_portal, "acme-admin")
    page = client.get("/")
    assert page.status_code == 200 and 'href="/approvals"' in page.text
    with portal_rt.engine.connect() as conn:
        row = conn.execute(sa.select(sessions).where(sessions.c.id_hash == digest(session_id(client)))).mappings().one()
    # The subject is `oid` (the id_token's own `sub` is pairwise), the role came from `roles`.
    assert (row["sub"], row["role"], row["client_id"]) == ("acme-admin", "client_admin", people["acme-admin"].client_id)
    tech = sign_in(entra_portal, "tech1")
    assert 'href="/tasks"' in tech.get("/").text
