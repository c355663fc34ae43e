"""`memoqa bench`: /v1/search and /v1/ask latency against a running server."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from service.cli.app import app, fail, out, settings_with
from service.cli.http import MAX_RETRIES, error_detail, retry_wait, sse_events

if TYPE_CHECKING:
    import httpx


def measure_rates(model_path: Path, threads: int | None = None) -> tuple[float, float]:
    """Prompt-processing and generation speed (tokens/s) of the local model on
    this machine: the floor any answer's time is compared with."""
    from service.llm.local import LocalLLM

    llm = LocalLLM(model_path, threads=threads)
    try:
        text = ("The Shanghai Cooperation Organization held many meetings. " * 60).strip()
        prompt = llm.llama.tokenize(text.encode())[:480]
        llm.llama.reset()  # type: ignore[no-untyped-call]  # unannotated upstream
        started = time.perf_counter()
        llm.llama.eval(prompt)
        prompt_rate = len(prompt) / (time.perf_counter() - started)
        llm.llama.reset()  # type: ignore[no-untyped-call]  # unannotated upstream
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


@dataclass
class BenchFigures:
    """What a bench run measured: latencies by what was timed, the model's
    generation figures, and how many answers were answers (not refusals)."""

    timings: dict[str, list[float]] = field(
        default_factory=lambda: {
            "search": [],
            "ask": [],
            "ask (server total)": [],
            "time to first token": [],
            "streamed first token": [],
            "streamed total": [],
        }
    )
    generations: list[dict[str, Any]] = field(default_factory=list)
    answered: int = 0
    by_kind: dict[str, list[float]] = field(default_factory=dict)  # /v1/ask, by question kind


class Timer:
    """Requests to one server, each timed from its start."""

    def __init__(self, client: httpx.Client, base: str, key: str | None) -> None:
        self.client = client
        self.base = base
        self.headers = {"Authorization": f"Bearer {key}"} if key else None

    @contextmanager
    def timed(self, method: str, path: str, **kwargs: Any) -> Iterator[tuple[Any, float]]:
        """One request as (response, start time). A 429 is waited out and retried,
        so only the answered attempt is timed; any other error status ends the
        bench with the server's reason."""
        url = self.base + path
        for _ in range(MAX_RETRIES):
            started = time.perf_counter()
            with self.client.stream(method, url, headers=self.headers, **kwargs) as response:
                if response.status_code == 429:
                    response.read()
                    time.sleep(retry_wait(response))
                    continue
                if response.status_code >= 400:
                    response.read()
                    raise fail(f"{response.status_code} from {url}: {error_detail(response)}")
                yield response, started
                return
        raise fail(f"{url} kept answering 429 (rate limited); raise its limits or pass --key")


def _since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


@dataclass(frozen=True)
class BenchQuestion:
    """One question to time: with the conversation before it (a follow-up is
    asked on /v1/chat), and its kind and paper when it comes from the eval set."""

    question: str
    history: tuple[dict[str, str], ...] = ()
    kind: str = "question"
    paper: str = ""


def load_questions(path: Path | None, sample: int) -> list[BenchQuestion]:
    """The questions to time: a stratified sample of the evaluation's question
    set (every kind and paper, `sample` in all; 0 for every question) or, from a
    plain text file, its lines."""
    from eval.dataset import QUESTIONS, load_items
    from eval.runner import answer_slice, paper_of

    if path is not None and path.suffix != ".jsonl":
        return [BenchQuestion(q.strip()) for q in path.read_text().splitlines() if q.strip()]
    try:
        items = load_items(path or QUESTIONS)
    except (OSError, ValueError) as exc:
        raise fail(f"cannot read the questions in {path or QUESTIONS}: {exc}", 2) from exc
    if sample:
        chosen = set(answer_slice(items, sample))
        items = [i for i in items if i.id in chosen]
    return [
        BenchQuestion(
            i.question,
            tuple({"role": m.role, "content": m.content} for m in i.history),
            i.kind,
            paper_of(i),
        )
        for i in items
    ]


def held(items: list[BenchQuestion], documents: set[str]) -> list[BenchQuestion]:
    """The questions about papers the server holds (or about none in particular)."""
    return [
        q for q in items if not q.paper or q.paper == "any" or set(q.paper.split("+")) <= documents
    ]


def _request(q: BenchQuestion, *, stream: bool) -> tuple[str, dict[str, Any]]:
    """A question on /v1/ask; a follow-up, with its conversation, on /v1/chat."""
    if q.history:
        messages = [*q.history, {"role": "user", "content": q.question}]
        return "/v1/chat", {"messages": messages, "stream": stream}
    return "/v1/ask", {"question": q.question, "stream": stream}


def plain_pass(timer: Timer, items: list[BenchQuestion], figures: BenchFigures) -> None:
    """Each question searched, then asked without streaming."""
    timings = figures.timings
    for q in items:
        with timer.timed("GET", "/v1/search", params={"q": q.question, "k": 10}) as (
            response,
            started,
        ):
            response.read()
            timings["search"].append(_since(started))
        path, payload = _request(q, stream=False)
        with timer.timed("POST", path, json=payload) as (response, started):
            response.read()
            elapsed = _since(started)
        timings["ask"].append(elapsed)
        figures.by_kind.setdefault(q.kind, []).append(elapsed)
        body = response.json()
        timings["ask (server total)"].append(body["timings_ms"]["total"])
        if body.get("generation"):
            figures.generations.append(body["generation"])
            timings["time to first token"].append(body["generation"]["ttft_ms"])
        figures.answered += bool(body["answered"])


