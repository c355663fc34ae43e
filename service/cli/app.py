"""memoqa: ingest policy papers and answer questions about them, with citations.

A thin layer: parse arguments, call the library, print, and turn errors into
a message and a non-zero exit.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from ingest.errors import MemoqaError
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


def settings_with(
    load: Callable[[], SettingsT] = get_settings,  # type: ignore[assignment]
    **sections: dict[str, Any],
) -> SettingsT:
    """The settings `load` reads, with the command's options (those given) on top."""
    try:
        base = load()
        data = base.model_dump()
        for name, values in sections.items():
            data[name].update({k: v for k, v in values.items() if v is not None})
        return type(base).model_validate(data)
    except ValueError as exc:
        raise fail(f"invalid settings: {exc}", 2) from exc


@app.command()
def ingest(
    manifest: Annotated[
        Path | None, typer.Option(help="Corpus manifest (default: corpus/manifest.json).")
    ] = None,
    force: Annotated[bool, typer.Option(help="Rebuild even if nothing changed.")] = False,
) -> None:
    """Parse, chunk and embed the corpus into the index. Safe to re-run: an
    unchanged corpus is left as it is."""
    from ingest.pipeline import run_ingest

    settings = settings_with(corpus={"manifest": manifest})
    with progress_bars(transient=True) as notify:
        try:
            report = run_ingest(settings, force=force, progress=notify)
        except MemoqaError as exc:
            raise fail(f"{exc}\nthe index was left as it was.") from exc
    for warning in report.warnings:
        err.print(f"[yellow]warning:[/] {warning}")
    for doc in report.documents:
        out.print(f"  {doc.status:9} {doc.id} ({doc.passages} passages)")
    if report.changed:
        out.print(
            f"indexed {report.passages} passages into {report.collection} "
            f"({report.embedded} embedded, {report.reused} reused) in {report.seconds:.1f} s"
        )
    else:
        out.print(f"index {report.collection} is up to date ({report.seconds:.1f} s)")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Worker processes (each loads its own models).")
    ] = 1,
) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs)."""
    import uvicorn

    from service.api.app import create_app

    from service.api.app import configure_logging
    from service.api.security import LOOPBACK, load_keys

    settings = settings_with(api={"host": host, "port": port})
    try:
        keys = load_keys(settings.security.keys_file, settings.security.keys)
    except MemoqaError as exc:
        raise fail(str(exc), 2) from exc
    if not keys and settings.api.host not in LOOPBACK:
        raise fail(
            f"no API keys are configured, so memoqa serves only on loopback, not on "
            f"{settings.api.host}; create a key with `memoqa keys create NAME` and set "
            "MEMOQA_SECURITY__KEYS_FILE",
            2,
        )
    from service.engine import preflight

    try:
        preflight(settings)
    except MemoqaError as exc:
        raise fail(str(exc)) from exc
    if not keys:
        err.print("memoqa: no API keys configured: serving on loopback only, without authentication")
    err.print(f"memoqa: serving on http://{settings.api.host}:{settings.api.port} (docs at /docs)")
    configure_logging()
    if workers > 1:
        # Each worker builds the app from the same environment; point them at one
        # Chroma server (MEMOQA_INDEX__CHROMA_HOST) or they share an embedded folder.
        uvicorn.run(
            "service.api.app:app_from_env",
            factory=True,
            host=settings.api.host,
            port=settings.api.port,
            workers=workers,
            log_level="warning",
            access_log=False,
        )
        return
    try:
        app_ = create_app(settings)
    except MemoqaError as exc:
        raise fail(str(exc)) from exc
    uvicorn.run(
        app_,
        host=settings.api.host,
        port=settings.api.port,
        log_level="warning",
        access_log=False,
    )


keys_app = typer.Typer(help="API keys: stored as hashes, shown once.")
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="Who or what the key is for.")],
    scope: Annotated[list[str], typer.Option(help="read (ask, search, chat) or admin.")] = ["read"],  # noqa: B006
    file: Annotated[Path | None, typer.Option(help="Keys file (default .memoqa/keys.jsonl).")] = None,
) -> None:
    """Create an API key; its hash goes to the keys file, the key is printed once."""
    from service.api.security import SCOPES, add_key

    if any(s not in SCOPES for s in scope) or not name.strip():
        raise fail(f"scopes are {', '.join(SCOPES)}, and the key needs a name", 2)
    path = file or settings_with().security.keys_file or Path(".memoqa/keys.jsonl")
    secret = add_key(path, name.strip(), tuple(scope))
    err.print(f"key for '{name}' ({', '.join(scope)}) stored as a hash in {path}; set "
              f"MEMOQA_SECURITY__KEYS_FILE={path} for the service. The key (shown only now):")
    out.print(secret)


def _print_answer(body: dict[str, Any]) -> None:
    out.print(body["answer"])
    if not body["answered"] and body.get("reason"):
        out.print(f"[dim]({body['reason']})[/]")
    for part in body.get("unanswered") or []:
        out.print(f"[yellow]not answered by the papers:[/] {part}")
    for c in body["citations"]:
        out.print()
        where = c["section"] or "(front matter)"
        out.print(f"[bold][{c['ref']}][/] {c['document_title']} — {where}")
        out.print(f"    passage {c['passage_id']} (relevance {c['score']:.2f})")
        if c.get("quote"):
            out.print(f"    “{c['quote']}”")
        for note in c["endnotes"]:
            out.print(f"    [dim]note {note['number']}:[/] {note['text']}")
    t = body["timings_ms"]
    out.print(f"\n[dim]retrieve {t['retrieve']:.0f} ms, answer {t['answer']:.0f} ms[/]")


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question.")],
    top_k: Annotated[int | None, typer.Option(min=1, max=20, help="Passages to retrieve.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON.")] = False,
    url: Annotated[
        str | None, typer.Option(help="Ask a running server (e.g. http://127.0.0.1:8000).")
    ] = None,
) -> None:
    """Answer a question, citing passages and their sources."""
    payload: dict[str, Any] = {"question": question}
    if top_k is not None:
        payload["top_k"] = top_k
    if url:
        body = _post(url.rstrip("/") + "/v1/ask", payload)
    else:
        from pydantic import ValidationError

        from service.engine import build_engine
        from service.api.mapping import to_response
        from service.api.schemas import AskRequest

        try:
            request = AskRequest.model_validate(payload)
        except ValidationError as exc:
            raise fail("; ".join(e["msg"] for e in exc.errors()), 2) from exc
        try:
            engine = build_engine(get_settings())
            body = to_response(engine.ask(request.question, request.top_k)).model_dump()
        except MemoqaError as exc:
            raise fail(str(exc)) from exc
    if as_json:
        sys.stdout.write(json.dumps(body, ensure_ascii=False, indent=2) + "\n")
    else:
        _print_answer(body)


def _print_citations(citations: list[dict[str, Any]]) -> None:
    for c in citations:
        where = c["section"] or "(front matter)"
        notes = ", ".join(f"note {n['number']}" for n in c["endnotes"])
        out.print(f"  [{c['ref']}] {c['document_title']} — {where}" + (f" ({notes})" if notes else ""))


def _sse_events(lines: Any) -> Any:
    event = None
    for line in lines:
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: ") and event:
            yield event, json.loads(line[6:])
            event = None


@app.command()
def chat(
    url: Annotated[
        str | None, typer.Option(help="Chat with a running server (e.g. http://127.0.0.1:8000).")
    ] = None,
) -> None:
    """An interactive chat in the terminal; follow-up questions use the
    conversation. /new starts over, /quit (or Ctrl-D) leaves."""
    history: list[Any] = []
    conversation_id: str | None = None
    engine = None
    if url is None:
        from service.engine import build_engine

        try:
            engine = build_engine(get_settings())
            engine.retriever.snapshot()
        except MemoqaError as exc:
            raise fail(str(exc)) from exc
    err.print("Ask about the papers. /new starts a new conversation, /quit leaves.")
    while True:
        try:
            question = input("\n> ").strip()
        except (EOFError, KeyboardInterrupt):
            break
        if not question:
            continue
        if question in ("/quit", "/exit"):
            break
        if question == "/new":
            history, conversation_id = [], None
            err.print("(new conversation)")
            continue
        if len(question) > 2000:
            err.print("[red]questions are limited to 2,000 characters[/]")
            continue
        body: dict[str, Any] | None = None
        try:
            if engine is not None:
                from service.answer.types import DoneEvent
                from service.followup import Turn
                from service.api.mapping import to_response

                for event in engine.ask_events(question, None, history):
                    if isinstance(event, DoneEvent):
                        body = to_response(event.result).model_dump()
                    else:
                        out.print(event.text, end="")
                history += [Turn("user", question), Turn("assistant", body["answer"] if body else "")]
            else:
                import httpx

                payload: dict[str, Any] = {"messages": [{"role": "user", "content": question}], "stream": True}
                if conversation_id:
                    payload["conversation_id"] = conversation_id
                with httpx.stream("POST", url.rstrip("/") + "/v1/chat", json=payload, timeout=300) as response:
                    if response.status_code >= 400:
                        response.read()
                        err.print(f"[red]{response.status_code}: {response.json().get('detail')}[/]")
                        continue
                    for event, data in _sse_events(response.iter_lines()):
                        if event == "token":
                            out.print(data["text"], end="")
                        elif event == "done":
                            body = data
                conversation_id = body.get("conversation_id") if body else conversation_id
        except MemoqaError as exc:
            err.print(f"[red]{exc}[/]")
            continue
        except Exception as exc:  # a dropped connection must not end the session
            err.print(f"[red]could not answer: {exc}[/]")
            continue
        if body is None:
            continue
        if not body["answered"]:
            out.print(body["answer"])
            out.print(f"[dim]({body.get('reason')})[/]")
        else:
            for part in body.get("unanswered") or []:
                out.print(f"[yellow]not answered by the papers:[/] {part}")
            out.print()
            _print_citations(body["citations"])


def measure_rates(model_path: Path, threads: int | None = None) -> tuple[float, float]:
    """Prompt-processing and generation speed (tokens/s) of the local model on
    this machine: the floor any answer's time is compared with."""
    import time

    from service.llm.local import LocalLLM

    llm = LocalLLM(model_path, threads=threads)
    try:
        text = ("The Shanghai Cooperation Organization held many meetings. " * 60).strip()
        prompt = llm.llama.tokenize(text.encode())[:480]
        llm.llama.reset()
        started = time.perf_counter()
        llm.llama.eval(prompt)
        prompt_rate = len(prompt) / (time.perf_counter() - started)
        llm.llama.reset()
        first = last = 0.0
        count = 0
        for _chunk in llm.llama.create_completion(
            "Count from one to one hundred in words, comma separated:",
            max_tokens=96,
            temperature=0.0,
            stream=True,
        ):
            last = time.perf_counter()
            first = first or last
            count += 1
        gen_rate = (count - 1) / max(last - first, 1e-3)
        return prompt_rate, gen_rate
    finally:
        llm.close()


