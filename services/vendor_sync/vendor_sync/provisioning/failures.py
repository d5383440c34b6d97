"""A step's own refusal (no vendor error behind it): the step fails with these words, and is not retried."""

from __future__ import annotations


class StepFailed(Exception):
    """The step cannot be done as asked (no account, no approval, an unknown zone): `code` and plain words."""

    def __init__(self, code: str, words: str) -> None:
        super().__init__(words)
        self.code = code
        self.words = words
