"""GET /login, GET /auth/callback, POST /logout, GET /signed-out."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from mspkit.errors import Unauthenticated
from mspkit.logging import get_logger
from portal.auth.cookies import LOGIN_COOKIE, SESSION_COOKIE, clear_cookie, set_cookie
from portal.auth.crypto import digest, new_id
from portal.auth.identity import identity_from_claims
from portal.auth.oidc import CLOCK_SKEW_S, IdPUnavailable, SignInRefused
from portal.auth.returnto import safe_return_to
from portal.auth.store import create_login, create_session, delete_session, take_login
from portal.deps import check_csrf, current_session
from portal.errors import ApiUnavailable
from portal.runtime import Runtime, runtime
from portal.templating import render

router = APIRouter(include_in_schema=False)
log = get_logger("portal.auth")
_ID_LENGTH = 43  # secrets.token_urlsafe(32)


def _refused(request: Request, words: str) -> Response:
    """The sign-in failure page: what went wrong in plain words, and a way to start again."""
    return render(request, "errors/signin.html", {"message": words}, status_code=400)


@router.get("/login")
async def login(request: Request, return_to: str | None = None, prompt: str | None = None) -> Response:
    """Start a sign-in at the IdP (code + PKCE, state, nonce); `prompt=login` forces a fresh one."""
    rt = runtime(request)
    fresh = prompt == "login"
    state, nonce, verifier = new_id(), new_id(), secrets.token_urlsafe(48)
    browser = request.cookies.get(LOGIN_COOKIE) or ""
    if len(browser) != _ID_LENGTH:
        browser = new_id()
    try:
        url = await rt.oidc.authorization_url(
            state=state,
            nonce=nonce,
            code_verifier=verifier,
            prompt="login" if fresh else None,
            max_age=0 if fresh else None,
        )
    except IdPUnavailable as exc:
        raise ApiUnavailable("the sign-in service") from exc
    await run_in_threadpool(
        create_login,
        rt.engine,
        rt.box,
        state=state,
        browser_id=browser,
        nonce=nonce,
        code_verifier=verifier,
        return_to=safe_return_to(return_to),
        max_age=0 if fresh else None,
        now=rt.clock(),
        ttl_s=rt.settings.login_ttl_s,
    )
    response = RedirectResponse(url, status_code=303)
    set_cookie(response, LOGIN_COOKIE, browser, rt.settings.login_ttl_s)
    return response


async def _revoke(rt: Runtime, tokens: dict[str, Any] | None) -> None:
    refresh_token = (tokens or {}).get("refresh_token")
    if not refresh_token:
        return
    try:
        await rt.oidc.revoke(str(refresh_token))
    except IdPUnavailable as exc:
        # The session row is gone already; the refresh token dies at its own expiry.
        log.warning("revocation_failed", error=str(exc))


@router.get("/auth/callback")
async def callback(request: Request) -> Response:
    """Finish a sign-in: state (once, same browser), code exchange, id_token checks, a new session id."""
    rt = runtime(request)
    query = request.query_params
    if query.get("error"):
        return _refused(request, "The sign-in service did not sign you in.")
    state, code = query.get("state") or "", query.get("code") or ""
    if not state or not code:
        return _refused(request, "The sign-in answer is incomplete.")
    started = await run_in_threadpool(take_login, rt.engine, rt.box, state, now=rt.clock())
    if started is None:
        return _refused(request, "This sign-in has expired or was already used.")
    browser = request.cookies.get(LOGIN_COOKIE) or ""
    if not browser or digest(browser) != started.browser_hash:
        return _refused(request, "This sign-in was started in another browser.")
    issuer = query.get("iss")
    if issuer is not None and issuer.rstrip("/") != rt.settings.jwt_issuer.rstrip("/"):
        return _refused(request, "The sign-in answer comes from another issuer.")  # RFC 9207 mix-up defence
    try:
        token = await rt.oidc.exchange_code(code, started.code_verifier)
        if not token.get("id_token") or not token.get("refresh_token"):
            raise SignInRefused("the sign-in service gave no identity or refresh token")
        claims = await rt.oidc.verify_id_token(
            str(token["id_token"]), nonce=started.nonce, access_token=token.get("access_token")
        )
        identity = identity_from_claims(claims, rt.settings.claim_map, now=rt.clock())
    except SignInRefused as exc:
        log.info("sign_in_refused", reason=str(exc))
        return _refused(request, "The sign-in could not be completed.")
    except Unauthenticated as exc:
        log.info("sign_in_refused", reason=exc.detail)
        return _refused(request, "Your account has no role in this portal.")
    except IdPUnavailable as exc:
        raise ApiUnavailable("the sign-in service") from exc
    if started.max_age is not None and identity.auth_time < started.created_at - CLOCK_SKEW_S - started.max_age:
        return _refused(request, "The sign-in service did not ask you to sign in again.")
    old = request.cookies.get(SESSION_COOKIE)
    if old:
        # Rotation: whatever session this browser had ends here, so a planted id is worth nothing.
        await _revoke(rt, await run_in_threadpool(delete_session, rt.engine, rt.box, digest(old)))
    tokens = {"refresh_token": token["refresh_token"], "access": {}}
    session_id, _ = await run_in_threadpool(
        create_session, rt.engine, rt.box, identity, tokens, now=rt.clock(), absolute_s=rt.settings.session_absolute_s
    )
    log.info("signed_in", sub=identity.sub, role=identity.role)
    response = RedirectResponse(started.return_to, status_code=303)
    set_cookie(response, SESSION_COOKIE, session_id, rt.settings.session_absolute_s)
    clear_cookie(response, LOGIN_COOKIE)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End the session (CSRF-checked): delete it, revoke its refresh token at the IdP, clear the cookie."""
    rt = runtime(request)
    record = await current_session(request)
    if record is not None:
        await check_csrf(request, record.csrf)
        await _revoke(rt, await run_in_threadpool(delete_session, rt.engine, rt.box, record.id_hash))
        log.info("signed_out", sub=record.identity.sub)
    response = RedirectResponse("/signed-out", status_code=303)
    clear_cookie(response, SESSION_COOKIE)
    return response


@router.get("/signed-out")
async def signed_out(request: Request) -> Response:
    """The page after signing out."""
    return render(request, "signed_out.html", {})