def streamed_pass(
    timer: Timer, items: list[BenchQuestion], figures: BenchFigures, *, count: bool
) -> None:
    """Each question asked as an event stream; the first token and the whole
    answer timed (`count`: answers counted here, when no plain pass ran)."""
    for q in items:
        path, payload = _request(q, stream=True)
        with timer.timed("POST", path, json=payload) as (response, started):
            first = None
            for event, data in sse_events(response.iter_lines()):
                if first is None and event in ("token", "done"):
                    first = _since(started)
                if event == "done" and count:
                    figures.answered += bool(data.get("answered"))
            figures.timings["streamed first token"].append(first or 0.0)
            figures.timings["streamed total"].append(_since(started))


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def print_latencies(figures: BenchFigures) -> None:
    out.print(f"{'':22} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for name, values in figures.timings.items():
        if not values:
            continue
        ordered = sorted(values)
        out.print(
            f"{name:22} {statistics.median(values):8.1f} {_p95(values):8.1f} {ordered[-1]:8.1f}"
        )
    if len(figures.by_kind) > 1:
        out.print(f"\n{'/v1/ask by kind':22} {'n':>4} {'p50 ms':>8} {'p95 ms':>8}")
        for kind, values in sorted(figures.by_kind.items()):
            out.print(
                f"{kind:22} {len(values):4d} {statistics.median(values):8.1f} {_p95(values):8.1f}"
            )


def print_generation(generations: list[dict[str, Any]], *, floor: bool) -> None:
    """The model's prompt and completion sizes and, with `floor`, how the measured
    generation time compares with the runtime's own speed on this machine."""
    prompts = [float(g["prompt_tokens"]) for g in generations]
    completion = statistics.median(g["completion_tokens"] for g in generations)
    out.print(
        f"model answers: {len(generations)}; prompt tokens per answer p50 "
        f"{statistics.median(prompts):.0f}, p95 {_p95(prompts):.0f}; median completion "
        f"{completion:.0f} tokens"
    )
    if not floor:
        return
    prompt_rate, gen_rate = measure_rates(settings_with().llm.model_path)
    ratios = [
        (g["prompt_tokens"] / prompt_rate + g["completion_tokens"] / gen_rate)
        * 1000
        / max(g["generate_ms"], 1e-3)
        for g in generations
    ]
    out.print(
        f"runtime on this machine: prompt {prompt_rate:.0f} tokens/s, generation "
        f"{gen_rate:.1f} tokens/s; floor / measured generation time: median "
        f"{statistics.median(ratios):.2f} (above 1 where the prompt prefix was cached)"
    )


@app.command()
def bench(
    url: Annotated[str, typer.Option(help="A running memoqa server.")] = "http://127.0.0.1:8000",
    questions: Annotated[
        Path | None,
        typer.Option(
            help="The evaluation's question set (.jsonl; default eval/questions.jsonl) or a text "
            "file of questions, one per line."
        ),
    ] = None,
    sample: Annotated[
        int,
        typer.Option(
            min=0,
            help="Questions drawn from a .jsonl set, stratified by kind and paper (0: all).",
        ),
    ] = 60,
    rounds: Annotated[int, typer.Option(min=1, max=20, help="Times each question is asked.")] = 1,
    floor: Annotated[
        bool, typer.Option(help="Measure the local model's speed and report the floor ratio.")
    ] = False,
    stream: Annotated[
        bool, typer.Option(help="Also stream each answer and time its first token.")
    ] = False,
    plain: Annotated[
        bool,
        typer.Option(help="Time search and non-streamed ask (--no-plain: only the streamed pass)."),
    ] = True,
    key: Annotated[str | None, typer.Option(help="API key, when the server needs one.")] = None,
) -> None:
    """Measure /v1/search and /v1/ask latency against a running server."""
    import httpx

    if not (plain or stream):
        raise fail("nothing to measure: --no-plain needs --stream", 2)
    base = url.rstrip("/")
    figures = BenchFigures()
    with httpx.Client(timeout=300) as client:
        timer = Timer(client, base, key)
        try:
            with timer.timed("GET", "/v1/search", params={"q": "warm up"}) as (response, _):
                response.read()
            with timer.timed("GET", "/v1/documents") as (response, _):
                response.read()
            indexed = {d["id"] for d in response.json()["documents"]}
            drawn = load_questions(questions, sample)
            items = held(drawn, indexed)
            if not items:
                raise fail("no questions to ask about the papers this server holds", 2)
            for _ in range(rounds if plain else 0):
                plain_pass(timer, items, figures)
            # Streamed in a second pass: asking the same question twice in a row would
            # find its whole prompt in the model's cache and flatter the first token.
            for _ in range(rounds if stream else 0):
                streamed_pass(timer, items, figures, count=not plain)
        except httpx.HTTPError as exc:
            raise fail(f"cannot reach {base}: {exc}") from exc
    kinds = {q.kind for q in items}
    papers = {p for q in items for p in q.paper.split("+") if p and p != "any"}
    out.print(
        f"{len(items)} questions ({len(kinds)} kinds, {len(papers)} papers) x {rounds} round(s) "
        f"against {base}; {figures.answered} answered"
    )
    if len(drawn) > len(items):
        out.print(f"{len(drawn) - len(items)} questions left out: their papers are not indexed")
    print_latencies(figures)
    if figures.generations:
        print_generation(figures.generations, floor=floor)
