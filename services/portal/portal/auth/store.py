"""Sessions and sign-ins in progress, in PostgreSQL (shared by every replica); only hashes of ids are kept."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from portal.auth.crypto import Box, InvalidToken, digest, new_id
from portal.auth.tables import logins, sessions

# last_seen_at is written at most this often: a page that makes several API calls costs one UPDATE.
TOUCH_EVERY_S = 15


def at(ts: float) -> datetime:
    """An epoch time (the runtime clock's) as the aware datetime the tables store."""
    return datetime.fromtimestamp(ts, UTC)


@dataclass(frozen=True)
class Identity:
    """Who signed in, as the id_token said (read through the claim mapping)."""

    sub: str
    role: str
    client_id: str | None
    name: str
    auth_time: int


@dataclass
class SessionRecord:
    """A live session: the identity, its CSRF secret and its tokens (decrypted, in memory only)."""

    id_hash: str
    identity: Identity
    csrf: str
    tokens: dict[str, Any] = field(repr=False)
    created_at: float
    last_seen_at: float
    expires_at: float
    # Set when the request came through the ticket pod: the pod session's id hash, which its reveal
    # nonces are bound to (the session's own hash still names the row holding the tokens).
    pod_hash: str | None = None


@dataclass(frozen=True)
class LoginRecord:
    """A sign-in in progress, taken (once) by the callback."""

    browser_hash: str
    nonce: str = field(repr=False)
    code_verifier: str = field(repr=False)
    return_to: str
    max_age: int | None
    created_at: float


def create_session(
    engine: Engine, box: Box, identity: Identity, tokens: dict[str, Any], *, now: float, absolute_s: int
) -> tuple[str, SessionRecord]:
    """Store a new session; returns the cookie value (never stored) and the record."""
    session_id = new_id()
    csrf = secrets.token_urlsafe(32)
    record = SessionRecord(digest(session_id), identity, csrf, tokens, now, now, now + absolute_s)
    with engine.begin() as conn:
        conn.execute(
            sessions.insert().values(
                id_hash=record.id_hash,
                sub=identity.sub,
                role=identity.role,
                client_id=identity.client_id,
                name=identity.name,
                auth_time=identity.auth_time,
                created_at=at(now),
                last_seen_at=at(now),
                expires_at=at(record.expires_at),
                csrf_enc=box.seal(csrf),
                tokens_enc=box.seal(tokens),
            )
        )
    return session_id, record


def load_session(engine: Engine, box: Box, session_id: str, *, now: float, idle_s: int) -> SessionRecord | None:
    """The live session for a cookie value, or None (an expired one is deleted on the way)."""
    return load_session_hash(engine, box, digest(session_id), now=now, idle_s=idle_s)


def load_session_hash(engine: Engine, box: Box, id_hash: str, *, now: float, idle_s: int) -> SessionRecord | None:
    """The live session with this id hash (a pod session names its person's session so), or None."""
    with engine.begin() as conn:
        row = conn.execute(sa.select(sessions).where(sessions.c.id_hash == id_hash)).mappings().first()
        if row is None:
            return None
        last_seen = row["last_seen_at"].timestamp()
        if row["expires_at"].timestamp() <= now or last_seen + idle_s <= now:
            conn.execute(sessions.delete().where(sessions.c.id_hash == id_hash))
            return None
        try:
            csrf, tokens = box.open(row["csrf_enc"]), box.open(row["tokens_enc"])
        except InvalidToken:
            # Sealed with another key (the key was rotated): the session cannot be used.
            conn.execute(sessions.delete().where(sessions.c.id_hash == id_hash))
            return None
        if now - last_seen >= TOUCH_EVERY_S:
            conn.execute(sessions.update().where(sessions.c.id_hash == id_hash).values(last_seen_at=at(now)))
            last_seen = now
    identity = Identity(row["sub"], row["role"], row["client_id"], row["name"], int(row["auth_time"]))
    return SessionRecord(
        id_hash, identity, csrf, tokens, row["created_at"].timestamp(), last_seen, row["expires_at"].timestamp()
    )


def save_tokens(engine: Engine, box: Box, id_hash: str, tokens: dict[str, Any]) -> None:
    """Replace a session's tokens (a renewed API token, a rotated refresh token)."""
    with engine.begin() as conn:
        conn.execute(sessions.update().where(sessions.c.id_hash == id_hash).values(tokens_enc=box.seal(tokens)))


def delete_session(engine: Engine, box: Box, id_hash: str) -> dict[str, Any] | None:
    """Delete a session; returns its tokens (for revocation at the IdP), or None when there was none."""
    with engine.begin() as conn:
        row = conn.execute(
            sessions.delete().where(sessions.c.id_hash == id_hash).returning(sessions.c.tokens_enc)
        ).first()
    if row is None:
        return None
    try:
        return dict(box.open(row[0]))
    except InvalidToken:
        return None


def create_login(
    engine: Engine,
    box: Box,
    *,
    state: str,
    browser_id: str,
    nonce: str,
    code_verifier: str,
    return_to: str,
    max_age: int | None,
    now: float,
    ttl_s: int,
) -> None:
    """Remember a started sign-in until the callback (and drop expired ones and sessions on the way)."""
    with engine.begin() as conn:
        conn.execute(logins.delete().where(logins.c.expires_at <= at(now)))
        conn.execute(sessions.delete().where(sessions.c.expires_at <= at(now)))
        conn.execute(
            logins.insert().values(
                state_hash=digest(state),
                browser_hash=digest(browser_id),
                secrets_enc=box.seal({"nonce": nonce, "code_verifier": code_verifier}),
                return_to=return_to,
                max_age=max_age,
                created_at=at(now),
                expires_at=at(now + ttl_s),
            )
        )


def take_login(engine: Engine, box: Box, state: str, *, now: float) -> LoginRecord | None:
    """Take (delete and return) the unexpired sign-in for `state`; a second take gets None."""
    with engine.begin() as conn:
        row = (
            conn.execute(logins.delete().where(logins.c.state_hash == digest(state)).returning(*logins.c))
            .mappings()
            .first()
        )
    if row is None or row["expires_at"].timestamp() <= now:
        return None
    try:
        held = box.open(row["secrets_enc"])
    except InvalidToken:
        return None
    return LoginRecord(
        row["browser_hash"],
        str(held["nonce"]),
        str(held["code_verifier"]),
        row["return_to"],
        row["max_age"],
        row["created_at"].timestamp(),
    )
