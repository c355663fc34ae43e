"""memoqa: ingest policy papers and answer questions about them, with citations.

A thin layer: parse arguments, call the library, print, and turn errors into
a message and a non-zero exit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import typer
from rich.console import Console

from service.settings import Settings, get_settings

SettingsT = TypeVar("SettingsT", bound=Settings)

app = typer.Typer(
    help=__doc__,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


@contextmanager
def progress_bars(*, transient: bool) -> Iterator[Callable[[str, int, int], None]]:
    """Progress bars with an ETA on a terminal, one per stage; `notify(stage,
    done, total)` updates them. Silent when stderr is not a terminal."""
    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=transient,
        disable=not err.is_terminal,
    ) as progress:
        tasks: dict[str, Any] = {}

        def notify(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total)
            progress.update(tasks[stage], completed=done, total=total)

        yield notify


def settings_with(**sections: dict[str, Any]) -> Settings:
    """The settings, with the command's options (those given) on top."""
    return settings_from(get_settings, **sections)


def settings_from(load: Callable[[], SettingsT], **sections: dict[str, Any]) -> SettingsT:
    """The settings `load` reads, with the command's options (those given) on top."""
    try:
        base = load()
        data = base.model_dump()
        for name, values in sections.items():
            data[name].update({k: v for k, v in values.items() if v is not None})
        return type(base).model_validate(data)
    except ValueError as exc:
        raise fail(f"invalid settings: {exc}", 2) from exc


# Each module registers its command on `app`, in the order `--help` lists them.
COMMANDS = tuple(
    f"service.cli.{name}"
    for name in ("ingest", "papers", "serve", "keys", "ask", "chat", "bench", "load")
)


def main() -> None:
    """The `memoqa` command: the service's commands, then those other installed
    packages add through the `memoqa.commands` entry points (the evaluation's)."""
    from importlib import import_module
    from importlib.metadata import entry_points

    for module in COMMANDS:
        import_module(module)
    for entry in entry_points(group="memoqa.commands"):
        entry.load()(app)
    app()


if __name__ == "__main__":
    main()
