"""memoqa's own exceptions. Each message says what went wrong and what to do.

The CLI turns them into a message and a non-zero exit; the API into 4xx/503
responses with FastAPI's `{"detail": ...}` shape.
"""

from __future__ import annotations


class MemoqaError(Exception):
    """Base class: an error a user can act on."""


class CorpusError(MemoqaError):
    """The manifest or a corpus file is missing, empty, undecodable or unparsable."""


class IndexNotReadyError(MemoqaError):
    """There is no usable index yet (never ingested, empty, or being replaced)."""


class IndexMismatchError(MemoqaError):
    """The index was built with a different embedding model or schema than configured."""


class IndexUnavailableError(MemoqaError):
    """The Chroma store cannot be reached or opened."""


class ModelNotFoundError(MemoqaError):
    """A configured model is not installed where the settings say."""


class IngestLockedError(MemoqaError):
    """Another ingest is running against the same index."""


class PassageNotFoundError(MemoqaError):
    """No passage has the requested id."""
