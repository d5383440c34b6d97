"""Resilient vendor HTTP: status mapping, guarded fetch, retries, shared rate limits, circuit breaker."""

from mspkit.http.addresses import AddressGuard, Resolver, address_kind, system_resolver
from mspkit.http.body import VendorResponse
from mspkit.http.breaker import BreakerConfig, CircuitBreaker, counts_as_failure
from mspkit.http.client import DEFAULT_USER_AGENT, MAX_BODY_BYTES, FetchLimits, fetch, make_client
from mspkit.http.errors import (
    ERROR_BODY_MAX_BYTES,
    AddressNotAllowed,
    CircuitOpen,
    DeadlineExceeded,
    HostNotAllowed,
    InsecureRedirect,
    RateLimited,
    RedirectRefused,
    VendorAuthError,
    VendorConflict,
    VendorError,
    VendorNotFound,
    VendorPermanentError,
    VendorResponseError,
    VendorTransientError,
    error_for_status,
    parse_retry_after,
)
from mspkit.http.jsonbody import JsonObject, JsonResponse, decode_json_response, is_json_media_type, parse_json
from mspkit.http.policy import HostPolicy
from mspkit.http.ratelimit import RedisRateLimiter
from mspkit.http.redirects import CREDENTIAL_HEADERS
from mspkit.http.retry import RetryPolicy, call_with_retries, is_retryable
from mspkit.http.urls import Origin, canonical_host, host_port, origin_of, parse_host_port, parse_origin, redact_url
from mspkit.http.vendor import VendorHTTP

__all__ = [
    "CREDENTIAL_HEADERS",
    "DEFAULT_USER_AGENT",
    "ERROR_BODY_MAX_BYTES",
    "MAX_BODY_BYTES",
    "AddressGuard",
    "AddressNotAllowed",
    "BreakerConfig",
    "CircuitBreaker",
    "CircuitOpen",
    "DeadlineExceeded",
    "FetchLimits",
    "HostNotAllowed",
    "HostPolicy",
    "InsecureRedirect",
    "JsonObject",
    "JsonResponse",
    "Origin",
    "RateLimited",
    "RedirectRefused",
    "RedisRateLimiter",
    "Resolver",
    "RetryPolicy",
    "VendorAuthError",
    "VendorConflict",
    "VendorError",
    "VendorHTTP",
    "VendorNotFound",
    "VendorPermanentError",
    "VendorResponse",
    "VendorResponseError",
    "VendorTransientError",
    "address_kind",
    "call_with_retries",
    "canonical_host",
    "counts_as_failure",
    "decode_json_response",
    "error_for_status",
    "fetch",
    "host_port",
    "is_json_media_type",
    "is_retryable",
    "make_client",
    "origin_of",
    "parse_host_port",
    "parse_json",
    "parse_origin",
    "parse_retry_after",
    "redact_url",
    "system_resolver",
]
