"""`memoqa chat`: an interactive conversation in the terminal, answered here
(the packaged models in-process) or by a running server."""

from __future__ import annotations

from typing import Annotated, Any, Protocol

import typer

from ingest.errors import MemoqaError
from service.cli.app import app, err, fail, out, settings_with
from service.cli.http import sse_events
from service.engine import Engine
from service.followup import Turn
from service.settings import Settings


class Conversation(Protocol):
    def answer(self, question: str) -> dict[str, Any] | None:
        """Print the answer as it streams; its /v1 response body (None: not answered)."""
        ...

    def reset(self) -> None: ...


class LocalConversation:
    """Answered in this process; the history is kept here."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.history: list[Turn] = []

    def answer(self, question: str) -> dict[str, Any] | None:
        from service.answer.types import DoneEvent
        from service.api.mapping import to_response

        body: dict[str, Any] | None = None
        for event in self.engine.ask_events(question, None, self.history):
            if isinstance(event, DoneEvent):
                body = to_response(event.result).model_dump()
            else:
                out.print(event.text, end="")
        answer = body["answer"] if body else ""
        self.history += [Turn("user", question), Turn("assistant", answer)]
        return body

    def reset(self) -> None:
        self.history = []


class RemoteConversation:
    """Answered by a running server's /v1/chat; the server keeps the history."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/") + "/v1/chat"
        self.conversation_id: str | None = None

    def answer(self, question: str) -> dict[str, Any] | None:
        import httpx

        payload: dict[str, Any] = {
            "messages": [{"role": "user", "content": question}],
            "stream": True,
        }
        if self.conversation_id:
            payload["conversation_id"] = self.conversation_id
        body: dict[str, Any] | None = None
        with httpx.stream("POST", self.url, json=payload, timeout=300) as response:
            if response.status_code >= 400:
                response.read()
                err.print(f"[red]{response.status_code}: {response.json().get('detail')}[/]")
                return None
            for event, data in sse_events(response.iter_lines()):
                if event == "token":
                    out.print(data["text"], end="")
                elif event == "done":
                    body = data
        if body:
            self.conversation_id = body.get("conversation_id")
        return body

    def reset(self) -> None:
        self.conversation_id = None


def _print_citations(citations: list[dict[str, Any]]) -> None:
    for c in citations:
        where = c["section"] or "(front matter)"
        notes = ", ".join(f"note {n['number']}" for n in c["endnotes"])
        out.print(
            f"  [{c['ref']}] {c['document_title']} — {where}" + (f" ({notes})" if notes else "")
        )


def _print_reply(body: dict[str, Any]) -> None:
    """What follows the streamed text: the reason for a refusal, or the parts
    left unanswered and the citations."""
    if not body["answered"]:
        out.print(body["answer"])
        out.print(f"[dim]({body.get('reason')})[/]")
        return
    for part in body.get("unanswered") or []:
        out.print(f"[yellow]not answered by the papers:[/] {part}")
    out.print()
    _print_citations(body["citations"])


def _open_local(settings: Settings) -> LocalConversation:
    from service.engine import build_engine

    try:
        engine = build_engine(settings)
        engine.retriever.snapshot()
    except MemoqaError as exc:
        raise fail(str(exc)) from exc
    return LocalConversation(engine)


@app.command()
def chat(
    url: Annotated[
        str | None, typer.Option(help="Chat with a running server (e.g. http://127.0.0.1:8000).")
    ] = None,
) -> None:
    """An interactive chat in the terminal; follow-up questions use the
    conversation. /new starts over, /quit (or Ctrl-D) leaves."""
    settings = settings_with()
    limit = settings.api.max_question_chars
    conversation: Conversation = RemoteConversation(url) if url else _open_local(settings)
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
            conversation.reset()
            err.print("(new conversation)")
            continue
        if len(question) > limit:
            err.print(f"[red]questions are limited to {limit:,} characters[/]")
            continue
        try:
            body = conversation.answer(question)
        except MemoqaError as exc:
            err.print(f"[red]{exc}[/]")
            continue
        except Exception as exc:  # a dropped connection must not end the session
            err.print(f"[red]could not answer: {exc}[/]")
            continue
        if body is not None:
            _print_reply(body)