@app.command()
def bench(
    url: Annotated[str, typer.Option(help="A running memoqa server.")] = "http://127.0.0.1:8000",
    questions: Annotated[
        Path | None, typer.Option(help="Questions, one per line (default: a built-in set of 20).")
    ] = None,
    rounds: Annotated[int, typer.Option(min=1, max=20, help="Times each question is asked.")] = 1,
    floor: Annotated[
        bool, typer.Option(help="Measure the local model's speed and report the floor ratio.")
    ] = False,
    stream: Annotated[
        bool, typer.Option(help="Also stream each answer and time its first token.")
    ] = False,
    plain: Annotated[
        bool, typer.Option(help="Time search and non-streamed ask (--no-plain: only the streamed pass).")
    ] = True,
    key: Annotated[str | None, typer.Option(help="API key, when the server needs one.")] = None,
) -> None:
    """Measure /v1/search and /v1/ask latency against a running server."""
    import statistics
    import time
    from importlib.resources import files

    import httpx

    source = questions.read_text() if questions else files("service.cli").joinpath("bench_questions.txt").read_text()
    if questions is not None and questions.suffix == ".jsonl":  # the evaluation question set
        items = [json.loads(line)["question"] for line in source.splitlines() if line.strip()]
    else:
        items = [q.strip() for q in source.splitlines() if q.strip()]
    if not items:
        raise fail("no questions to ask", 2)
    if not (plain or stream):
        raise fail("nothing to measure: --no-plain needs --stream", 2)
    base = url.rstrip("/")
    timings: dict[str, list[float]] = {
        "search": [],
        "ask": [],
        "ask (server total)": [],
        "time to first token": [],
        "streamed first token": [],
        "streamed total": [],
    }
    generations: list[dict[str, Any]] = []
    answered = 0
    headers = {"Authorization": f"Bearer {key}"} if key else None

    @contextmanager
    def timed(client: httpx.Client, method: str, path: str, **kwargs: Any) -> Iterator[tuple[Any, float]]:
        """One request as (response, start time). A 429 is waited out and retried,
        so only the answered attempt is timed; any other error status ends the
        bench with the server's reason."""
        for _ in range(100):
            started = time.perf_counter()
            with client.stream(method, base + path, headers=headers, **kwargs) as response:
                if response.status_code == 429:
                    wait = float(response.headers.get("Retry-After", "1"))
                    response.read()
                    time.sleep(min(max(wait, 0.1), 30))
                    continue
                if response.status_code >= 400:
                    response.read()
                    raise fail(f"{response.status_code} from {base}{path}: {_error_detail(response)}")
                yield response, started
                return
        raise fail(f"{base}{path} kept answering 429 (rate limited); raise its limits or pass --key")

    with httpx.Client(timeout=300) as client:
        try:
            with timed(client, "GET", "/v1/search", params={"q": "warm up"}) as (response, _):
                response.read()
            for _ in range(rounds if plain else 0):
                for q in items:
                    with timed(client, "GET", "/v1/search", params={"q": q, "k": 10}) as (response, started):
                        response.read()
                        timings["search"].append((time.perf_counter() - started) * 1000)
                    with timed(client, "POST", "/v1/ask", json={"question": q}) as (response, started):
                        response.read()
                        timings["ask"].append((time.perf_counter() - started) * 1000)
                    body = response.json()
                    timings["ask (server total)"].append(body["timings_ms"]["total"])
                    if body.get("generation"):
                        generations.append(body["generation"])
                        timings["time to first token"].append(body["generation"]["ttft_ms"])
                    answered += bool(body["answered"])
            # Streamed in a second pass: asking the same question twice in a row would
            # find its whole prompt in the model's cache and flatter the first token.
            for _ in range(rounds if stream else 0):
                for q in items:
                    payload = {"question": q, "stream": True}
                    with timed(client, "POST", "/v1/ask", json=payload) as (response, started):
                        first = None
                        for event, data in _sse_events(response.iter_lines()):
                            if first is None and event in ("token", "done"):
                                first = (time.perf_counter() - started) * 1000
                            if event == "done" and not plain:
                                answered += bool(data.get("answered"))
                        timings["streamed first token"].append(first or 0.0)
                        timings["streamed total"].append((time.perf_counter() - started) * 1000)
        except httpx.HTTPError as exc:
            raise fail(f"cannot reach {base}: {exc}") from exc
    out.print(f"{len(items)} questions x {rounds} round(s) against {base}; {answered} answered")
    out.print(f"{'':22} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for name, values in timings.items():
        if not values:
            continue
        ordered = sorted(values)
        p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
        out.print(f"{name:22} {statistics.median(values):8.1f} {p95:8.1f} {ordered[-1]:8.1f}")
    if generations:
        prompt = statistics.median(g["prompt_tokens"] for g in generations)
        completion = statistics.median(g["completion_tokens"] for g in generations)
        out.print(
            f"model answers: {len(generations)}; median prompt {prompt:.0f} tokens, "
            f"median completion {completion:.0f} tokens"
        )
        if floor:
            prompt_rate, gen_rate = measure_rates(settings_with().llm.model_path)
            ratios = [
                (g["prompt_tokens"] / prompt_rate + g["completion_tokens"] / gen_rate) * 1000
                / max(g["generate_ms"], 1e-3)
                for g in generations
            ]
            out.print(
                f"runtime on this machine: prompt {prompt_rate:.0f} tokens/s, generation "
                f"{gen_rate:.1f} tokens/s; floor / measured generation time: median "
                f"{statistics.median(ratios):.2f} (above 1 where the prompt prefix was cached)"
            )


@app.command()
def load(
    url: Annotated[str, typer.Option(help="A running memoqa server.")] = "http://127.0.0.1:8000",
    endpoint: Annotated[str, typer.Option(help="search or ask.")] = "search",
    concurrency: Annotated[
        str, typer.Option(help="Concurrent clients; several levels comma separated.")
    ] = "1,10,50",
    duration: Annotated[float, typer.Option(min=1, max=3600, help="Seconds per level.")] = 20,
    key: Annotated[str | None, typer.Option(help="API key, when the server needs one.")] = None,
) -> None:
    """Load a running server with N concurrent clients for a bounded time."""
    import asyncio
    from importlib.resources import files

    from service.cli.load import HEADER, run_load

    if endpoint not in ("search", "ask"):
        raise fail("--endpoint is search or ask", 2)
    try:
        levels = [int(x) for x in concurrency.split(",") if x.strip()]
    except ValueError as exc:
        raise fail("--concurrency takes numbers, e.g. 1,10,50", 2) from exc
    if not levels or any(n < 1 or n > 1000 for n in levels):
        raise fail("concurrency levels are 1..1000", 2)
    questions = [
        q.strip()
        for q in files("service.cli").joinpath("bench_questions.txt").read_text().splitlines()
        if q.strip()
    ]
    headers = {"Authorization": f"Bearer {key}"} if key else None
    out.print(HEADER)
    for level in levels:
        result = asyncio.run(run_load(url, endpoint, level, duration, questions, headers))
        out.print(result.row())


def _post(url: str, payload: dict[str, Any]) -> dict[str, Any]:
    import httpx

    try:
        response = httpx.post(url, json=payload, timeout=120)
    except httpx.HTTPError as exc:
        raise fail(f"cannot reach {url}: {exc}") from exc
    if response.status_code >= 400:
        raise fail(f"{response.status_code} from {url}: {_error_detail(response)}")
    result: dict[str, Any] = response.json()
    return result


def _error_detail(response: Any) -> str:
    """The reason an HTTP error response gives (the API's `detail`), or its text."""
    try:
        return str(response.json().get("detail"))
    except ValueError:
        return str(response.text)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
