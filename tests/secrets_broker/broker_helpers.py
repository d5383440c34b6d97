"""Plain helpers for the broker tests (imported by name: tests/secrets_broker is put on sys.path)."""

from __future__ import annotations

import email
import re
import uuid
from collections.abc import Callable
from email import policy
from pathlib import Path
from typing import Any

import httpx
import requests

API_ROLE = "msp-broker-api"
STRONG_REASON = "customer ticket 4711: reset the portal login"
# Metadata only: what a credential row shows, never `secret` or `notes`.
CREDENTIAL_FIELDS = {
    "id",
    "client_id",
    "vendor_account_id",
    "kind",
    "owner",
    "category",
    "name",
    "username",
    "url",
    "status",
    "created_by",
    "task_id",
    "created_at",
    "updated_at",
}


def audit_rows(engine: Any, **where: Any) -> list[Any]:
    """Audit entries matching `column=value` filters, in chain order."""
    from sqlalchemy import text

    clause = " AND ".join(f"{k} = :{k}" for k in where) or "true"
    with engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    f"SELECT index, action, actor, rule, release_id, canonical FROM audit_entries WHERE {clause} "
                    "ORDER BY index"
                ),
                where,
            )
        )


def release_row(engine: Any, release_id: Any) -> Any:
    """The release row (as the broker's role sees it)."""
    from sqlalchemy import text

    with engine.connect() as conn:
        return conn.execute(text("SELECT * FROM releases WHERE id = :i"), {"i": release_id}).one()


class MintingSource:
    """A SecretIdSource that mints a fresh wrapped secret id per login, like a launcher restart."""

    def __init__(self, devstack_dir: Path, role: str = API_ROLE) -> None:
        self.devstack_dir = devstack_dir
        self.role = role
        self.taken = 0

    def take(self) -> tuple[str, str] | None:
        from mspctl.bao import mint_wrapped_secret_id

        self.taken += 1
        return mint_wrapped_secret_id(self.devstack_dir, self.role)


def unwrap_at_vault(vault_addr: str, token: str) -> requests.Response:
    """Unwrap directly at OpenBao with only the wrapping token, as a recipient would."""
    return requests.post(f"{vault_addr}/v1/sys/wrapping/unwrap", headers={"X-Vault-Token": token}, timeout=5)


def lookup_at_vault(vault_addr: str, token: str) -> requests.Response:
    """Look a wrapping token up (does not consume it)."""
    return requests.post(f"{vault_addr}/v1/sys/wrapping/lookup", json={"token": token}, timeout=5)


