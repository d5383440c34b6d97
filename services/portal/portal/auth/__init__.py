"""Sign-in (OIDC code + PKCE), sessions in PostgreSQL, CSRF, and the recent-sign-in rule."""

from portal.auth.recent import RECENT_SIGN_IN_S, fresh_sign_in_url, signed_in_recently

__all__ = ["RECENT_SIGN_IN_S", "fresh_sign_in_url", "signed_in_recently"]
