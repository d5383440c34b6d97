"""What provisioning asks of the broker besides keys: the disclosure ledger, and credentials it creates.

A disclosure is recorded before client information leaves for a vendor; when the broker refuses, nothing
is sent. A credential a vendor hands back during provisioning goes to the broker (and the task's scope)
at once, and nowhere else.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import httpx

from mspkit.errors import AppError
from mspkit.service_tokens import ServiceClient
from vendor_sync.intake_client import IntakeProvisioning
from vendor_sync.sync.vendor_keys import get_key_source


class BrokerUnavailable(Exception):
    """The broker did not take the call (unreachable, slow, 5xx, 429, our token refused): try later."""


class BrokerRefused(Exception):
    """The broker answered a 4xx about this call (`rule`: its rule or error code); retrying will not help."""

    def __init__(self, rule: str) -> None:
        super().__init__(rule)
        self.rule = rule


class DisclosureRefused(BrokerRefused):
    """The broker refused the disclosure (e.g. the approval is not approved): nothing may be sent."""


def _post(broker: ServiceClient, path: str, body: dict[str, Any]) -> httpx.Response:
    try:
        response = broker.post(path, json=body)
    except httpx.HTTPError as exc:
        raise BrokerUnavailable(f"broker unreachable ({type(exc).__name__})") from None
    except AppError as exc:
        raise BrokerUnavailable(f"service token unavailable ({exc.code})") from None
    if response.status_code in (401, 429) or response.status_code >= 500:
        raise BrokerUnavailable(f"broker answered {response.status_code}")
    return response


def _refusal(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    rule = body.get("rule") or body.get("error") if isinstance(body, dict) else None
    return str(rule)[:64] if isinstance(rule, str) and rule else f"http_{response.status_code}"


def record_disclosure(
    *,
    approval_id: str,
    task_id: uuid.UUID,
    vendor_id: uuid.UUID,
    categories: Sequence[str],
    idempotency_key: str,
    broker: ServiceClient | None = None,
) -> str:
    """Ledger the disclosure (`POST /internal/disclosures`); its ledger id, or DisclosureRefused with the rule."""
    body = {
        "approval_id": approval_id,
        "task_id": str(task_id),
        "vendor_id": str(vendor_id),
        "information_categories": list(categories),
        "idempotency_key": idempotency_key,
    }
    response = _post(broker or get_key_source().broker, "/internal/disclosures", body)
    if 400 <= response.status_code < 500:
        raise DisclosureRefused(_refusal(response))
    if response.status_code not in (200, 201):
        raise BrokerUnavailable(f"broker answered {response.status_code}")
    try:
        return str(response.json()["id"])
    except (ValueError, KeyError, TypeError):
        raise BrokerUnavailable("broker's ledger row is malformed") from None


def store_provisioned_credential(
    *,
    intake: IntakeProvisioning,
    task_id: uuid.UUID,
    credential: dict[str, Any],
    broker: ServiceClient | None = None,
) -> uuid.UUID:
    """Put a credential a vendor created for this task in the broker and in the task's scope; its id.

    `credential` is the `POST /v1/credentials` body (the secret goes to the broker only, never a log or row).
    """
    response = _post(broker or get_key_source().broker, "/v1/credentials", {**credential, "task_id": str(task_id)})
    if response.status_code != 201:
        raise BrokerRefused(_refusal(response))
    credential_id = uuid.UUID(str(response.json()["id"]))
    intake.add_scope(task_id, [credential_id])
    return credential_id
