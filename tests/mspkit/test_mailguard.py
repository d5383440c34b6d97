"""The outbound-mail guard: every planted secret shape is refused wherever it hides; ordinary mail passes."""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import random
import re
import secrets
import string
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import base64mime, message_from_bytes, policy, quoprimime
from email.headerregistry import Address
from email.message import EmailMessage, Message
from email.utils import formatdate, make_msgid
from urllib.parse import quote, quote_plus

import jwt
import pytest
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from mspkit import mailguard
from mspkit.errors import AppError, Unavailable
from mspkit.http.errors import VendorTransientError
from mspkit.logging import configure_logging
from mspkit.mailguard import (
    MailRefused,
    canary_forms,
    clear_canaries,
    guard_message,
    live_canaries,
    register_canary,
    scan_message,
)

PORTAL = "https://portal.example.com"
BASE62 = string.ascii_letters + string.digits


@pytest.fixture(autouse=True)
def _no_canaries() -> Iterator[None]:
    clear_canaries()
    yield
    clear_canaries()


# --- planted values -------------------------------------------------------------------------------


def _base62(n: int) -> str:
    return "".join(secrets.choice(BASE62) for _ in range(n))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _pem(key: object, fmt: serialization.PrivateFormat, *, password: bytes | None = None) -> str:
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, fmt, encryption).decode()  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Plant:
    """A secret as it would leak (`text`), the shape it must be refused as, and the part that is secret."""

    name: str
    reason: str
    text: str
    secret: str

    @property
    def one_line(self) -> str:
        """The form that fits in a header: a PEM block's BEGIN line plus its first body line."""
        lines = [line for line in self.text.splitlines() if line.strip()]
        return " ".join(lines[:2])


def _shape_plants() -> list[Plant]:
    hvs = "hvs." + secrets.token_urlsafe(68)  # 95 characters, as Vault 1.10+ issues
    hvb = "hvb.AAAAAQ" + secrets.token_urlsafe(120)
    hvr = "hvr." + _base62(26)
    legacy_s = "s." + _base62(23) + "7"  # exactly 24 base62 characters after the prefix
    legacy_b = "b.AAAAAQ" + secrets.token_urlsafe(110)  # old Vault and OpenBao batch tokens
    hs256 = jwt.encode({"sub": "tech1", "aud": "secrets_broker"}, secrets.token_hex(32), algorithm="HS256")
    ed_key = ed25519.Ed25519PrivateKey.generate()
    eddsa = jwt.encode({"sub": "svc:intake", "exp": 4102444800}, ed_key, algorithm="EdDSA")
    spaced_header = _b64url(b'{ "alg": "none", "typ": "JWT" }')
    unsigned = f"{spaced_header}.{_b64url(json.dumps({'sub': 'admin'}).encode())}."
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    pems = {
        "pem_pkcs8": _pem(ed_key, serialization.PrivateFormat.PKCS8),
        "pem_rsa": _pem(rsa_key, serialization.PrivateFormat.TraditionalOpenSSL),
        "pem_ec": _pem(ec_key, serialization.PrivateFormat.TraditionalOpenSSL),
        "pem_openssh": _pem(ed_key, serialization.PrivateFormat.OpenSSH),
        "pem_encrypted": _pem(ec_key, serialization.PrivateFormat.PKCS8, password=b"correct horse"),
    }
    bearer = secrets.token_urlsafe(32)
    basic = base64.b64encode(f"svc-psa:{secrets.token_urlsafe(12)}".encode()).decode()
    api_key = secrets.token_hex(20)
    plants = [
        Plant("vault_hvs", "vault_token", f"wrap token: {hvs}", hvs),
        Plant("vault_hvb", "vault_token", f"batch={hvb}", hvb),
        Plant("vault_hvr", "vault_token", f"recovery {hvr}.", hvr),
        Plant("vault_legacy_s", "vault_token", f"{PORTAL}/reveal#{legacy_s}", legacy_s),
        Plant("vault_legacy_b", "vault_token", f"token {legacy_b}", legacy_b),
        Plant("jwt_hs256", "jwt", f"id token {hs256}", hs256),
        Plant("jwt_eddsa", "jwt", f"{PORTAL}/callback?t={eddsa}", eddsa),
        Plant("jwt_glued", "jwt", f"access_token_{eddsa}", eddsa),
        Plant("jwt_alg_none", "jwt", f"token: {unsigned}", unsigned),
        Plant("authorization_bearer", "authorization_header", f"Authorization: Bearer {bearer}", bearer),
        Plant("authorization_basic", "authorization_header", f"curl -H 'Authorization: Basic {basic}'", basic),
        Plant("authorization_json", "authorization_header", json.dumps({"Authorization": api_key}), api_key),
        Plant("bearer_alone", "authorization_header", f"use Bearer {bearer} for the API", bearer),
    ]
    for name, block in pems.items():
        body_line = block.splitlines()[1]
        plants.append(Plant(name, "pem_private_key", f"key:\n{block}", body_line))
    return plants


