"""Pod sign-in codes and pod sessions in PostgreSQL (only hashes of codes and cookie values are kept).

A code (60 s, single use) is minted in the sign-in pop-up for the person's portal session; the pod
trades it for a pod session, which names that portal session: the tokens stay in the session row,
encrypted as ever, and signing out of the portal (or its expiry) ends the pod sessions with it (FK
cascade). A pod session has its own CSRF secret and ends after `pod_idle_s` without a request.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace

import sqlalchemy as sa
from sqlalchemy import Engine

from portal.auth.crypto import Box, InvalidToken, digest, new_id
from portal.auth.store import TOUCH_EVERY_S, SessionRecord, at, load_session_hash
from portal.db import SCHEMA

CODE_TTL_S = 60

metadata = sa.MetaData(schema=SCHEMA)
# `session_hash` references portal.sessions ON DELETE CASCADE (the migration declares the keys).

pod_codes = sa.Table(
    "pod_codes",
    metadata,
    sa.Column("code_hash", sa.String(64), primary_key=True),
    sa.Column("session_hash", sa.String(64), nullable=False),
    sa.Column("sub", sa.String(200), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)

pod_sessions = sa.Table(
    "pod_sessions",
    metadata,
    sa.Column("id_hash", sa.String(64), primary_key=True),
    sa.Column("session_hash", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("csrf_enc", sa.LargeBinary, nullable=False),
)


@dataclass(frozen=True)
class CodeGrant:
    """What a code was minted for: the person's portal session and their subject."""

    session_hash: str
    sub: str


@dataclass(frozen=True)
class PodSession:
    """A live pod session (the cookie value is never kept)."""

    id_hash: str
    session_hash: str
    csrf: str = field(repr=False)


def mint_code(engine: Engine, *, session_hash: str, sub: str, now: float) -> str:
    """A fresh single-use code for this person's session, valid CODE_TTL_S; expired codes are swept."""
    code = new_id()
    with engine.begin() as conn:
        conn.execute(pod_codes.delete().where(pod_codes.c.expires_at <= at(now)))
        conn.execute(
            pod_codes.insert().values(
                code_hash=digest(code), session_hash=session_hash, sub=sub, expires_at=at(now + CODE_TTL_S)
            )
        )
    return code


def take_code(engine: Engine, code: str, *, now: float) -> CodeGrant | None:
    """Use a code once (DELETE ... RETURNING: two racing requests cannot both win); None if unknown or expired."""
    with engine.begin() as conn:
        row = conn.execute(
            pod_codes.delete()
            .where(pod_codes.c.code_hash == digest(code))
            .returning(pod_codes.c.session_hash, pod_codes.c.sub, pod_codes.c.expires_at)
        ).first()
    if row is None or row.expires_at.timestamp() <= now:
        return None
    return CodeGrant(row.session_hash, row.sub)


def create_pod_session(engine: Engine, box: Box, *, session_hash: str, now: float) -> tuple[str, PodSession]:
    """A new pod session on the person's portal session; returns the cookie value and the record."""
    value = new_id()
    record = PodSession(digest(value), session_hash, secrets.token_urlsafe(32))
    with engine.begin() as conn:
        conn.execute(
            pod_sessions.insert().values(
                id_hash=record.id_hash,
                session_hash=session_hash,
                created_at=at(now),
                last_seen_at=at(now),
                csrf_enc=box.seal(record.csrf),
            )
        )
    return value, record


def delete_pod_session(engine: Engine, value: str) -> None:
    """End the pod session of a cookie value (a new sign-in in the same frame replaces it)."""
    with engine.begin() as conn:
        conn.execute(pod_sessions.delete().where(pod_sessions.c.id_hash == digest(value)))


def _live_pod(engine: Engine, box: Box, value: str, *, now: float, idle_s: int) -> PodSession | None:
    id_hash = digest(value)
    with engine.begin() as conn:
        row = conn.execute(sa.select(pod_sessions).where(pod_sessions.c.id_hash == id_hash)).mappings().first()
        if row is None:
            return None
        last_seen = row["last_seen_at"].timestamp()
        try:
            csrf = str(box.open(row["csrf_enc"]))
        except InvalidToken:
            csrf = ""  # sealed with a rotated key: unusable
        if last_seen + idle_s <= now or not csrf:
            conn.execute(pod_sessions.delete().where(pod_sessions.c.id_hash == id_hash))
            return None
        if now - last_seen >= TOUCH_EVERY_S:
            conn.execute(pod_sessions.update().where(pod_sessions.c.id_hash == id_hash).values(last_seen_at=at(now)))
    return PodSession(id_hash, row["session_hash"], csrf)


def load_pod(
    engine: Engine, box: Box, value: str, *, now: float, pod_idle_s: int, session_idle_s: int
) -> SessionRecord | None:
    """The person's session as the pod sees it (the pod's CSRF secret, nonces bound to the pod), or None."""
    pod = _live_pod(engine, box, value, now=now, idle_s=pod_idle_s)
    if pod is None:
        return None
    session = load_session_hash(engine, box, pod.session_hash, now=now, idle_s=session_idle_s)
    if session is None:
        return None
    return replace(session, csrf=pod.csrf, pod_hash=pod.id_hash)