class World:
    """Plain helpers over the real intake (HTTP) and the in-process broker."""

    def __init__(
        self,
        broker: Any,
        intake_url: str,
        auth: Callable[..., dict[str, str]],
        devstack_dir: Path,
        vendor_sync_url: str | None = None,
    ):
        self.broker = broker
        self.intake = httpx.Client(base_url=intake_url, timeout=10)
        # The live vendor_sync registry, where vendor accounts (which credentials name) are made.
        self.registry = httpx.Client(base_url=vendor_sync_url, timeout=10) if vendor_sync_url else None
        self.auth = auth
        self.devstack_dir = devstack_dir
        self.admin = auth("admin", "admin-1")
        # One service token per target: vendor_sync calling the broker, and calling intake.
        self.vendor_sync = auth("service", "svc:vendor_sync", aud=["secrets_broker"])
        self.vendor_sync_at_intake = auth("service", "svc:vendor_sync", aud=["intake"])

    # ---- intake ----

    def new_client(self) -> uuid.UUID:
        """A fresh active client at intake."""
        suffix = uuid.uuid4().hex[:10]
        r = self.intake.post(
            "/v1/clients",
            headers=self.admin,
            json={
                "name": f"Client {suffix}",
                "primary_domain": f"c{suffix}.example.com",
                "approver_emails": [f"boss@c{suffix}.example.com"],
                "purchase_approval_threshold_cents": 100000,
            },
        )
        assert r.status_code == 201, r.text
        return uuid.UUID(r.json()["id"])

    def new_vendor(self, *, kind: str = "registrar", name: str | None = None, adapter: str | None = None) -> uuid.UUID:
        """A fresh vendor at the live vendor_sync (names are unique there: a random one unless given)."""
        assert self.registry is not None, "this World has no vendor_sync"
        body: dict[str, Any] = {"name": name or f"Vendor {uuid.uuid4().hex[:12]}", "kind": kind}
        if adapter is not None:
            body["adapter"] = adapter
        vendor = self.registry.post("/v1/vendors", headers=self.admin, json=body)
        assert vendor.status_code == 201, vendor.text
        return uuid.UUID(vendor.json()["id"])

    def new_vendor_account(
        self, client_id: uuid.UUID, *, kind: str = "registrar", vendor_id: uuid.UUID | None = None, **vendor: Any
    ) -> uuid.UUID:
        """The client's account at a vendor (a fresh one of `kind` unless given), at the live vendor_sync."""
        assert self.registry is not None, "this World has no vendor_sync"
        vendor_id = vendor_id or self.new_vendor(kind=kind, **vendor)
        account = self.registry.post(
            f"/v1/clients/{client_id}/vendor-accounts",
            headers=self.admin,
            json={"vendor_id": str(vendor_id), "account_number": f"ACC-{uuid.uuid4().hex[:8]}"},
        )
        assert account.status_code == 201, account.text
        return uuid.UUID(account.json()["id"])

    def tech(self, sub: str) -> dict[str, str]:
        """A technician's headers."""
        return self.auth("technician", sub)

    def new_task(
        self,
        client_id: uuid.UUID,
        *,
        assignee: str | None,
        credential_ids: list[uuid.UUID] | tuple[uuid.UUID, ...] = (),
        vendor_account_ids: list[uuid.UUID] | tuple[uuid.UUID, ...] = (),
        categories: list[str] | tuple[str, ...] = (),
        in_progress: bool = True,
    ) -> uuid.UUID:
        """A system task with this scope, made ready, assigned and (by default) started.

        A system task names no credentials: an admin adds them to its scope (checked at the broker).
        """
        r = self.intake.post(
            "/internal/tasks",
            headers=self.vendor_sync_at_intake,
            json={
                "client_id": str(client_id),
                "type": "provisioning",
                "title": "Provision the account",
                "vendor_account_ids": [str(v) for v in vendor_account_ids],
                "credential_categories": list(categories),
            },
        )
        assert r.status_code == 201, r.text
        task_id = uuid.UUID(r.json()["id"])
        if credential_ids:
            self.change_scope(task_id, add={"credential_ids": [str(c) for c in credential_ids]})
        self.transition(task_id, "ready", self.admin)
        if assignee is not None:
            self.assign(task_id, assignee)
            if in_progress:
                self.transition(task_id, "in_progress", self.tech(assignee))
        return task_id

    def scope_call(self, task_id: uuid.UUID, headers: dict[str, str] | None = None, **change: Any) -> Any:
        """POST /v1/tasks/{id}/scope (as admin unless told otherwise) with `add=` / `remove=` parts."""
        return self.intake.post(f"/v1/tasks/{task_id}/scope", headers=headers or self.admin, json=change)

    def change_scope(self, task_id: uuid.UUID, **change: Any) -> dict[str, Any]:
        """Change a task's scope as admin; the task after it."""
        r = self.scope_call(task_id, **change)
        assert r.status_code == 200, r.text
        return dict(r.json())

    def assign(self, task_id: uuid.UUID, assignee: str) -> None:
        """Assign (or reassign) as admin; the technician gets the staff row intake requires of an assignee."""
        self.tech(assignee)  # the `auth` factory seeds a technician's staff row (every client) unless one exists
        r = self.intake.post(f"/v1/tasks/{task_id}/assign", headers=self.admin, json={"assignee": assignee})
        assert r.status_code == 200, r.text

    def transition(self, task_id: uuid.UUID, to: str, headers: dict[str, str]) -> None:
        """Move a task."""
        r = self.intake.post(f"/v1/tasks/{task_id}/transition", headers=headers, json={"to": to})
        assert r.status_code == 200, r.text

    def request_approval(
        self,
        task_id: uuid.UUID,
        *,
        credential_ids: list[uuid.UUID],
        categories: list[str],
        contact_email: str,
        party_category: str = "provider_for_client",
        name: str = "Acme Fibre Ltd",
    ) -> uuid.UUID:
        """Ask the client to approve a disclosure (as admin)."""
        r = self.intake.post(
            f"/v1/tasks/{task_id}/approvals",
            headers=self.admin,
            json={
                "recipient": {"name": name, "contact_email": contact_email, "party_category": party_category},
                "information_categories": categories,
                "credential_ids": [str(c) for c in credential_ids],
                "expires_in_s": 3600,
            },
        )
        assert r.status_code == 201, r.text
        return uuid.UUID(r.json()["id"])

    def decide_approval(self, approval_id: uuid.UUID, client_id: uuid.UUID, decision: str) -> None:
        """The client's admin decides."""
        r = self.intake.post(
            f"/v1/approvals/{approval_id}/decision",
            headers=self.auth("client_admin", "client-boss", client_id),
            json={"decision": decision},
        )
        assert r.status_code == 200, r.text

    # ---- broker ----

    def new_credential(
        self,
        client_id: uuid.UUID,
        *,
        secret: str | None = None,
        kind: str = "password",
        category: str = "isp",
        vendor_account_id: uuid.UUID | None = None,
        notes: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[uuid.UUID, str]:
        """Store a credential as admin; returns (id, secret)."""
        secret = secret or f"pw-{uuid.uuid4().hex}"
        body: dict[str, Any] = {
            "client_id": str(client_id),
            "kind": kind,
            "owner": "client",
            "category": category,
            "name": "ISP portal",
            "username": "admin@example.com",
            "secret": secret,
        }
        if vendor_account_id is not None:
            body["vendor_account_id"] = str(vendor_account_id)
        if notes is not None:
            body["notes"] = notes
        r = self.broker.post("/v1/credentials", headers=headers or self.admin, json=body)
        assert r.status_code == 201, r.text
        return uuid.UUID(r.json()["id"]), secret

    def release(
        self,
        sub: str,
        task_id: uuid.UUID,
        credential_id: uuid.UUID,
        *,
        reason: str = STRONG_REASON,
        approval_id: uuid.UUID | None = None,
    ) -> Any:
        """POST /v1/releases as technician `sub`."""
        body: dict[str, Any] = {"task_id": str(task_id), "credential_id": str(credential_id), "reason": reason}
        if approval_id is not None:
            body["approval_id"] = str(approval_id)
        return self.broker.post("/v1/releases", headers=self.tech(sub), json=body)

    def ready(self, *, credential_kw: dict[str, Any] | None = None) -> tuple[uuid.UUID, uuid.UUID, str, uuid.UUID, str]:
        """A client, a credential in scope of an in-progress task assigned to a fresh technician.

        Returns (client_id, credential_id, secret, task_id, technician sub).
        """
        client_id = self.new_client()
        credential_id, secret = self.new_credential(client_id, **(credential_kw or {}))
        sub = f"tech-{uuid.uuid4().hex[:8]}"
        task_id = self.new_task(client_id, assignee=sub, credential_ids=[credential_id])
        return client_id, credential_id, secret, task_id, sub

    def unwrap(self, sub: str, token: str) -> Any:
        """POST /v1/unwrap as technician `sub`."""
        return self.broker.post("/v1/unwrap", headers=self.tech(sub), json={"wrap_token": token})

    def reveal(self, code: str) -> Any:
        """POST /v1/reveal with a mailed reveal code and no bearer token, as a third party's browser would."""
        return self.broker.post("/v1/reveal", json={"code": code})

    def third_party_token(self, *, secret: str | None = None) -> tuple[uuid.UUID, uuid.UUID, str, uuid.UUID, str, str]:
        """A third-party release with an approved approval; returns (client, credential, secret, task, sub, code).

        The code is the reveal code mailed to the recipient (read from the mail sink's link).
        """
        client_id, credential_id, secret, task_id, sub = self.ready(
            credential_kw={"secret": secret} if secret else None
        )
        contact = f"isp-{uuid.uuid4().hex[:8]}@fibre.example.net"
        approval_id = self.request_approval(
            task_id, credential_ids=[credential_id], categories=["credentials"], contact_email=contact
        )
        self.decide_approval(approval_id, client_id, "approved")
        r = self.release(sub, task_id, credential_id, approval_id=approval_id)
        assert r.status_code == 201, r.text
        return client_id, credential_id, secret, task_id, sub, self.mailed_token(contact)

    def mailed_token(self, address: str) -> str:
        """The reveal code in the one link mailed to `address` (the URL fragment)."""
        mails = self.mails_to(address)
        assert len(mails) == 1
        links = re.findall(r"https?://\S+/reveal#(\S+)", mails[0].get_content())
        assert len(links) == 1
        return str(links[0])

    # ---- mail ----

    def mails_to(self, address: str) -> list[email.message.EmailMessage]:
        """Messages in the sink addressed to `address`."""
        out = []
        for path in sorted((self.devstack_dir / "mail").glob("*.eml")):
            msg = email.message_from_bytes(path.read_bytes(), policy=policy.default)
            if address in str(msg.get("To", "")):
                out.append(msg)  # type: ignore[arg-type]
        return out
