"""`memoqa keys`: API keys, stored as hashes and shown once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from service.cli.app import app, err, fail, out, settings_with

keys_app = typer.Typer(help="API keys: stored as hashes, shown once.")
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="Who or what the key is for.")],
    scope: Annotated[list[str], typer.Option(help="read (ask, search, chat) or admin.")] = ["read"],  # noqa: B006
    file: Annotated[
        Path | None, typer.Option(help="Keys file (default .memoqa/keys.jsonl).")
    ] = None,
) -> None:
    """Create an API key; its hash goes to the keys file, the key is printed once."""
    from service.api.security import SCOPES, add_key

    if any(s not in SCOPES for s in scope) or not name.strip():
        raise fail(f"scopes are {', '.join(SCOPES)}, and the key needs a name", 2)
    path = file or settings_with().security.keys_file or Path(".memoqa/keys.jsonl")
    secret = add_key(path, name.strip(), tuple(scope))
    err.print(
        f"key for '{name}' ({', '.join(scope)}) stored as a hash in {path}; set "
        f"MEMOQA_SECURITY__KEYS_FILE={path} for the service. The key (shown only now):"
    )
    out.print(secret)
