"""The packaged local language model, run in-process on the CPU with llama.cpp,
its output constrainable to a JSON schema (assembled at set-up: `service.llm.build`).
"""

from __future__ import annotations

import atexit
import os
import threading
from pathlib import Path
from typing import Any

from ingest.errors import ModelNotFoundError
from service.llm.sampler import GreedyGrammarSampler


class LocalLLM:
    """One llama.cpp model in this process. Calls are serialised (one model, one
    request at a time); llama.cpp reuses the KV cache of the longest common
    prompt prefix between consecutive calls."""

    def __init__(self, path: Path, *, n_ctx: int = 4096, threads: int | None = None) -> None:
        if not path.is_file():
            raise ModelNotFoundError(f"language model file {path} not found: run `make setup`")
        from llama_cpp import Llama

        threads = threads or os.cpu_count() or 2
        self.path = path
        self.name = path.stem
        self.lock = threading.Lock()
        self._yes_no: tuple[list[int], list[int]] | None = None
        self._prefixes: dict[str, tuple[list[int], Any, int, Any]] = {}
        self.last_prompt_tokens = 0  # of the last yes/no verdict
        self.llama = Llama(
            model_path=str(path),
            n_ctx=n_ctx,
            n_threads=threads,
            n_threads_batch=threads,
            verbose=False,
        )
        self._use_fast_grammar(self.llama)
        # Free the model before interpreter shutdown tears down what its finaliser needs.
        atexit.register(self.close)

    @staticmethod
    def _use_fast_grammar(llama: Any) -> None:
        """Greedy grammar-constrained decoding goes through GreedyGrammarSampler."""
        original = llama._init_sampler

        def init_sampler(**kwargs: Any) -> Any:
            greedy = kwargs.get("temp") == 0.0 and not kwargs.get("mirostat_mode")
            if kwargs.get("grammar") is not None and greedy and not kwargs.get("logits_processor"):
                return GreedyGrammarSampler(
                    llama,
                    kwargs["grammar"],
                    repeat_penalty=kwargs.get("repeat_penalty", 1.0),
                    frequency_penalty=kwargs.get("frequency_penalty", 0.0),
                    presence_penalty=kwargs.get("presence_penalty", 0.0),
                )
            return original(**kwargs)

        llama._init_sampler = init_sampler

    def close(self) -> None:
        # Dropped from the instance: closing twice (or after a failed start) is harmless.
        llama = vars(self).pop("llama", None)
        if llama is not None:
            llama.close()

    def chat(
        self,
        messages: list[dict[str, str]],
        *,
        max_tokens: int = 512,
        schema: dict[str, Any] | None = None,
        temperature: float = 0.0,
        stream: bool = False,
        repeat_penalty: float = 1.0,
    ) -> Any:
        kwargs: dict[str, Any] = {
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": stream,
            "repeat_penalty": repeat_penalty,
        }
        if schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": schema}
        if stream:
            return self._streamed(kwargs)
        with self.lock:
            return self.llama.create_chat_completion(**kwargs)

    def _streamed(self, kwargs: dict[str, Any]) -> Any:
        """A streamed completion holds the model until it ends or is closed: the
        model's one context must not serve another call in between."""
        with self.lock:
            yield from self.llama.create_chat_completion(**kwargs)

    def yes_probability(self, system: str, user: str, lead: str = "") -> float:
        """P(yes) / (P(yes) + P(no)) for the model's first reply token: a graded
        yes/no verdict in one decoding step, on the user message `lead + user`.
        The prompt is laid out as the model's ChatML template does. The model's
        state after the system prompt is kept per system prompt, so another
        prompt in between (an answer being written) does not make it read the
        instructions again; `lead` (the question, asked of several sentences in
        turn) is read on its own and kept while consecutive verdicts share it."""
        import numpy as np
        from llama_cpp import LogitsProcessorList

        if self._yes_no is None:

            def ids(words: list[str]) -> list[int]:
                return sorted({self.llama.tokenize(w.encode(), add_bos=False)[0] for w in words})

            self._yes_no = (ids(["yes", "Yes", " yes", " Yes"]), ids(["no", "No", " no", " No"]))
        yes, no = self._yes_no
        seen: list[Any] = []

        def capture(_ids: Any, scores: Any) -> Any:
            seen.append(np.asarray(scores, dtype=np.float64).copy())
            return scores

        with self.lock:
            saved = self._instructions(system)
            # Every verdict starts from the instructions and its lead, each read
            # on its own, so it does not depend on what the model read before.
            prefix = saved[0]
            lead_ids = self._tokens(lead) if lead else []
            if lead_ids and self._holds(prefix + lead_ids):
                self._restore(saved, reload=False, keep=len(prefix) + len(lead_ids))
            else:
                self._restore(saved, reload=not self._holds(prefix))
                if lead_ids:
                    self.llama.eval(lead_ids)
            rest = self._tokens(f"{user}<|im_end|>\n<|im_start|>assistant\n")
            self.llama.create_completion(
                prefix + lead_ids + rest,
                max_tokens=1,
                temperature=0.0,
                logits_processor=LogitsProcessorList([capture]),
            )
            self.last_prompt_tokens = int(self.llama.n_tokens)
        logits = seen[0]
        top = float(np.max(logits[yes + no]))
        p_yes = float(np.sum(np.exp(logits[yes] - top)))
        p_no = float(np.sum(np.exp(logits[no] - top)))
        return p_yes / (p_yes + p_no)

    def constrained(self, system: str, user: str, grammar: str, *, max_tokens: int = 64) -> str:
        """The model's reply to `user` under `system`, greedy and held to a GBNF
        grammar; the instructions' state is kept as for the verdicts."""
        from llama_cpp.llama_grammar import LlamaGrammar

        rules = LlamaGrammar.from_string(grammar, verbose=False)
        with self.lock:
            saved = self._instructions(system)
            self._restore(saved, reload=not self._holds(saved[0]))
            rest = self._tokens(f"{user}<|im_end|>\n<|im_start|>assistant\n")
            reply = self.llama.create_completion(
                saved[0] + rest, max_tokens=max_tokens, temperature=0.0, grammar=rules
            )
            self.last_prompt_tokens = len(saved[0]) + len(rest)
        return str(reply["choices"][0]["text"])  # type: ignore[index]

    def _instructions(self, system: str) -> tuple[list[int], Any, int, Any]:
        """The model's state after reading the instructions, decoded once and kept."""
        saved = self._prefixes.get(system)
        if saved is None:
            head = f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n"
            prefix = self.llama.tokenize(head.encode(), add_bos=False, special=True)
            self.llama.reset()  # type: ignore[no-untyped-call]  # unannotated upstream
            self.llama.eval(prefix)
            saved = self._prefixes[system] = self._checkpoint(prefix)
        return saved

    def _tokens(self, text: str) -> list[int]:
        return list(self.llama.tokenize(text.encode(), add_bos=False, special=True))

    def _holds(self, prefix: list[int]) -> bool:
        """Whether the model's cache starts with these tokens."""
        n = len(prefix)
        return self.llama.n_tokens >= n and list(self.llama.input_ids[:n]) == prefix

    def _checkpoint(self, prefix: list[int]) -> tuple[list[int], Any, int, Any]:
        """The model's cache as it is now, to return to when `prefix` is wanted again."""
        import ctypes

        import llama_cpp

        ctx = self.llama._ctx.ctx
        size = llama_cpp.llama_state_get_size(ctx)
        buffer = (ctypes.c_uint8 * int(size))()
        used = llama_cpp.llama_state_get_data(ctx, buffer, size)
        return prefix, buffer, int(used), self.llama.input_ids[: self.llama.n_tokens].copy()

    def _restore(
        self, saved: tuple[list[int], Any, int, Any], *, reload: bool = True, keep: int = 0
    ) -> None:
        """Back to the saved prefix, reloading its state when the cache has
        moved on; or to the first `keep` tokens the cache holds (the prefix and
        what was read after it)."""
        import llama_cpp

        prefix, buffer, used, _ = saved
        if reload:
            llama_cpp.llama_state_set_data(self.llama._ctx.ctx, buffer, used)
            self.llama.input_ids[: len(prefix)] = prefix
        keep = max(keep, len(prefix))
        # What follows is decoded afresh, so the logits sampled from are never
        # those of an earlier call.
        self.llama._ctx.kv_cache_seq_rm(-1, keep, -1)
        self.llama.n_tokens = keep
        self.llama._requires_eval = True
