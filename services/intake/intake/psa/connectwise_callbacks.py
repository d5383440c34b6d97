"""ConnectWise's ticket callbacks as data: the body's shape and the `x-content-signature` header.

Body: `{ID, Type: "ticket", Action, Entity, Metadata: {key_url}}`, where `Entity` is the ticket as a
JSON-encoded string; duplicate keys, another type or an `Entity` for another ticket are refused. The
signature is base64 of HMAC-SHA256 over the raw body; the adapter checks it with the key `key_url` names.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping
from typing import Any

from intake.psa.protocol import MAX_CALLBACK_BYTES, Callback, CallbackRejected
from mspkit.http import VendorResponseError, parse_json

SIGNATURE_HEADER = "x-content-signature"
# A ConnectWise record id as the API and its callbacks write it.
TICKET_ID = re.compile(r"[1-9][0-9]{0,11}")
_ACTION = re.compile(r"[A-Za-z_]{1,32}")


def parse_callback(raw: bytes) -> Callback:
    """The callback `raw` holds (ticket id, action, key URL); CallbackRejected for anything else."""
    if not isinstance(raw, bytes | bytearray) or len(raw) > MAX_CALLBACK_BYTES:
        raise CallbackRejected("malformed")
    try:
        data = parse_json(bytes(raw))
    except VendorResponseError:
        raise CallbackRejected("malformed") from None
    if not isinstance(data, Mapping) or any(k in getattr(data, "duplicates", {}) for k in _CALLBACK_KEYS):
        raise CallbackRejected("malformed")
    kind, action, metadata = data.get("Type"), data.get("Action"), data.get("Metadata")
    ticket_id = _callback_id(data.get("ID"))
    if not isinstance(kind, str) or kind.lower() != "ticket" or ticket_id is None:
        raise CallbackRejected("malformed")
    if not isinstance(action, str) or not _ACTION.fullmatch(action):
        raise CallbackRejected("malformed")
    key_url = metadata.get("key_url") if isinstance(metadata, Mapping) else None
    if not isinstance(key_url, str) or not key_url:
        raise CallbackRejected("malformed")
    _check_entity(data.get("Entity"), ticket_id, action.lower())
    return Callback(ticket_id=str(ticket_id), action=action.lower(), key_ref=key_url)


_CALLBACK_KEYS = ("ID", "Type", "Action", "Entity", "Metadata")


def _callback_id(value: Any) -> int | None:
    """`ID` as ConnectWise sends it: an int, or a string of digits."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and TICKET_ID.fullmatch(value):
        return int(value)
    if isinstance(value, int) and 0 < value < 10**12:
        return value
    return None


def _check_entity(entity: Any, ticket_id: int, action: str) -> None:
    """`Entity` is the ticket as a JSON-encoded string; its id, when it has one, must be the callback's."""
    if entity is None and action == "deleted":
        return
    if not isinstance(entity, str):
        raise CallbackRejected("malformed")
    try:
        parsed = parse_json(entity.encode("utf-8"))
    except (VendorResponseError, UnicodeEncodeError):
        raise CallbackRejected("malformed") from None
    if not isinstance(parsed, Mapping):
        raise CallbackRejected("malformed")
    if "id" in parsed and _callback_id(parsed.get("id")) != ticket_id:
        raise CallbackRejected("malformed")


def signature(headers: Mapping[str, str]) -> bytes:
    """The 32 bytes of `x-content-signature` (base64); CallbackRejected when absent or not that."""
    value = headers.get(SIGNATURE_HEADER)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == SIGNATURE_HEADER), None)
    if value is None:
        raise CallbackRejected("unsigned")
    try:
        given = base64.b64decode(value.strip(), validate=True) if isinstance(value, str) else b""
    except (binascii.Error, ValueError):
        given = b""
    if len(given) != hashlib.sha256().digest_size:
        raise CallbackRejected("bad signature")
    return given
