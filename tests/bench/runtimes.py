"""The packaged language model on two llama.cpp runtimes: llama-cpp-python
(compiled at set-up with flags for this CPU) and xllamacpp (a prebuilt wheel).
Run it with the Python of each; it uses whichever runtime that Python imports.

Per runtime it prints the model's load time, eight yes/no verdicts of the
judge's shape (a ~160-token passage and a statement each, one token out, no
prompt shared beyond the instructions), one 120-token answer to a 188-token
prompt, whether a reply is held to a JSON schema, and (xllamacpp, which serves
several sequences at once) the same eight verdicts four at a time.

    tests/offline.sh .venv/bin/python tests/bench/runtimes.py
    python3 -m venv /tmp/xl && /tmp/xl/bin/pip install xllamacpp==2026.10.11549
    tests/offline.sh /tmp/xl/bin/python tests/bench/runtimes.py
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / ".memoqa" / "models" / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
MEMO = (
    ROOT
    / "corpus"
    / json.loads((ROOT / "corpus" / "manifest.json").read_text())["documents"][0]["file"]
)
SYSTEM = "You judge whether a statement is supported by a passage. Answer yes or no."
SCHEMA = {
    "type": "object",
    "properties": {"verdict": {"type": "integer", "enum": [0, 1]}},
    "required": ["verdict"],
}
VERDICTS = 8

Chat = Callable[[dict[str, Any]], dict[str, Any]]


def paragraphs() -> list[str]:
    return [p[:1400] for p in MEMO.read_text().split("\n\n") if len(p) > 600][:16]


def verdict(i: int) -> dict[str, Any]:
    """A verdict prompt unique from its first user token, so no two share a cached prefix."""
    passages = paragraphs()
    user = (
        f"Statement: The passage says the SCO held an exercise in {2000 + i}.\n\n"
        f"Passage: {passages[i % len(passages)]}\nSupported?"
    )
    return {
        "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}],
        "max_tokens": 1,
        "temperature": 0,
    }


def answer() -> dict[str, Any]:
    text = "Summarise in five sentences: " + paragraphs()[2]
    return {"messages": [{"role": "user", "content": text}], "max_tokens": 120, "temperature": 0}


def llama_cpp_python() -> tuple[str, Chat]:
    from llama_cpp import Llama

    model = Llama(model_path=str(MODEL), n_ctx=4096, n_threads=2, n_threads_batch=2, verbose=False)

    def chat(body: dict[str, Any]) -> dict[str, Any]:
        fmt = body.pop("response_format", None)
        if fmt:
            body["response_format"] = {"type": "json_object", "schema": fmt["schema"]}
        return dict(model.create_chat_completion(**body))

    return "llama-cpp-python", chat


def xllamacpp() -> tuple[str, Chat]:
    import xllamacpp as x

    params = x.CommonParams()
    params.model.path = str(MODEL)
    params.n_parallel = 4
    params.n_ctx = 4096 * 4
    params.cpuparams.n_threads = 2
    params.cpuparams_batch.n_threads = 2
    params.sampling.temp = 0
    params.offline = True
    params.verbosity = -1
    server = x.Server(params)
    return "xllamacpp", lambda body: dict(server.handle_chat_completions(body))


def main() -> None:
    started = time.perf_counter()
    try:
        name, chat = llama_cpp_python()
    except ImportError:
        name, chat = xllamacpp()
    print(f"{name}: model loaded in {time.perf_counter() - started:.1f} s")
    chat(verdict(-1))  # warm-up

    started = time.perf_counter()
    for i in range(VERDICTS):
        chat(verdict(i))
    print(f"{VERDICTS} verdicts one at a time: {time.perf_counter() - started:.1f} s")

    started = time.perf_counter()
    reply = chat(answer())
    usage = reply.get("usage", {})
    print(
        f"one answer ({usage.get('prompt_tokens')} prompt, {usage.get('completion_tokens')} "
        f"generated tokens): {time.perf_counter() - started:.1f} s"
    )

    body = verdict(100) | {
        "max_tokens": 20,
        "response_format": {"type": "json_object", "schema": SCHEMA},
    }
    content = chat(body)["choices"][0]["message"]["content"]
    print(f"held to the JSON schema: {json.loads(content).get('verdict') in (0, 1)} ({content!r})")

    if name == "xllamacpp":
        started = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(chat, [verdict(200 + i) for i in range(VERDICTS)]))
        print(f"{VERDICTS} verdicts four at a time: {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
