"""`memoqa load`: N concurrent clients against a running server for a bounded
time; throughput, latency percentiles and errors by status."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Annotated, Any

import typer

from service.cli.app import app, fail, out


@dataclass
class LoadResult:
    endpoint: str
    concurrency: int
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    def row(self) -> str:
        ok = self.statuses.get("200", 0)
        errors = {k: v for k, v in sorted(self.statuses.items()) if k != "200"}
        median = statistics.median(self.latencies_ms) if self.latencies_ms else 0.0
        return (
            f"| {self.endpoint} | {self.concurrency} | {self.requests} | {ok / self.seconds:.1f} | "
            f"{median:.0f} | {self.percentile(0.95):.0f} | {self.percentile(0.99):.0f} | "
            f"{', '.join(f'{k}: {v}' for k, v in errors.items()) or 'none'} |"
        )


HEADER = (
    "| endpoint | clients | requests | ok/s | p50 ms | p95 ms | p99 ms | other statuses |\n"
    "|---|---|---|---|---|---|---|---|"
)


async def run_load(
    url: str,
    endpoint: str,
    concurrency: int,
    duration_s: float,
    questions: list[str],
    headers: dict[str, str] | None = None,
) -> LoadResult:
    import httpx

    result = LoadResult(endpoint, concurrency, duration_s)
    deadline = time.monotonic() + duration_s
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(
        base_url=url.rstrip("/"), timeout=120, limits=limits, headers=headers
    ) as client:

        async def worker(offset: int) -> None:
            n = offset
            while time.monotonic() < deadline:
                question = questions[n % len(questions)]
                n += concurrency
                started = time.perf_counter()
                try:
                    response: Any
                    if endpoint == "search":
                        response = await client.get("/v1/search", params={"q": question, "k": 10})
                    else:
                        response = await client.post("/v1/ask", json={"question": question})
                    status = str(response.status_code)
                except Exception as exc:  # a refused or dropped connection is an error too
                    status = type(exc).__name__
                result.latencies_ms.append((time.perf_counter() - started) * 1000)
                result.statuses[status] += 1

        started = time.monotonic()
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        result.seconds = time.monotonic() - started
    return result


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
