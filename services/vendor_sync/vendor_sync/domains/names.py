"""Domain name normalisation: any spelling in, (A-label, Unicode) out, or a clear refusal."""

from __future__ import annotations

import idna

from mspkit.patterns import described

MAX_INPUT_CHARS = 253
MAX_A_LABEL_CHARS = 253
MAX_LABEL_CHARS = 63
# What the schema admits before IDNA decides: dot-separated labels without blanks, control characters,
# slashes, '@', ':' or backslashes (URLs, emails, ports). IDNA validity itself is not a regular language.
NAME_PATTERN = described(
    r"^[^\x00-\x20\x7f./@:\\]{1,63}(\.[^\x00-\x20\x7f./@:\\]{1,63})+\.?$",
    "must be a domain name such as example.com (no blanks, '/', '@', ':' or backslash)",
)


class InvalidDomainName(ValueError):
    """The text is not a registrable domain name; the message says why (never echoes much input)."""


def normalize_domain_name(text: str) -> tuple[str, str]:
    """Return (A-label, Unicode name), lower-case, without a trailing dot, or raise InvalidDomainName."""
    name = text.strip()
    if name.endswith("."):
        name = name[:-1]
    if not name or len(name) > MAX_INPUT_CHARS:
        raise InvalidDomainName("must be 1 to 253 characters")
    try:
        # UTS 46 maps case and compatibility forms the way browsers do before IDNA 2008 applies.
        a_label = idna.encode(name, uts46=True).decode("ascii").lower()
        unicode_name = idna.decode(a_label)
        # A hand-written "xn--" label must round-trip, or it is not a real A-label.
        if idna.encode(unicode_name, uts46=True).decode("ascii").lower() != a_label:
            raise InvalidDomainName("is not a valid internationalised domain name")
    except (idna.IDNAError, UnicodeError):
        # IDNA's message quotes the input and its class name says nothing to a caller.
        raise InvalidDomainName("has a character or label that domain names do not allow") from None
    labels = a_label.split(".")
    if len(labels) < 2:
        raise InvalidDomainName("needs at least two labels (e.g. example.com)")
    if len(a_label) > MAX_A_LABEL_CHARS or any(len(label) > MAX_LABEL_CHARS for label in labels):
        raise InvalidDomainName("is too long once encoded (253 characters, 63 per label)")
    if labels[-1].isdigit():
        raise InvalidDomainName("is an IP address or has a numeric top-level label")
    return a_label, unicode_name
