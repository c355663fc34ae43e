"""Talking to a running server: JSON posts whose errors become the CLI's
messages, and the reader of its event stream."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from service.cli.app import fail

# Retries of one request that keeps answering 429, and the longest wait honoured.
MAX_RETRIES = 100
MAX_RETRY_WAIT_S = 30.0


def retry_wait(response: Any) -> float:
    """Seconds to wait before retrying a 429: its `Retry-After`, within bounds."""
    try:
        wait = float(response.headers.get("Retry-After", "1"))
    except ValueError:
        wait = 1.0
    return min(max(wait, 0.1), MAX_RETRY_WAIT_S)


def sse_events(lines: Iterable[str]) -> Iterator[tuple[str, Any]]:
    """(event, data) pairs of a Server-Sent Events stream, line by line."""
    event = None
    for line in lines:
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: ") and event:
            yield event, json.loads(line[6:])
            event = None


def post_json(url: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The JSON body of a POST; an unreachable server or an error status fails the command."""
    import httpx

    try:
        response = httpx.post(url, json=payload, timeout=120)
    except httpx.HTTPError as exc:
        raise fail(f"cannot reach {url}: {exc}") from exc
    if response.status_code >= 400:
        raise fail(f"{response.status_code} from {url}: {error_detail(response)}")
    result: dict[str, Any] = response.json()
    return result


def error_detail(response: Any) -> str:
    """The reason an HTTP error response gives (the API's `detail`), or its text."""
    try:
        return str(response.json().get("detail"))
    except ValueError:
        return str(response.text)