CANARY = f'cnry/{uuid.uuid4().hex[:12]} +"q\\ü='


def _b64_at(offset: int, *, urlsafe: bool) -> str:
    data = b"x" * offset + CANARY.encode() + b"-tail"
    return (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(data).decode()


def _canary_plants() -> list[Plant]:
    forms = {
        "canary_plain": f"note: {CANARY}",
        "canary_b64_0": f"blob {_b64_at(0, urlsafe=False)}",
        "canary_b64_1": f"blob {_b64_at(1, urlsafe=False)}",
        "canary_b64_2": f"blob {_b64_at(2, urlsafe=False)}",
        "canary_b64url_1": f"{PORTAL}/x?state={_b64_at(1, urlsafe=True)}",
        "canary_b64url_2": f"{PORTAL}/x?state={_b64_at(2, urlsafe=True)}",
        "canary_url": f"{PORTAL}/search?q={quote(CANARY, safe='')}",
        "canary_url_plus": f"{PORTAL}/search?q={quote_plus(CANARY)}",
        "canary_json": json.dumps({"note": CANARY}),
        "canary_hex": f"trace={CANARY.encode().hex()}",
        "canary_HEX": f"trace={CANARY.encode().hex().upper()}",
    }
    return [Plant(name, "canary", text, CANARY) for name, text in forms.items()]


SHAPES = _shape_plants()
CANARIES = _canary_plants()


# --- placements -----------------------------------------------------------------------------------


def _base(subject: str = "Your request was updated") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = Address("MSP Notifications", "notify", "msp.example.com")
    msg["To"] = Address("Jürgen Müller", "j.mueller", "client.example")
    msg["Subject"] = subject
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = make_msgid(domain="msp.invalid")
    return msg


def _ordinary_text() -> str:
    return f"Hello,\n\nYour request changed status. Details: {PORTAL}/requests/{uuid.uuid4()}\n"


def in_text(value: str) -> EmailMessage:
    msg = _base()
    msg.set_content(f"{_ordinary_text()}\n{value}\n")
    return msg


def in_html(value: str) -> EmailMessage:
    msg = _base()
    msg.set_content(_ordinary_text())
    msg.add_alternative(
        f"<html><body><p>Status changed.</p><pre>{html.escape(value)}</pre></body></html>", subtype="html"
    )
    return msg


def in_base64_part(value: str) -> EmailMessage:
    msg = _base()
    msg.set_content(f"{_ordinary_text()}\n{value}\n", cte="base64")
    return msg


def in_quoted_printable_part(value: str) -> EmailMessage:
    msg = _base()
    # A long line, so quoted-printable also splits the value with soft line breaks.
    msg.set_content(f"{'Ünïcode padding ' * 3}{value}\n{_ordinary_text()}", cte="quoted-printable")
    return msg


def in_subject(value: str) -> EmailMessage:
    """The whole Subject as RFC 2047 encoded words, alternating b and q, so every value is split."""
    msg = _base(subject="PLACEHOLDER")
    msg.set_content(_ordinary_text())
    subject = f"Grüße — {value}"
    chunks = [subject[i : i + 11] for i in range(0, len(subject), 11)]
    words = [
        (quoprimime if n % 2 else base64mime).header_encode(chunk.encode(), charset="utf-8")
        for n, chunk in enumerate(chunks)
    ]
    wire = msg.as_bytes().replace(b"Subject: PLACEHOLDER\n", ("Subject: " + "\n ".join(words) + "\n").encode(), 1)
    parsed = message_from_bytes(wire, policy=policy.default)
    assert isinstance(parsed, EmailMessage) and str(parsed["Subject"]) == subject
    return parsed


def in_attachment(value: str) -> EmailMessage:
    msg = _base()
    msg.set_content(_ordinary_text())
    msg.add_attachment(value.encode(), maintype="application", subtype="octet-stream", filename="notes.bin")
    return msg


PLACEMENTS: dict[str, Callable[[str], EmailMessage]] = {
    "text": in_text,
    "html": in_html,
    "base64": in_base64_part,
    "quoted_printable": in_quoted_printable_part,
    "subject_rfc2047": in_subject,
    "attachment": in_attachment,
}


def _on_the_wire(msg: EmailMessage) -> EmailMessage:
    """The message as a receiver parses it: encoded words, transfer encodings and all."""
    parsed = message_from_bytes(msg.as_bytes(), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _build(placement: str, plant: Plant) -> EmailMessage:
    value = plant.one_line if placement == "subject_rfc2047" else plant.text
    return PLACEMENTS[placement](value)


def _refused_count(reason: str, template: str) -> float:
    return REGISTRY.get_sample_value("msp_mail_refused_total", {"reason": reason, "template": template}) or 0.0


def _assert_refused(msg: Message, plant: Plant, *, template: str = "test.matrix", **kwargs: object) -> MailRefused:
    before = _refused_count(plant.reason, template)
    with capture_logs() as logs, pytest.raises(MailRefused) as caught:
        guard_message(msg, template=template, **kwargs)  # type: ignore[arg-type]
    refused = caught.value
    assert refused.reason == plant.reason, (plant.name, refused.location)
    assert _refused_count(plant.reason, template) == before + 1
    assert [entry["event"] for entry in logs] == ["mail_refused"]
    assert logs[0]["log_level"] == "warning" and logs[0]["reason"] == plant.reason
    exposed = " ".join([str(refused), repr(refused), repr(refused.args), refused.location, repr(logs)])
    for needle in {plant.secret, plant.secret[:16], *(canary_forms(CANARY) if plant.reason == "canary" else ())}:
        assert needle not in exposed, plant.name
    return refused


# --- refused --------------------------------------------------------------------------------------


@pytest.mark.parametrize("placement", PLACEMENTS)
@pytest.mark.parametrize("plant", SHAPES, ids=lambda p: p.name)
def test_each_shape_is_refused_wherever_it_is_placed(plant: Plant, placement: str) -> None:
    msg = _build(placement, plant)
    _assert_refused(msg, plant)
    _assert_refused(_on_the_wire(msg), plant)


@pytest.mark.parametrize("placement", PLACEMENTS)
@pytest.mark.parametrize("plant", CANARIES, ids=lambda p: p.name)
def test_a_registered_canary_is_refused_in_every_form_and_place(plant: Plant, placement: str) -> None:
    register_canary(CANARY)
    msg = _build(placement, plant)
    _assert_refused(msg, plant)
    _assert_refused(_on_the_wire(msg), plant)


@pytest.mark.parametrize("plant", CANARIES, ids=lambda p: p.name)
def test_a_canary_given_as_argument_is_refused_and_not_kept(plant: Plant) -> None:
    msg = in_text(plant.text)
    _assert_refused(msg, plant, canaries=[CANARY])
    assert live_canaries() == frozenset()
    assert scan_message(msg) is None


def test_the_placements_really_encode() -> None:
    """Guards the matrix itself: each placement hides the value from a plain-text search of the source."""
    plant = next(p for p in SHAPES if p.name == "vault_hvs")
    for placement in ("base64", "quoted_printable", "subject_rfc2047", "attachment"):
        source = _build(placement, plant).as_bytes().decode("latin-1")
        assert plant.secret not in source, placement
    subject = re.search(rb"\nSubject: (.*?)\n(?! )", in_subject(plant.one_line).as_bytes(), re.S)
    assert subject and b"=?utf-8?b?" in subject.group(1) and b"=?utf-8?q?" in subject.group(1)


def test_the_subject_is_found_after_rfc2047_decoding_only() -> None:
    plant = next(p for p in SHAPES if p.name == "vault_legacy_s")
    refused = _assert_refused(_on_the_wire(in_subject(plant.text)), plant)
    assert refused.location == "message header Subject"


def test_a_nested_message_and_a_multipart_preamble_are_read() -> None:
    plant = next(p for p in SHAPES if p.name == "jwt_hs256")
    inner = in_base64_part(plant.text)
    outer = _base()
    outer.set_content(_ordinary_text())
    outer.add_attachment(inner)  # message/rfc822
    _assert_refused(_on_the_wire(outer), plant)

    with_preamble = _base()
    with_preamble.set_content(_ordinary_text())
    with_preamble.add_alternative("<p>ok</p>", subtype="html")
    with_preamble.preamble = plant.text
    _assert_refused(_on_the_wire(with_preamble), plant)


def test_an_authorization_header_on_the_message_itself_is_refused() -> None:
    plant = next(p for p in SHAPES if p.name == "authorization_bearer")
    msg = _base()
    msg["Authorization"] = f"Bearer {plant.secret}"
    msg.set_content(_ordinary_text())
    refused = _assert_refused(_on_the_wire(msg), plant)
    assert refused.location == "message header Authorization"


def test_a_token_base64_encoded_inside_a_link_is_refused() -> None:
    plant = next(p for p in SHAPES if p.name == "vault_hvs")
    state = base64.urlsafe_b64encode(json.dumps({"token": plant.secret}).encode()).decode()
    _assert_refused(in_html(f"{PORTAL}/continue?state={state}"), plant)


def test_charsets_other_than_utf8_are_decoded() -> None:
    plant = next(p for p in SHAPES if p.name == "authorization_bearer")
    for charset in ("utf-16", "utf-32", "iso-8859-15", "cp1252"):
        msg = _base()
        msg.set_content(f"Grüße\n{plant.text}\n".encode(charset), maintype="text", subtype="plain", cte="base64")
        msg.set_param("charset", charset)
        _assert_refused(_on_the_wire(msg), plant)


def test_a_canary_shorter_than_eight_characters_is_rejected() -> None:
    with pytest.raises(ValueError):
        register_canary("short")
    with pytest.raises(ValueError):
        guard_message(in_text("hello"), canaries=["tiny"])


def test_clear_canaries_forgets_them() -> None:
    register_canary(CANARY)
    assert live_canaries() == {CANARY}
    clear_canaries()
    assert scan_message(in_text(CANARY)) is None


def test_a_message_the_guard_cannot_read_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_: Message) -> list[object]:
        raise RuntimeError("cannot walk")

    monkeypatch.setattr(mailguard, "_segments", broken)
    with capture_logs() as logs, pytest.raises(MailRefused) as caught:
        guard_message(in_text("hello"), template="broken")
    assert caught.value.reason == "unreadable"
    assert logs[0]["reason"] == "unreadable"


def test_mail_refused_is_a_permanent_error() -> None:
    assert not issubclass(MailRefused, VendorTransientError | Unavailable | AppError | OSError)
    assert MailRefused.retryable is False
    assert "permanent" in (MailRefused.__doc__ or "")
    assert "never retries" in (MailRefused.__doc__ or "")


def test_the_rendered_log_line_holds_no_value(capsys: pytest.CaptureFixture[str]) -> None:
    """Through the services' real logging pipeline, not only captured event dicts."""
    plant = next(p for p in SHAPES if p.name == "vault_hvs")
    saved_config = structlog.get_config()
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    stream = io.StringIO()
    try:
        monkey_stderr, sys.stderr = sys.stderr, stream
        try:
            configure_logging("test-mailguard")
        finally:
            sys.stderr = monkey_stderr
        with pytest.raises(MailRefused):
            guard_message(in_text(plant.text), template="broker.reveal_link")
    finally:
        structlog.configure(**saved_config)
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        structlog.contextvars.clear_contextvars()
    line = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert line["event"] == "mail_refused" and line["reason"] == "vault_token"
    assert line["template"] == "broker.reveal_link"
    assert plant.secret not in stream.getvalue() and plant.secret[:12] not in stream.getvalue()


def test_the_template_label_is_bounded() -> None:
    plant = next(p for p in SHAPES if p.name == "vault_hvs")
    with pytest.raises(MailRefused) as caught:
        guard_message(in_text(plant.text), template=f"weird {plant.secret}")
    assert caught.value.template == "other"
    assert plant.secret not in str(caught.value)


# --- passes ---------------------------------------------------------------------------------------


def approval_request_mail() -> EmailMessage:
    """As intake's worker sends it to a client's approvers (contract § notifications)."""
    approval_id, request_id = uuid.uuid4(), uuid.uuid4()
    until = (datetime.now(UTC) + timedelta(days=14)).isoformat(timespec="seconds")
    msg = _base(subject="Approval needed: share spam-filter credentials with MailChannels — Müller & Söhne GmbH")
    msg["Reply-To"] = "no-reply@msp.example.com"
    text = (
        "Hello Jürgen Müller,\n\n"
        "Your approval is requested before we disclose anything on your behalf.\n\n"
        f"Request: Spam filter setup ({request_id})\n"
        "What would be disclosed: credentials, mail_routing, domain\n"
        "To whom: MailChannels Corp. (provider working for you)\n"
        "Party category: provider_for_client\n"
        f"Until: {until}\n"
        "Amount: €1,250.00 (over your approval threshold of €1,000.00)\n\n"
        "This authorization request decides nothing by itself; the bearer of this link must sign in.\n"
        "Authorization: pending your decision\n\n"
        f"Review and decide: {PORTAL}/approvals/{approval_id}\n\n"
        "— Your MSP team\n"
    )
    msg.set_content(text)
    msg.add_alternative(
        "<html><body>"
        f"<p>Hello Jürgen Müller,</p><p>Request <code>{request_id}</code> needs your approval.</p>"
        "<table><tr><th>Disclosed</th><td>credentials, mail_routing, domain</td></tr>"
        "<tr><th>To</th><td>MailChannels Corp. &amp; partners</td></tr>"
        f"<tr><th>Until</th><td>{until}</td></tr></table>"
        f'<p><a href="{PORTAL}/approvals/{approval_id}">Review and decide</a></p>'
        "</body></html>",
        subtype="html",
    )
    return msg


def access_alert_mail() -> EmailMessage:
    """As sent to a client's alert_emails when a credential is released to a person."""
    task_id, release_id = uuid.uuid4(), uuid.uuid4()
    when = datetime(2026, 3, 4, 9, 30, tzinfo=UTC).isoformat()
    msg = _base(subject="Access alert: Cloudflare API key (acme.example) was released to Tech One")
    msg.set_content(
        "A credential of yours was released.\n\n"
        "Who: Tech One (tech1)\n"
        "Credential: Cloudflare API key — acme.example\n"
        f"Task: Rotate DNS records ({task_id})\n"
        "Reason: staff change; rotate the DNS API key and update MX records.\n"
        f"When: {when}\n"
        f"Release: {release_id}\n\n"
        f"Every release of your credentials: {PORTAL}/access\n",
        cte="quoted-printable",
    )
    return msg


def reveal_code_mail() -> EmailMessage:
    """The broker's third-party mail carries its own reveal code, which is no Vault token shape."""
    msg = _base(subject="A credential has been shared with you")
    msg.set_content(
        "Hello Vendor Support,\n\n"
        "Open this link to view it. It works once and only until 2026-03-04T10:30:00+00:00:\n\n"
        f"https://broker.example.com/reveal#{secrets.token_urlsafe(32)}\n"
    )
    return msg


def _image_with_token_like_bytes() -> bytes:
    rng = random.Random(1404)
    noise = bytes(rng.getrandbits(8) for _ in range(64 * 1024))
    near_misses = [
        b"\x00s.\x01\x02",
        b"as.ABCDEFGHIJKLMNOPQRSTUVWX\x00",  # glued to a letter
        b"\x00s.ABCDEFGHIJKLMNOPQRSTUVWXYZ12\x00",  # 30 characters, not 24
        b"\x00s.ABCDEFGHIJ\x00hvs\x00hvs.short\x00",
        b"IEND\xaeB`\x82s.1234567890",
    ]
    return b"\x89PNG\r\n\x1a\n" + noise[:20000] + b"".join(near_misses) + noise[20000:]


def image_attachment_mail() -> EmailMessage:
    image = _image_with_token_like_bytes()
    msg = _base(subject="Your monthly report")
    msg.set_content(f"The chart is attached. {PORTAL}/requests/{uuid.uuid4()}\n")
    msg.add_alternative(
        f'<p>Chart:</p><img src="data:image/png;base64,{base64.b64encode(image[:3000]).decode()}">',
        subtype="html",
    )
    msg.add_attachment(image, maintype="image", subtype="png", filename="chart.png")
    msg.add_attachment(
        b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n",
        maintype="application",
        subtype="pdf",
        filename="report.pdf",
    )
    return msg


def near_miss_mail() -> EmailMessage:
    """Strings that share a prefix or a length with a token shape and are not one."""
    ulid = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
    msg = _base(subject="Drift review for s.example.com")
    msg.set_content(
        f"ULID s.{ulid}\n"
        f"id s.{uuid.uuid4().hex}\n"
        f"short s.{_base62(23)} x\n"
        "glued items.ABCDEFGHIJKLMNOPQRSTUVWX\n"
        "host s.abcdefghijklmnopqrstuvwx.example.com and mail ops@s.abcdefghijklmnopqrstuvwx\n"
        "url https://s.abcdefghijklmnopqrstuvwx/path and https://hvs.abcdefghijklmnopqrstuvwxyz.example/\n"
        f"Authorization: {uuid.uuid4()}\n"
        "Authorization: Token re-issued by the vendor\n"
        "Bearer responsibilities are listed in the contract; bearer bonds are not accepted.\n"
        "Signed by the bearer MacAllisterFitzgerald of the Vendor Relations team.\n"
        "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
        "version 1.2.3.4 and mail.example.com.\n"
    )
    return msg


ORDINARY: dict[str, Callable[[], EmailMessage]] = {
    "approval_request": approval_request_mail,
    "access_alert": access_alert_mail,
    "reveal_code": reveal_code_mail,
    "image_attachment": image_attachment_mail,
    "near_misses": near_miss_mail,
}


@pytest.mark.parametrize("make", ORDINARY.values(), ids=list(ORDINARY))
def test_ordinary_mail_passes(make: Callable[[], EmailMessage]) -> None:
    register_canary(CANARY)
    msg = make()
    for candidate in (msg, _on_the_wire(msg)):
        assert scan_message(candidate) is None
        with capture_logs() as logs:
            guard_message(candidate, template="test.ordinary")
        assert logs == []


_name_chars = st.characters(categories=("Lu", "Ll", "Lo"))
names = st.text(alphabet=st.one_of(_name_chars, st.sampled_from(" '-")), min_size=1, max_size=40).map(
    lambda s: s.strip() or "Anonymous"
)
_label = st.from_regex(r"[a-z][a-z0-9]{0,30}", fullmatch=True)
addresses = st.builds(
    lambda user, labels, name: Address(name, user, ".".join(labels)),
    st.from_regex(r"[a-z][a-z0-9._-]{0,15}", fullmatch=True).filter(lambda u: ".." not in u and u[-1] not in "._-"),
    st.lists(_label, min_size=2, max_size=3),
    names,
)
links = st.builds(
    lambda kind, ident, query: f"{PORTAL}/{kind}/{ident}{query}",
    st.sampled_from(["approvals", "requests", "tasks", "access", "clients"]),
    st.uuids().map(str),
    st.one_of(st.just(""), st.uuids().map(lambda u: f"?client_id={u}"), st.uuids().map(lambda u: f"#release-{u.hex}")),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    recipient=addresses,
    client=names,
    technician=names,
    credential=names,
    ids=st.lists(st.uuids(), min_size=1, max_size=5),
    portal_links=st.lists(links, min_size=1, max_size=4),
    when=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1)),
    amount_cents=st.integers(min_value=0, max_value=10**9),
    cte=st.sampled_from([None, "base64", "quoted-printable", "8bit"]),
    with_csv=st.booleans(),
)
def test_any_mail_of_uuids_names_and_portal_links_passes(
    recipient: Address,
    client: str,
    technician: str,
    credential: str,
    ids: list[uuid.UUID],
    portal_links: list[str],
    when: datetime,
    amount_cents: int,
    cte: str | None,
    with_csv: bool,
) -> None:
    msg = EmailMessage()
    msg["From"] = Address("MSP Notifications", "notify", "msp.example.com")
    msg["To"] = recipient
    msg["Subject"] = f"{client}: {credential} released to {technician}"
    msg["Message-ID"] = make_msgid(domain="msp.invalid")
    lines = [
        f"Hello {recipient.display_name},",
        f"Client: {client}",
        f"Technician: {technician} <{recipient.addr_spec}>",
        f"Credential: {credential}",
        f"When: {when.isoformat()}  Amount: {amount_cents / 100:,.2f}",
        *(f"Id: {i}  ({i.hex}, {_b64url(i.bytes)}, {i.urn})" for i in ids),
        *portal_links,
    ]
    text = "\n".join(lines) + "\n"
    msg.set_content(text, cte=cte) if cte else msg.set_content(text)
    msg.add_alternative(
        "<html><body>"
        + "".join(f"<p>{html.escape(line)}</p>" for line in lines[:5])
        + "".join(f'<a href="{html.escape(link)}">{html.escape(client)}</a>' for link in portal_links)
        + "</body></html>",
        subtype="html",
    )
    if with_csv:
        rows = "\n".join(f"{i},{client},{technician}" for i in ids)
        msg.add_attachment(f"id,client,technician\n{rows}\n", subtype="csv", filename=f"{ids[0]}.csv")
    for candidate in (msg, _on_the_wire(msg)):
        assert scan_message(candidate) is None
