"""The dev issuer's HTML: the sign-in page (one button per demo person) and its error page. No script."""

from __future__ import annotations

from html import escape

from starlette.responses import HTMLResponse

from mspctl.oidc import AuthorizationRequest, OAuthError
from mspctl.people import Person

# No `form-action`: browsers apply it to the redirect after the POST too, which goes to the client.
_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        '<!doctype html>\n<html lang="en">\n<head><meta charset="utf-8">'
        f"<title>{escape(title)}</title></head>\n<body>\n<main>\n<h1>{escape(title)}</h1>\n{body}</main>\n</body>\n</html>\n"
    )
    return HTMLResponse(html, status, headers=_HEADERS)


def _describe(person: Person) -> str:
    where = f", client {person.client_id}" if person.client_id else ""
    return f"{person.name} ({person.role}{where})" if person.name else f"{person.role}{where}"


def signin(request: AuthorizationRequest, people: list[Person]) -> HTMLResponse:
    """The page asking which demo person to sign in as; each button POSTs the checked request back."""
    hidden = "".join(
        f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in request.params().items()
    )
    items = []
    for i, person in enumerate(people):
        items.append(
            f'<li><form method="post" action="/authorize">{hidden}'
            f'<button type="submit" name="sub" value="{escape(person.sub)}" aria-describedby="who-{i}">'
            f"Sign in as {escape(person.sub)}</button> "
            f'<span id="who-{i}">{escape(_describe(person), quote=False)}</span></form></li>\n'
        )
    seeded = any(p.client_id for p in people)
    note = (
        "" if seeded else "<p>Only staff can sign in until the demo clients are seeded by <code>mspctl up</code>.</p>\n"
    )
    body = (
        f"<p>Development sign-in for <strong>{escape(request.client_id)}</strong>: "
        "choose who you are. No password: this issuer exists only on a dev stack.</p>\n"
        f'{note}<ul aria-label="Demo people">\n{"".join(items)}</ul>\n'
    )
    return _page("Dev sign-in", body)


def error(exc: OAuthError) -> HTMLResponse:
    """A refused authorization request, said in words (never redirected to an unchecked redirect_uri)."""
    body = (
        f"<p>This sign-in request was refused: {escape(exc.description, quote=False)}</p>\n"
        f"<p>Error code: <code>{escape(exc.error)}</code></p>\n"
    )
    return _page("Sign-in refused", body, exc.status)
