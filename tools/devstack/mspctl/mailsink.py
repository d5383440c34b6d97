"""The dev mail sink: an aiosmtpd server storing .eml files, and a page listing them.

Run as `python -m mspctl.mailsink --dir D --smtp-port P --http-port Q`.
"""

from __future__ import annotations

import argparse
import html
import os
import time
import uuid
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import getaddresses
from pathlib import Path
from typing import Any, cast

import uvicorn
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route


class StoreHandler:
    """aiosmtpd handler writing each message to `<dir>/<time>-<uuid>.eml`."""

    def __init__(self, mail_dir: Path) -> None:
        self.mail_dir = mail_dir

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Store the message atomically (readers never see half a file)."""
        content = envelope.original_content or b""
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:12]}.eml"
        header = (
            f"X-Mspctl-Mail-From: {envelope.mail_from}\r\nX-Mspctl-Rcpt-To: {', '.join(envelope.rcpt_tos)}\r\n"
        ).encode()
        tmp = self.mail_dir / f".{name}.tmp"
        tmp.write_bytes(header + content)
        os.replace(tmp, self.mail_dir / name)
        return "250 Message accepted for delivery"


def _body(msg: EmailMessage, subtype: str) -> str | None:
    """The decoded text/<subtype> body (transfer encoding and charset undone), or None when absent."""
    part = msg.get_body(preferencelist=(subtype,))
    if part is None or part.get_content_type() != f"text/{subtype}":
        return None
    try:
        content = str(part.get_content())
    except (LookupError, UnicodeError, ValueError):
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            return None
        content = payload.decode("utf-8", "replace")
    # Lines end as in the text, not as on the wire (CRLF).
    return content.replace("\r\n", "\n")


def _addresses(value: str) -> list[str]:
    return [address for _, address in getaddresses([value]) if address]


def list_messages(mail_dir: Path) -> list[dict[str, Any]]:
    """Stored messages, newest first: `{id, from, to: [address], subject, date, text, html}` (decoded bodies).

    `to` is the envelope's recipients (what the relay delivered to), or the To header's addresses.
    """
    items = []
    for path in sorted(mail_dir.glob("*.eml"), reverse=True):
        # policy.default builds EmailMessage objects (get_body, get_content).
        msg = cast(EmailMessage, message_from_bytes(path.read_bytes(), policy=policy.default))
        envelope_to = [a.strip() for a in str(msg.get("X-Mspctl-Rcpt-To", "")).split(",") if a.strip()]
        items.append(
            {
                "id": path.stem,
                "from": str(msg.get("From", "")),
                "to": envelope_to or _addresses(str(msg.get("To", ""))),
                # Unfolded and trimmed: a long subject is folded on the wire.
                "subject": str(msg.get("Subject", "")).strip(),
                "date": str(msg.get("Date", "")),
                "text": _body(msg, "plain"),
                "html": _body(msg, "html"),
            }
        )
    return items


def create_app(mail_dir: Path) -> Starlette:
    """The HTTP listing app."""

    async def index(request: Request) -> HTMLResponse:
        rows = "".join(
            f"<tr><td>{html.escape(m['date'])}</td><td>{html.escape(m['from'])}</td>"
            f"<td>{html.escape(', '.join(m['to']))}</td>"
            f"<td><a href='messages/{html.escape(m['id'])}.eml'>"
            f"{html.escape(m['subject']) or '(no subject)'}</a></td></tr>"
            for m in list_messages(mail_dir)
        )
        page = (
            "<!doctype html><title>mspctl mail</title><h1>Mail sink</h1>"
            "<p><a href='messages.json'>messages.json</a></p>"
            f"<table border=1><tr><th>Date</th><th>From</th><th>To</th><th>Subject</th></tr>{rows}</table>"
        )
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    async def messages_json(request: Request) -> JSONResponse:
        return JSONResponse(list_messages(mail_dir), headers={"Cache-Control": "no-store"})

    async def message(request: Request) -> Response:
        msg_id = request.path_params["msg_id"]
        path = mail_dir / f"{msg_id}.eml"
        if "/" in msg_id or msg_id.startswith(".") or not path.is_file():
            return PlainTextResponse("not found", 404)
        return PlainTextResponse(path.read_text(errors="replace"), headers={"Cache-Control": "no-store"})

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/", index),
            Route("/messages.json", messages_json),
            Route("/messages/{msg_id}.eml", message),
            Route("/healthz", healthz),
        ]
    )


def main() -> None:
    """Run the SMTP sink (background thread) and the HTTP page (foreground)."""
    parser = argparse.ArgumentParser(description="mspctl mail sink")
    parser.add_argument("--dir", required=True)
    parser.add_argument("--smtp-port", type=int, required=True)
    parser.add_argument("--http-port", type=int, required=True)
    # Loopback for mspctl; a container (docker-compose.dev.yml) listens on its own interface instead.
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    mail_dir = Path(args.dir)
    mail_dir.mkdir(parents=True, exist_ok=True)
    controller = Controller(StoreHandler(mail_dir), hostname=args.host, port=args.smtp_port)
    controller.start()
    try:
        uvicorn.run(create_app(mail_dir), host=args.host, port=args.http_port, log_level="info", access_log=False)
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
