"""The outbound-mail guard: one check every sender runs on a message just before handing it to SMTP.

`guard_message` decodes every MIME part (multipart walked, base64 and quoted-printable undone, any
charset) and every header (RFC 2047 encoded words, RFC 2231 parameters), and refuses a message
holding a Vault/OpenBao token shape, a JWT, a PEM private key, an `Authorization`/`Bearer` value or
a live canary. A refusal is counted (`msp_mail_refused_total{reason,template}`) and logged as a
warning naming the shape and where it was found, never the value.

Shapes are deliberately narrow where ordinary mail is dense (UUIDs, portal links, image bytes) and
broad where a shape is unmistakable (`hvs.`, `-----BEGIN ... PRIVATE KEY-----`, a JWT header).
Alert on any increase of the counter: a refusal means a template or its input carries a secret.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import html
import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from email.header import decode_header, make_header
from email.message import Message
from functools import lru_cache
from typing import ClassVar
from urllib.parse import quote, quote_plus, unquote, unquote_plus

from prometheus_client import Counter

from mspkit.logging import get_logger

__all__ = [
    "MIN_CANARY_LENGTH",
    "REASONS",
    "Finding",
    "MailRefused",
    "canary_forms",
    "clear_canaries",
    "guard_message",
    "live_canaries",
    "register_canary",
    "scan_message",
]

log = get_logger("mspkit.mailguard")

MAIL_REFUSED = Counter(
    "msp_mail_refused",
    "Outbound messages refused by the mail guard, by the shape found and the sender's template",
    ["reason", "template"],
)

# Checked in this order; a message holding several shapes is refused for the first.
REASONS = ("canary", "pem_private_key", "jwt", "vault_token", "authorization_header", "unreadable")

MIN_CANARY_LENGTH = 8
# Bytes decoded from base64 runs found inside text (one level deep), per message.
_NESTED_BUDGET = 8 * 1024 * 1024


class MailRefused(Exception):
    """The message holds a secret shape and was not sent.

    A permanent error, not a transient one: the same message would be refused again, so a sender
    never retries it as-is (no backoff, no redelivery). Drop or dead-letter the job and fix the
    template or its input. `reason` is the shape's name (one of `REASONS`); the text of this error
    never holds the matched value.
    """

    retryable: ClassVar[bool] = False

    def __init__(self, reason: str, *, location: str = "message", template: str = "unknown") -> None:
        super().__init__(f"outbound mail refused: it holds a {reason} shape (in {location})")
        self.reason = reason
        self.location = location
        self.template = template


@dataclass(frozen=True)
class Finding:
    """What the guard found: the shape's name and where, never the value."""

    reason: str
    location: str


# --- canaries -------------------------------------------------------------------------------------

_canaries: set[str] = set()
_canaries_lock = threading.Lock()


def _check_canary(value: str) -> str:
    if not isinstance(value, str) or len(value) < MIN_CANARY_LENGTH:
        # Short canaries would match ordinary text, and their base64 forms would be a few chars.
        raise ValueError(f"a canary must be a string of at least {MIN_CANARY_LENGTH} characters")
    return value


def register_canary(value: str) -> None:
    """Add a live canary (tests): any message holding it, in any common encoding, is refused."""
    _check_canary(value)
    with _canaries_lock:
        _canaries.add(value)


def clear_canaries() -> None:
    """Forget every registered canary."""
    with _canaries_lock:
        _canaries.clear()


def live_canaries() -> frozenset[str]:
    """The canaries registered in this process."""
    with _canaries_lock:
        return frozenset(_canaries)


