"""The service's own exceptions; the base class and the index's live in `ingest.errors`.

The API turns each into its status (see `service.api.app`), the CLI into a
message and a non-zero exit.
"""

from __future__ import annotations

from ingest.errors import MemoqaError


class GeneratorBusy(MemoqaError):
    """The language model is serving other requests for longer than allowed."""


class GenerationError(MemoqaError):
    """The language model failed or timed out."""


class ConversationNotFound(MemoqaError):
    """No conversation has this id, or it expired."""


class AuthError(MemoqaError):
    """No key, or an unknown key (401)."""


class ForbiddenError(MemoqaError):
    """A valid key without the scope the action needs (403)."""


class RateLimited(MemoqaError):
    """Too many requests or concurrent answers for this key (429)."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StateUnavailableError(MemoqaError):
    """The store the workers share conversations and limits through cannot be reached (503)."""


class DocumentNotFoundError(MemoqaError):
    """A paper named to restrict a question to is not in the index (404)."""
