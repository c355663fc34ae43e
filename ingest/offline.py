"""Keep every library from reaching for the network at run time.

These variables must be set before the libraries that read them are imported,
so `ingest/__init__.py` applies them first thing; every other package imports
`ingest` and inherits them.
"""

from __future__ import annotations

import os
from importlib.util import find_spec
from pathlib import Path


def _tiktoken_cache() -> str | None:
    # llama-index-core ships the tiktoken encodings; without this, tiktoken
    # downloads them on first use (and hangs forever where traffic is dropped).
    try:
        spec = find_spec("llama_index.core")
    except ModuleNotFoundError:  # not installed, e.g. the build helper under the system Python
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "_static" / "tiktoken_cache"
    return str(path) if path.is_dir() else None


def apply() -> None:
    """Set the environment so no model, tokenizer or telemetry call leaves the machine."""
    defaults = {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "ANONYMIZED_TELEMETRY": "False",
        "RAGAS_DO_NOT_TRACK": "true",
        "TOKENIZERS_PARALLELISM": "false",
    }
    cache = _tiktoken_cache()
    if cache:
        defaults["TIKTOKEN_CACHE_DIR"] = cache
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
