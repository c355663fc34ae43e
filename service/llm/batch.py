"""Several greedy, schema-constrained chat completions decoded together.

On a CPU, writing one token means reading every weight of the model once:
generation is bound by memory bandwidth, so one decoding step for four
sequences costs little more than for one. `BatchedChat` runs a batch of chat
completions in one llama.cpp context, one sequence each: the prompt prefix they
share (a metric's fixed instructions) is decoded once and kept for the next
batch, each prompt's own part is decoded on its own sequence, and each step of
generation decodes one token for every sequence still writing.

Each sequence is sampled exactly as `LocalLLM.chat` samples a constrained
greedy completion (`GreedyGrammarSampler`, the same chat template, stop at the
end-of-generation token or the template's stop string, `max_tokens` at most),
so a batch gives the replies the calls would give one at a time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ingest.errors import MemoqaError
from service.llm.local import LocalLLM
from service.llm.sampler import GreedyGrammarSampler


@dataclass
class ChatRequest:
    messages: list[dict[str, str]]
    schema: dict[str, Any]
    max_tokens: int = 512
    repeat_penalty: float = 1.0


@dataclass
class ChatReply:
    text: str
    finish_reason: str  # "stop" or "length"
    prompt_tokens: int
    completion_tokens: int


@dataclass
class _Sequence:
    request: ChatRequest
    prompt: list[int]
    stop: list[bytes]
    sampler: GreedyGrammarSampler
    tokens: list[int]
    finish: str | None = None

    @property
    def longest_stop(self) -> int:
        return max((len(stop) for stop in self.stop), default=0)


def _common_prefix(lists: list[list[int]]) -> int:
    first = lists[0]
    n = min(len(x) for x in lists)
    for i in range(n):
        token = first[i]
        if any(x[i] != token for x in lists[1:]):
            return i
    return n


class BatchedChat:
    """A second llama.cpp context on a loaded model, holding up to
    `max_sequences` sequences of `n_ctx_per_sequence` tokens each."""

    def __init__(
        self,
        llm: LocalLLM,
        *,
        max_sequences: int = 4,
        n_ctx_per_sequence: int = 4096,
        n_batch: int = 512,
    ) -> None:
        from llama_cpp import _internals

        self.llm = llm
        self.llama = llm.llama
        self.max_sequences = max_sequences
        self.n_ctx_per_sequence = n_ctx_per_sequence
        self.n_batch = n_batch
        # The loaded context's settings (attention kernel, cache types, threads),
        # with room for the batch.
        source = self.llama.context_params
        params = type(source).from_buffer_copy(source)
        params.n_ctx = max_sequences * n_ctx_per_sequence
        params.n_batch = n_batch
        params.n_ubatch = n_batch
        params.n_seq_max = max_sequences
        params.kv_unified = True  # the shared prefix is stored once
        self._ctx = _internals.LlamaContext(model=self.llama._model, params=params, verbose=False)
        self._batch = _internals.LlamaBatch(
            n_tokens=n_batch, embd=0, n_seq_max=max_sequences, verbose=False
        )
        self._format = _chat_formatter(self.llama)
        self._prefix: list[int] = []  # what sequence 0 holds between batches

    def close(self) -> None:
        for part in ("_batch", "_ctx"):
            value = vars(self).pop(part, None)
            if value is not None:
                value.close()

    # --- one batch ---------------------------------------------------------------

    def complete(self, requests: list[ChatRequest]) -> list[ChatReply]:
        """The replies to `requests`, in order; more than `max_sequences` are
        decoded in consecutive batches."""
        replies: list[ChatReply] = []
        for start in range(0, len(requests), self.max_sequences):
            chunk = requests[start : start + self.max_sequences]
            with self.llm.lock:
                replies.extend(self._complete(chunk))
        return replies

    def _complete(self, requests: list[ChatRequest]) -> list[ChatReply]:
        from llama_cpp.llama_grammar import LlamaGrammar

        sequences = []
        for request in requests:
            prompt, stop = self._format(request.messages)
            if len(prompt) + request.max_tokens > self.n_ctx_per_sequence:
                raise MemoqaError(
                    f"a prompt of {len(prompt)} tokens and {request.max_tokens} to write does "
                    f"not fit the model's context of {self.n_ctx_per_sequence}"
                )
            grammar = LlamaGrammar.from_json_schema(json.dumps(request.schema), verbose=False)
            sampler = GreedyGrammarSampler(
                self.llama, grammar, repeat_penalty=request.repeat_penalty
            )
            sequences.append(_Sequence(request, prompt, stop, sampler, []))
        try:
            self._read_prompts(sequences)
            self._write(sequences)
        finally:
            for s in sequences:
                s.sampler.close()
        return [
            ChatReply(
                text=self._text(s),
                finish_reason=s.finish or "length",
                prompt_tokens=len(s.prompt),
                completion_tokens=len(s.tokens),
            )
            for s in sequences
        ]

    def _read_prompts(self, sequences: list[_Sequence]) -> None:
        """Decode the shared prefix on sequence 0 (reusing what it holds from
        the last batch), copy it to the others, then each prompt's own part;
        the first token of each reply is sampled as its prompt ends."""
        prompts = [s.prompt for s in sequences]
        # Every sequence decodes at least its last prompt token itself.
        shared = min(_common_prefix(prompts), min(len(p) for p in prompts) - 1)
        prefix = prompts[0][:shared]
        kept = _common_prefix([self._prefix, prefix]) if self._prefix else 0
        memory = self._ctx
        memory.kv_cache_seq_rm(0, kept, -1)
        for seq in range(1, self.max_sequences):
            memory.kv_cache_seq_rm(seq, 0, -1)
        self._decode_run(prefix[kept:], 0, kept, last_logits=False)
        self._prefix = prefix
        for seq in range(1, len(sequences)):
            memory.kv_cache_seq_cp(0, seq, 0, shared)
        for seq, s in enumerate(sequences):
            index = self._decode_run(s.prompt[shared:], seq, shared, last_logits=True)
            self._accept(s, s.sampler.sample(self._ctx, index))

    def _decode_run(self, tokens: list[int], seq: int, start: int, *, last_logits: bool) -> int:
        """Decode `tokens` on one sequence from position `start`, in chunks;
        returns the batch index of the last token's logits."""
        index = -1
        for offset in range(0, len(tokens), self.n_batch):
            chunk = tokens[offset : offset + self.n_batch]
            last = last_logits and offset + len(chunk) == len(tokens)
            for i, token in enumerate(chunk):
                self._put(i, token, start + offset + i, seq, logits=last and i == len(chunk) - 1)
            if last:
                index = len(chunk) - 1
            self._decode(len(chunk))
        return index

    def _write(self, sequences: list[_Sequence]) -> None:
        """One token for every sequence still writing, per decoding step."""
        while True:
            active = [(seq, s) for seq, s in enumerate(sequences) if s.finish is None]
            if not active:
                return
            for i, (seq, s) in enumerate(active):
                self._put(i, s.tokens[-1], len(s.prompt) + len(s.tokens) - 1, seq, logits=True)
            self._decode(len(active))
            for i, (_, s) in enumerate(active):
                self._accept(s, s.sampler.sample(self._ctx, i))

    def _put(self, i: int, token: int, pos: int, seq: int, *, logits: bool) -> None:
        """Place a token of one sequence at slot `i` of the batch."""
        b = self._batch.batch
        b.token[i] = token
        b.pos[i] = pos
        b.n_seq_id[i] = 1
        b.seq_id[i][0] = seq
        b.logits[i] = logits

    def _decode(self, n_tokens: int) -> None:
        self._batch.batch.n_tokens = n_tokens
        self._ctx.decode(self._batch)

    def _accept(self, s: _Sequence, token: int) -> None:
        """Record a sampled token, or end the sequence as `create_completion` does."""
        import llama_cpp

        if llama_cpp.llama_vocab_is_eog(self.llama._model.vocab, token):
            s.finish = "stop"
            return
        s.tokens.append(token)
        # A stop string that has just appeared lies within the last few tokens
        # (each token is at least a byte): only those are read back.
        tail = s.tokens[-(s.longest_stop + 1) :]
        text = self.llama.detokenize(tail, prev_tokens=s.prompt + s.tokens[: -len(tail)])
        if any(stop in text for stop in s.stop):
            s.finish = "stop"
        elif len(s.tokens) >= s.request.max_tokens:
            s.finish = "length"

    def _text(self, s: _Sequence) -> str:
        text = self.llama.detokenize(s.tokens, prev_tokens=s.prompt)
        for stop in s.stop:
            if stop in text:
                text = text[: text.index(stop)]
        return text.decode("utf-8", errors="ignore")


