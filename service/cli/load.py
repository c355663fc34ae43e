"""`memoqa load`: N concurrent clients against a running server for a bounded
time; throughput, latency percentiles and errors by status."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


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

    async with httpx.AsyncClient(base_url=url.rstrip("/"), timeout=120, limits=limits, headers=headers) as client:

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
