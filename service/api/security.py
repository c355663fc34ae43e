"""Who may call the API, and how much: API keys stored as hashes with scopes,
a per-key rate limit, a cap on concurrent answers per key, and a cap on
request size. With no keys configured the service is for this machine only:
`memoqa serve` binds to loopback and says so."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import math
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ingest.errors import MemoqaError
from service.errors import AuthError, ForbiddenError, RateLimited
from service.state import Limits

SCOPES = ("read", "admin")
KEY_PREFIX = "mq_"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class ApiKey:
    name: str
    sha256: str
    scopes: tuple[str, ...]


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(24)


def load_keys(path: Path | None, inline: str | None) -> list[ApiKey]:
    """Keys from a JSON-lines file ({"name", "sha256", "scopes"}) and/or an
    environment value "name:sha256:scope+scope,...". Only hashes are stored."""
    keys: list[ApiKey] = []
    if path is not None:
        if not path.is_file():
            raise MemoqaError(f"API keys file {path} not found")
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                keys.append(ApiKey(str(data["name"]), str(data["sha256"]), tuple(data["scopes"])))
            except (ValueError, KeyError, TypeError) as exc:
                raise MemoqaError(f"{path}:{number}: not a key record ({exc})") from exc
    for item in (inline or "").split(","):
        if not item.strip():
            continue
        parts = item.strip().split(":")
        if len(parts) != 3:
            raise MemoqaError("MEMOQA_SECURITY__KEYS entries are name:sha256:scope+scope")
        keys.append(ApiKey(parts[0], parts[1], tuple(parts[2].split("+"))))
    for key in keys:
        if len(key.sha256) != 64 or any(s not in SCOPES for s in key.scopes):
            raise MemoqaError(
                f"key '{key.name}': needs a sha256 hex digest and scopes from {SCOPES}"
            )
    return keys


def add_key(path: Path, name: str, scopes: tuple[str, ...]) -> str:
    """Create a key, store its hash in `path`, return the key (shown once)."""
    secret = new_key()
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "name": name,
        "sha256": hash_key(secret),
        "scopes": list(scopes),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    with path.open("a") as handle:
        handle.write(json.dumps(record) + "\n")
    path.chmod(0o600)
    return secret


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class Guard:
    """Authentication and per-caller limits, shared by all requests of a process."""

    keys: list[ApiKey]
    rate_per_minute: int = 120
    burst: int = 30
    concurrent_answers: int = 2
    limit_loopback: bool = False  # rate-limit loopback callers when there are no keys
    shared: Limits | None = None  # limits the workers share; None: this process's
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _active: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def enabled(self) -> bool:
        return bool(self.keys)

    def authenticate(self, authorization: str | None) -> ApiKey | None:
        """The caller's key; None when no keys are configured (loopback use)."""
        if not self.keys:
            return None
        if not authorization or not authorization.lower().startswith("bearer "):
            raise AuthError("an API key is required: send 'Authorization: Bearer <key>'")
        digest = hash_key(authorization[7:].strip())
        for key in self.keys:
            if hmac.compare_digest(key.sha256, digest):
                return key
        raise AuthError("unknown API key")

    def require(self, key: ApiKey | None, scope: str) -> None:
        if key is not None and scope not in key.scopes and "admin" not in key.scopes:
            raise ForbiddenError(f"this key lacks the '{scope}' scope")

    def admit(self, caller: str) -> None:
        """Spend one request from the caller's bucket, or raise RateLimited. With
        no keys, a caller on this machine is not rate-limited (unless asked)."""
        if not self.keys and not self.limit_loopback and _loopback(caller):
            return
        if self.shared is not None:
            self.shared.spend(caller, self.rate_per_minute, self.burst)
            return
        now = time.monotonic()
        rate = self.rate_per_minute / 60.0
        with self._lock:
            bucket = self._buckets.setdefault(caller, _Bucket(float(self.burst), now))
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * rate)
            bucket.updated = now
            if bucket.tokens < 1.0:
                wait = (1.0 - bucket.tokens) / rate if rate > 0 else 60.0
                raise RateLimited(
                    f"rate limit of {self.rate_per_minute} requests a minute reached", wait
                )
            bucket.tokens -= 1.0

    @contextmanager
    def answering(self, caller: str) -> Iterator[None]:
        """Hold one of the caller's concurrent-answer slots."""
        if self.shared is not None:
            with self.shared.answering(caller, self.concurrent_answers):
                yield
            return
        with self._lock:
            if self._active.get(caller, 0) >= self.concurrent_answers:
                raise RateLimited(
                    f"at most {self.concurrent_answers} answers at a time per caller", 1.0
                )
            self._active[caller] = self._active.get(caller, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                self._active[caller] -= 1


def _loopback(caller: str) -> bool:
    """Whether a caller named by its address ("ip:127.0.0.1") is on this machine."""
    host = caller.removeprefix("ip:")
    if host in LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def retry_after_header(exc: RateLimited) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(exc.retry_after)))}


class BodyLimit:
    """Refuse request bodies over `max_bytes` with 413, whether or not the
    client declared their length, before any of it is parsed."""

    def __init__(self, app: ASGIApp, max_bytes: int, uploads: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.uploads = uploads or {}  # path -> its own limit (file uploads)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.uploads.get(scope.get("path", ""), self.max_bytes)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(send, limit)
            return
        seen = 0
        responded = False

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _BodyTooLarge()
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal responded
            if message["type"] == "http.response.start":
                responded = True
            await send(message)

        try:
            await self.app(scope, limited, guarded_send)
        except _BodyTooLarge:
            if not responded:
                await _too_large(send, limit)


class _BodyTooLarge(Exception):
    pass


async def _too_large(send: Send, limit: int) -> None:
    body = json.dumps({"detail": f"request body over {limit} bytes"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


Handler = Callable[..., Awaitable[Any]]
