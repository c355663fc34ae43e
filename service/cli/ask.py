"""`memoqa ask`: one question answered, with its citations."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from ingest.errors import MemoqaError
from service.cli.app import app, fail, out, settings_with
from service.cli.http import post_json


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
    document: Annotated[
        list[str] | None,
        typer.Option(help="Answer from this paper only (an id; repeat for several)."),
    ] = None,
) -> None:
    """Answer a question, citing passages and their sources."""
    payload: dict[str, Any] = {"question": question}
    if top_k is not None:
        payload["top_k"] = top_k
    if document:
        payload["documents"] = document
    if url:
        body = post_json(url.rstrip("/") + "/v1/ask", payload)
    else:
        from pydantic import ValidationError

        from service.api.mapping import to_response
        from service.api.schemas import AskRequest
        from service.engine import build_engine

        settings = settings_with()
        try:
            request = AskRequest.model_validate(payload)
        except ValidationError as exc:
            raise fail("; ".join(e["msg"] for e in exc.errors()), 2) from exc
        limit = settings.api.max_question_chars
        if len(request.question) > limit:
            raise fail(f"String should have at most {limit} characters", 2)
        try:
            engine = build_engine(settings)
            result = engine.ask(request.question, request.top_k, None, request.documents)
            body = to_response(result).model_dump()
        except MemoqaError as exc:
            raise fail(str(exc)) from exc
    if as_json:
        sys.stdout.write(json.dumps(body, ensure_ascii=False, indent=2) + "\n")
    else:
        _print_answer(body)
