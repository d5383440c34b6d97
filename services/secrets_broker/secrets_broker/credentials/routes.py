"""Credential routes: create, list, read, rotate. Secrets go in, never out."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from mspkit.pagination import Cursor, Limit, Page
from secrets_broker.credentials import service, task_scope
from secrets_broker.credentials.schemas import CredentialCreate, CredentialPublic, SecretRotate
from secrets_broker.deps import (
    CredentialReaderService,
    CredentialWriter,
    Gateway,
    Intake,
    Registry,
    SessionDep,
    SettingsDep,
    StaffOrClientAdmin,
    Technician,
)

router = APIRouter(tags=["credentials"])


@router.post("/v1/credentials", status_code=201, response_model=CredentialPublic)
def create_credential(
    body: CredentialCreate,
    session: SessionDep,
    user: CredentialWriter,
    gateway: Gateway,
    intake: Intake,
    registry: Registry,
    settings: SettingsDep,
) -> CredentialPublic:
    """Store a credential; its secret and notes go to the secret store only and are never returned."""
    credential = service.create(
        session, user=user, body=body, gateway=gateway, intake=intake, registry=registry, settings=settings
    )
    return CredentialPublic.model_validate(credential)


@router.get("/v1/credentials", response_model=Page[CredentialPublic])
def list_credentials(
    session: SessionDep,
    user: StaffOrClientAdmin,
    intake: Intake,
    limit: Limit = 50,
    cursor: Cursor = None,
    client_id: uuid.UUID | None = None,
    task_id: uuid.UUID | None = None,
) -> Page[CredentialPublic]:
    """Credentials the caller may see; technicians only those in scope of their in-progress tasks.

    `task_id`: exactly the credentials in that task's scope (an admin, or the task's assignee; anyone
    else gets the 404 of a missing task).
    """
    if task_id is not None:
        rows, next_cursor = task_scope.list_for_task(
            session, user=user, intake=intake, task_id=task_id, client_id=client_id, limit=limit, cursor=cursor
        )
    else:
        rows, next_cursor = service.list_visible(
            session, user=user, intake=intake, client_id=client_id, limit=limit, cursor=cursor
        )
    return Page[CredentialPublic](items=[CredentialPublic.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.get("/v1/credentials/{credential_id}", response_model=CredentialPublic)
def get_credential(
    credential_id: uuid.UUID, session: SessionDep, user: StaffOrClientAdmin, intake: Intake
) -> CredentialPublic:
    """One credential's metadata."""
    credential = service.get_visible(session, user=user, intake=intake, credential_id=credential_id)
    return CredentialPublic.model_validate(credential)


@router.get("/internal/credentials/{credential_id}", response_model=CredentialPublic)
def get_credential_for_service(
    credential_id: uuid.UUID, session: SessionDep, _: CredentialReaderService
) -> CredentialPublic:
    """One credential's metadata, never its secret (intake: task scopes; vendor_sync: account keys); 404 unknown."""
    return CredentialPublic.model_validate(service.get_for_service(session, credential_id=credential_id))


@router.put("/v1/credentials/{credential_id}/secret", response_model=CredentialPublic)
def rotate_secret(
    credential_id: uuid.UUID,
    body: SecretRotate,
    session: SessionDep,
    user: Technician,
    gateway: Gateway,
    intake: Intake,
    settings: SettingsDep,
) -> CredentialPublic:
    """Replace the secret with a new version: allowed as a release would be for the task named, and audited."""
    credential = service.rotate(
        session, user=user, credential_id=credential_id, body=body, gateway=gateway, intake=intake, settings=settings
    )
    return CredentialPublic.model_validate(credential)