def _chat_formatter(llama: Any) -> Any:
    """The function that lays out messages the way `llama.create_chat_completion`
    does for this model: (prompt tokens, stop strings)."""
    from llama_cpp import llama_chat_format

    if llama.chat_handler is not None:
        raise MemoqaError("batched chat needs the model's own chat template")
    name = llama.chat_format
    formatter: Any
    if name in llama._chat_handlers:
        meta = llama.metadata
        template = meta["tokenizer.chat_template"] if name == "chat_template.default" else None
        if template is None:
            raise MemoqaError(f"batched chat does not know the chat format {name!r}")
        eos_id = llama.token_eos()
        bos_id = llama.token_bos()
        formatter = llama_chat_format.Jinja2ChatFormatter(
            template=template,
            eos_token=llama._model.token_get_text(eos_id) if eos_id != -1 else "",
            bos_token=llama._model.token_get_text(bos_id) if bos_id != -1 else "",
            stop_token_ids=[eos_id],
        )
    elif name == "chatml":
        formatter = llama_chat_format.format_chatml
    else:
        raise MemoqaError(f"batched chat does not know the chat format {name!r}")

    def layout(messages: list[dict[str, str]]) -> tuple[list[int], list[bytes]]:
        result = formatter(messages=messages)
        prompt = llama.tokenize(
            result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True
        )
        stops = result.stop if isinstance(result.stop, list) else [result.stop]
        return list(prompt), [s.encode("utf-8") for s in stops if s]

    return layout
