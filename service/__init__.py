"""Question -> retrieve -> answer with citations -> FastAPI."""

import ingest  # noqa: F401  (applies the offline environment first)
