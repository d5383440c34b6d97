"""`GET /v1/releases`: releases newest first, service releases included, with who, when and why;
and `GET /internal/releases/{id}`, one release with its credential's name for intake's access alert.

Who may list, and which client they are held to, is decided before this module is called
(`deps.AuditClient`: an admin sees every client or the one asked for, a client_admin only their
own). A page is one keyset query and, for third parties' releases, one query for their ledger rows,
which name the recipient.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlmodel import Session, col

from mspkit.errors import NotFound
from mspkit.pagination import keyset, page_of
from secrets_broker.credentials.models import Credential
from secrets_broker.ledger.models import Disclosure
from secrets_broker.release.models import Release


def list_page(
    session: Session,
    *,
    client_id: uuid.UUID | None,
    credential_id: uuid.UUID | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[tuple[Release, Disclosure | None]], str | None]:
    """A page of releases (of `client_id`, of `credential_id` when given), newest first, each with its ledger row."""
    stmt = select(Release)
    if client_id is not None:
        stmt = stmt.where(col(Release.client_id) == client_id)
    if credential_id is not None:
        stmt = stmt.where(col(Release.credential_id) == credential_id)
    stmt = keyset(stmt, at=col(Release.created_at), id_=col(Release.id), limit=limit, cursor=cursor, descending=True)
    rows, next_cursor = page_of(session.execute(stmt).scalars().all(), limit=limit, key=lambda r: (r.created_at, r.id))
    third_party = [r.id for r in rows if r.recipient_type == "third_party"]
    ledger: dict[uuid.UUID, Disclosure] = {}
    if third_party:
        found = session.execute(select(Disclosure).where(col(Disclosure.release_id).in_(third_party))).scalars()
        ledger = {d.release_id: d for d in found}
    return [(r, ledger.get(r.id)) for r in rows], next_cursor


def get_with_name(session: Session, *, release_id: uuid.UUID) -> tuple[Release, Disclosure | None, str]:
    """One release, its ledger row (third party) and its credential's name; 404 when unknown."""
    row = session.execute(
        select(Release, Credential.name)  # type: ignore[call-overload]
        .join(Credential, col(Credential.id) == col(Release.credential_id))
        .where(col(Release.id) == release_id)
    ).first()
    if row is None:
        raise NotFound("release not found")
    release, name = row
    disclosure = None
    if release.recipient_type == "third_party":
        disclosure = session.execute(
            select(Disclosure).where(col(Disclosure.release_id) == release.id)
        ).scalar_one_or_none()
    return release, disclosure, str(name)
