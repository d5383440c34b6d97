"""The broker's domain errors, rendered by the kit's handler as the contract's envelope."""

from __future__ import annotations

from mspkit.errors import AppError, Unavailable


class ReleaseDenied(AppError):
    """403 `release_denied`, naming the first failing rule."""

    status_code = 403
    code = "release_denied"

    def __init__(self, rule: str, detail: str = "") -> None:
        super().__init__(detail or f"release denied: {rule}", rule=rule)
        self.rule = rule


class DisclosureDenied(AppError):
    """403 `disclosure_denied`: client information may not go to that vendor; names the first failing rule."""

    status_code = 403
    code = "disclosure_denied"

    def __init__(self, rule: str, detail: str = "") -> None:
        super().__init__(detail or f"disclosure denied: {rule}", rule=rule)
        self.rule = rule


class IntakeUnavailable(Unavailable):
    """Intake's live authorization could not be read (unreachable, slow, malformed or failing)."""


class AuditUnavailable(Unavailable):
    """The audit entry could not be written, so nothing may be released."""


class MailUnavailable(Unavailable):
    """The reveal link could not be handed to the SMTP relay."""


class WrapTokenInvalid(AppError):
    """410 `wrap_token_invalid`: the wrapping token is used, revoked, expired or unknown."""

    status_code = 410
    code = "wrap_token_invalid"


class WrapTokenWrongPath(AppError):
    """400 `wrap_token_wrong_path`: the token does not wrap the release's credential path."""

    status_code = 400
    code = "wrap_token_wrong_path"
