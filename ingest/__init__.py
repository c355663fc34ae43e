"""Corpus files -> parsed documents -> passages -> the Chroma index."""

from ingest import offline as _offline

_offline.apply()