def _b64_window(raw: bytes, offset: int, *, urlsafe: bool) -> str:
    """The base64 characters fixed by `raw` alone when it starts `offset` bytes into a stream."""
    encoded = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(b"\0" * offset + raw).decode()
    first = -(-8 * offset // 6)  # the first character whose 6 bits all come from `raw`
    last = 8 * (offset + len(raw)) // 6
    return encoded[first:last]


@lru_cache(maxsize=512)
def canary_forms(canary: str) -> tuple[str, ...]:
    """The canary as plain, base64 and base64url at each of the 3 byte alignments, percent-encoded
    (`%20` and `+` for spaces), JSON-escaped and hex text."""
    raw = canary.encode()
    escaped = json.dumps(canary)[1:-1]
    forms = {
        canary,
        escaped,
        escaped.replace("/", "\\/"),
        json.dumps(canary, ensure_ascii=False)[1:-1],
        quote(canary, safe=""),
        quote(canary),
        quote_plus(canary),
        raw.hex(),
        raw.hex().upper(),
    }
    for offset in range(3):
        for urlsafe in (False, True):
            forms.add(_b64_window(raw, offset, urlsafe=urlsafe))
    # Binary parts are read as Latin-1, where non-ASCII text shows as its UTF-8 bytes.
    forms |= {form.encode().decode("latin-1") for form in forms if not form.isascii()}
    return tuple(sorted(form for form in forms if len(form) >= 4))


# --- shapes ---------------------------------------------------------------------------------------


def _anchored(first: str, rest: str) -> re.Pattern[str]:
    """`first` + `rest`, not inside a longer identifier, a dotted name, an e-mail domain or a URL's
    host (`//s.…`), and not continued by identifier characters or by `.label` (a host name).

    The left check is a lookbehind placed after `first` (which must be fixed-width), so each pattern
    starts with a literal or a character set and the regex engine can skip ahead: a 10 MB
    attachment stays cheap to scan.
    """
    return re.compile(rf"{first}(?<![A-Za-z0-9._@-]{first})(?<!//{first}){rest}(?![A-Za-z0-9_-])(?!\.[A-Za-z0-9])")


_VAULT_TOKENS = (
    # Vault 1.10+: hvs. (service, ~95 chars), hvb. (batch), hvr. (recovery), and any later hv?. type;
    # the body is base64url.
    _anchored("hv", r"[a-z]\.[A-Za-z0-9_-]{24,}"),
    # Vault before 1.10 and OpenBao: s. (service, wrapping and root) and r. (recovery) with exactly
    # 24 base62 characters, the length both issue; exact, so 26-char ULIDs and 32-hex ids never match.
    _anchored("[sbr]", r"\.[A-Za-z0-9]{24}"),
    # Batch tokens of old Vault and OpenBao: b. and a long base64url blob that starts with its
    # version header (AAAA…).
    _anchored("b", r"\.AAAA[A-Za-z0-9_-]{40,}"),
)

_PEM_PRIVATE_KEY = re.compile(r"-{5}\s*BEGIN\s+(?:[A-Z0-9]+\s+)*PRIVATE\s+KEY(?:\s+BLOCK)?\s*-{5}", re.IGNORECASE)

_B64URL = r"[A-Za-z0-9_-]"
_JWT_CANDIDATES = (
    # A JSON header starts with `{`, so its base64url starts with `e`; the lookbehind after it
    # keeps the pattern's literal first character for the engine to skip ahead on.
    re.compile(rf"(e(?<!{_B64URL}e){_B64URL}{{9,}})\.{_B64URL}{{2,}}\.{_B64URL}*"),
    # A JWT glued to a word (`token_eyJ…`): a JSON object `{"` always encodes to `eyJ`.
    re.compile(rf"(eyJ{_B64URL}{{7,}})\.{_B64URL}{{2,}}\.{_B64URL}*"),
)

_TOKEN68 = r"[A-Za-z0-9._~+/=-]"
_AUTH_SCHEMES = (
    r"(?:Bearer|Basic|Digest|Token|Negotiate|NTLM|Bot|ApiKey|Api-Key|Key|OAuth|DPoP|MAC|HOBA|SSWS"
    r"|AWS4-HMAC-SHA256|SCRAM-SHA-256|SCRAM-SHA-1|Splunk|GenieKey)"
)
# `Authorization: <scheme> <credentials>`, as a header line, in JSON, or in a pasted curl command.
_AUTH_WITH_SCHEME = re.compile(
    rf"\b(?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?\s*{_AUTH_SCHEMES}\s+({_TOKEN68}{{6,}})", re.IGNORECASE
)
# A bare value: alone on a header-like line, or as a JSON member.
_AUTH_BARE_LINE = re.compile(
    rf"^[ \t>]*(?:proxy-)?authorization[ \t]*:[ \t]*({_TOKEN68}{{16,}})[ \t]*$", re.IGNORECASE | re.MULTILINE
)
_AUTH_BARE_JSON = re.compile(rf"\"(?:proxy-)?authorization\"\s*:\s*\"({_TOKEN68}{{16,}})\"", re.IGNORECASE)
# `Bearer <token>` anywhere.
_BEARER = re.compile(rf"(?<![A-Za-z0-9])bearer\s+({_TOKEN68}{{16,}})", re.IGNORECASE)
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _credential_like(value: str, min_len: int, *, mixed_case: bool = True) -> bool:
    """A value that looks generated rather than written: prose ("Bearer responsibilities") is not.

    Mixed case alone counts only after an `Authorization` scheme (`Basic dXNlcjpwYXNz` has no
    digit); after a bare "Bearer" it would also match a surname such as "McDonald".
    """
    value = value.rstrip(".,;:!?")
    if len(value) < min_len:
        return False
    return any(ch.isdigit() or ch in "+/=_~." for ch in value) or (
        mixed_case and re.search(r"[a-z][A-Z]", value) is not None
    )


def _has_vault_token(text: str) -> bool:
    return any(pattern.search(text) is not None for pattern in _VAULT_TOKENS)


def _has_pem_private_key(text: str) -> bool:
    return _PEM_PRIVATE_KEY.search(text) is not None


def _is_jwt_header(segment: str) -> bool:
    try:
        decoded = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        header = json.loads(decoded.decode("utf-8"))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return False
    return isinstance(header, dict) and "alg" in header


def _has_jwt(text: str) -> bool:
    if "." not in text:
        return False
    return any(_is_jwt_header(m.group(1)) for pattern in _JWT_CANDIDATES for m in pattern.finditer(text))


def _has_authorization(text: str) -> bool:
    lowered = text.lower()
    if "authorization" not in lowered and "bearer" not in lowered:
        return False
    if any(_credential_like(m.group(1), 8) for m in _AUTH_WITH_SCHEME.finditer(text)):
        return True
    for pattern in (_AUTH_BARE_LINE, _AUTH_BARE_JSON):
        for m in pattern.finditer(text):
            value = m.group(1)
            # A bare UUID may be a label ("Authorization: <approval id>"); with a scheme it is not.
            if _credential_like(value, 16) and not _UUID.fullmatch(value):
                return True
    return any(_credential_like(m.group(1), 16, mixed_case=False) for m in _BEARER.finditer(text))


_SHAPES: tuple[tuple[str, Callable[[str], bool]], ...] = (
    ("pem_private_key", _has_pem_private_key),
    ("jwt", _has_jwt),
    ("vault_token", _has_vault_token),
    ("authorization_header", _has_authorization),
)


# --- what is read ---------------------------------------------------------------------------------

# Locations name parts by position and headers and types from fixed lists, so a location can
# never carry a value from the message.
_KNOWN_HEADERS = {
    name.lower(): name
    for name in (
        "Subject From To Cc Bcc Reply-To Sender Date Message-ID In-Reply-To References MIME-Version "
        "Content-Type Content-Transfer-Encoding Content-Disposition Content-ID Content-Description "
        "Content-Language List-Unsubscribe List-Id Auto-Submitted Precedence X-Mailer Authorization "
        "Proxy-Authorization Return-Path"
    ).split()
}
_KNOWN_MAINTYPES = {"text", "image", "audio", "video", "application", "multipart", "message", "font", "model"}
_RICH_APPLICATION = re.compile(r"(json|xml|javascript|x-www-form-urlencoded|yaml|x-sh|x-shellscript)")


@dataclass
class _Segment:
    location: str
    text: str
    rich: bool  # also read it URL-decoded, HTML-unescaped and with its base64 runs decoded


def _header_location(where: str, name: str) -> str:
    return f"{where} header {_KNOWN_HEADERS.get(name.lower(), '(other)')}"


def _part_location(path: str, part: Message) -> str:
    maintype = part.get_content_maintype()
    kind = maintype if maintype in _KNOWN_MAINTYPES else "other"
    return f"part {path} {kind}" if path else f"message {kind}"


def _walk(part: Message, path: str = "") -> Iterator[tuple[str, Message]]:
    yield path, part
    payload = part.get_payload()
    if part.is_multipart() and isinstance(payload, list):
        for index, sub in enumerate(payload, 1):
            if isinstance(sub, Message):
                yield from _walk(sub, f"{path}.{index}" if path else str(index))


_UNFOLD = re.compile(r"\r?\n(?=[ \t])")  # RFC 5322 unfolding removes the line break, not the space


def _decode_header_value(raw: str) -> str:
    try:
        return str(make_header(decode_header(raw)))
    except (ValueError, LookupError, UnicodeError, binascii.Error):
        return raw


_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def _decode_bytes(data: bytes, charset: str | None, *, text: bool) -> list[str]:
    """The bytes as text every way that may matter: declared charset, BOM, UTF-8 for text parts,
    and Latin-1 (lossless, so an ASCII shape inside binary data is still seen)."""
    texts: list[str] = []
    bom = next((enc for mark, enc in _BOMS if data.startswith(mark)), None)
    for encoding in (charset, bom, "utf-8" if text else None):
        if not encoding:
            continue
        try:
            texts.append(data.decode(encoding, "replace"))
        except (LookupError, ValueError):
            continue  # an unknown charset name: the other decodings still read the bytes
    texts.append(data.decode("latin-1"))
    return texts


def _is_rich(part: Message) -> bool:
    maintype = part.get_content_maintype()
    return maintype in {"text", "message"} or (
        maintype == "application" and _RICH_APPLICATION.search(part.get_content_subtype()) is not None
    )


def _part_segments(path: str, part: Message) -> Iterator[_Segment]:
    where = f"part {path}" if path else "message"
    for name, value in part.raw_items():
        raw = _UNFOLD.sub("", str(value))
        location = _header_location(where, name)
        yield _Segment(location, f"{name}: {raw}", True)
        yield _Segment(location, f"{name}: {_decode_header_value(raw)}", True)
    filename = part.get_filename()
    if filename:
        yield _Segment(f"{where} filename", filename, True)
    if part.is_multipart():
        for extra, label in ((part.preamble, "preamble"), (part.epilogue, "epilogue")):
            if extra:
                yield _Segment(f"{where} {label}", extra, True)
        return
    location = _part_location(path, part)
    rich = _is_rich(part)
    is_text = part.get_content_maintype() == "text"
    payload = part.get_payload()
    data = part.get_payload(decode=True)
    if isinstance(payload, str) and (data is None or part.get("Content-Transfer-Encoding", "").lower() != "base64"):
        # The text as it goes on the wire (quoted-printable, 7bit, 8bit, or what could not be
        # decoded); base64 on the wire can hold no shape that its decoded bytes do not.
        yield _Segment(location, payload, False)
    if is_text and hasattr(part, "get_content"):
        try:
            yield _Segment(location, part.get_content(), rich)
        except (LookupError, ValueError, UnicodeError, KeyError):
            pass  # the decoded bytes below are read anyway
    if isinstance(data, bytes):
        for text in _decode_bytes(data, part.get_content_charset(), text=is_text):
            yield _Segment(location, text, rich)


def _segments(msg: Message) -> list[_Segment]:
    seen: set[tuple[str, bool]] = set()
    out: list[_Segment] = []
    for path, part in _walk(msg):
        for segment in _part_segments(path, part):
            key = (segment.text, segment.rich)
            if segment.text and key not in seen:
                seen.add(key)
                out.append(segment)
    return out


_B64_RUN = re.compile(r"[A-Za-z0-9+/_-]{24,}={0,2}")
_FOLDED = re.compile(r"[ \t]*\r?\n[ \t]*")
_WHITESPACE = re.compile(r"\s+")


def _b64_decode(run: str) -> bytes | None:
    body = run.rstrip("=").replace("-", "+").replace("_", "/")
    body = body[: len(body) - len(body) % 4] if len(body) % 4 == 1 else body
    try:
        return base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


class _Views:
    """Each segment read every way the guard reads it, computed once per message."""

    def __init__(self, segments: list[_Segment]) -> None:
        self.budget = _NESTED_BUDGET
        self.items: list[tuple[str, list[str], list[str]]] = []  # location, shape views, canary views
        for segment in segments:
            shape_views = self._shape_views(segment)
            # Text may hold a base64 or hex blob wrapped over lines; binary data has no lines.
            canary_views = [*shape_views, _WHITESPACE.sub("", segment.text)] if segment.rich else shape_views
            self.items.append((segment.location, _unique(shape_views), _unique(canary_views)))

    def _shape_views(self, segment: _Segment) -> list[str]:
        text = segment.text
        if not segment.rich:
            return [text]
        views = [text, unquote(text), unquote_plus(text), html.unescape(text)]
        # One level of base64 inside text (a token base64'd into a link or a pasted blob), with
        # wrapped lines joined.
        for source in (text, _FOLDED.sub("", text)):
            for m in _B64_RUN.finditer(source):
                if self.budget <= 0:
                    break
                data = _b64_decode(m.group(0))
                if data:
                    self.budget -= len(data)
                    views.append(data.decode("latin-1"))
        return views


def _unique(views: list[str]) -> list[str]:
    return list(dict.fromkeys(view for view in views if view))


def _find(views: _Views, canaries: Iterable[str]) -> Finding | None:
    forms = [form for canary in canaries for form in canary_forms(canary)]
    if forms:
        for location, _, canary_views in views.items:
            if any(form in view for view in canary_views for form in forms):
                return Finding("canary", location)
    for reason, has_shape in _SHAPES:
        for location, shape_views, _ in views.items:
            if any(has_shape(view) for view in shape_views):
                return Finding(reason, location)
    return None


def scan_message(msg: Message, *, canaries: Iterable[str] = ()) -> Finding | None:
    """The first secret shape in the message (every part and header decoded), or None; records nothing."""
    return _find(_Views(_segments(msg)), _wanted_canaries(canaries))


def _wanted_canaries(canaries: Iterable[str]) -> list[str]:
    return sorted({_check_canary(c) for c in canaries} | live_canaries())


_TEMPLATE_LABEL = re.compile(r"[a-z0-9_.:-]{1,64}")


def _template_label(template: str) -> str:
    return template if _TEMPLATE_LABEL.fullmatch(template) else "other"


def guard_message(msg: Message, *, canaries: Iterable[str] = (), template: str = "unknown") -> None:
    """Refuse (raise MailRefused), count and log a message holding a secret shape; call it last before SMTP."""
    label = _template_label(template)
    wanted = _wanted_canaries(canaries)  # a bad canary argument raises ValueError: the caller's bug
    finding: Finding | None
    try:
        finding = _find(_Views(_segments(msg)), wanted)
    except Exception as exc:  # noqa: BLE001 - fail closed: a message the guard cannot read is not sent
        log.warning("mail_refused", reason="unreadable", template=label, error=type(exc).__name__)
        MAIL_REFUSED.labels("unreadable", label).inc()
        raise MailRefused("unreadable", template=label) from None
    if finding is None:
        return
    MAIL_REFUSED.labels(finding.reason, label).inc()
    log.warning("mail_refused", reason=finding.reason, template=label, location=finding.location)
    raise MailRefused(finding.reason, location=finding.location, template=label)
