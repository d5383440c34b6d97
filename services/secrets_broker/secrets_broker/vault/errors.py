"""Vault's failures as the broker's errors: every hvac and requests error becomes a `VaultError`.

They are the kit's `Unavailable` (503 `unavailable`): a Vault that cannot serve means no secret goes
out. Their messages carry no URL, path or Vault error text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, TypeVar

import hvac.exceptions as hvac_errors
import requests

from mspkit.errors import Unavailable

T = TypeVar("T")


class VaultError(Unavailable):
    """Vault could not serve the broker; the API answers 503 and releases nothing."""


class VaultUnreachable(VaultError):
    """Vault is down, sealed, slow, rate limiting or failing."""


class VaultDenied(VaultError):
    """Vault refused the token or the policy (a revoked token looks the same as a policy denial)."""


class VaultNotFound(VaultError):
    """Nothing is stored at the path."""


class VaultRejected(VaultError):
    """Vault refused the request as invalid."""


class VaultCasMismatch(VaultRejected):
    """A check-and-set write lost: the path changed since it was read (or exists, for cas=0)."""


class VaultNotLoggedIn(VaultError):
    """The gateway holds no usable token and cannot get one without a restart."""


class VaultLoginRefused(VaultError):
    """The login material was not what it claimed to be, or the token is too powerful."""


_UNREACHABLE: Final = (
    hvac_errors.VaultDown,
    hvac_errors.RateLimitExceeded,
    hvac_errors.InternalServerError,
    hvac_errors.BadGateway,
    hvac_errors.VaultNotInitialized,
    hvac_errors.UnexpectedError,
)


def translate(fn: Callable[[], T]) -> T:
    """Run one hvac call and map its failures to broker errors (without Vault's message or the URL)."""
    try:
        return fn()
    except requests.Timeout:
        raise VaultUnreachable("Vault timed out") from None
    except requests.ConnectionError:
        raise VaultUnreachable("Vault unreachable") from None
    except requests.RequestException:
        raise VaultUnreachable("Vault request failed") from None
    except _UNREACHABLE:
        raise VaultUnreachable("Vault unavailable (sealed, uninitialised or failing)") from None
    except (hvac_errors.Forbidden, hvac_errors.Unauthorized):
        raise VaultDenied("Vault denied the request") from None
    except hvac_errors.InvalidPath:
        raise VaultNotFound("not found in Vault") from None
    except hvac_errors.InvalidRequest as exc:
        if "check-and-set" in str(exc):
            raise VaultCasMismatch("Vault check-and-set mismatch") from None
        raise VaultRejected("Vault rejected the request") from None
    except hvac_errors.VaultError:
        raise VaultUnreachable("Vault answered with an unexpected error") from None
    except (ValueError, KeyError, TypeError):
        # A body that is not the JSON we expect (a proxy's error page, say).
        raise VaultUnreachable("malformed Vault response") from None
