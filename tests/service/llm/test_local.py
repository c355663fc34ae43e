"""The llama.cpp build helper runs before the project's dependencies exist."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_cmake_args_need_no_installed_dependencies():
    # `make install` runs it with the system Python, before llama-index and the
    # rest are installed; -S leaves out every site-packages folder to match.
    result = subprocess.run(
        [sys.executable, "-S", "-m", "service.llm.build", "cmake-args"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "-DGGML_NATIVE=OFF" in result.stdout and "-DGGML_AMX_TILE=OFF" in result.stdout


XEON = (
    "model name\t: Intel Xeon\n"
    "flags\t\t: fma f16c avx2 avx512f avx512bw avx512vl avx512_vnni amx_tile"
)
EPYC = "model name\t: AMD EPYC\nflags\t\t: fma f16c avx2"


def test_the_avx2_build_can_be_asked_for_on_an_avx512_cpu(monkeypatch):
    import pytest

    from ingest.errors import MemoqaError
    from service.llm.build import cmake_args, cpu_model

    native = cmake_args(XEON, "native")
    assert "-DGGML_AVX512=ON" in native and "-DGGML_AVX512_VNNI=ON" in native
    forced = cmake_args(XEON, "avx2")
    assert forced == cmake_args(EPYC, "native") == cmake_args(EPYC, "avx2")
    assert "-DGGML_AVX512=OFF" in forced and "-DGGML_AVX2=ON" in forced
    assert all(f in forced for f in ("-DGGML_AMX_TILE=OFF", "-DLLAVA_BUILD=OFF"))
    monkeypatch.setenv("MEMOQA_LLAMA_CPU", "avx2")
    assert cmake_args(XEON) == forced
    monkeypatch.setenv("MEMOQA_LLAMA_CPU", "avx3")
    with pytest.raises(MemoqaError, match="choose native or avx2"):
        cmake_args(XEON)
    assert cpu_model(XEON) == "Intel Xeon" and cpu_model("flags: avx2") == "unknown"


def test_describe_names_the_cpu_and_the_build():
    result = subprocess.run(
        [sys.executable, "-S", "-m", "service.llm.build", "describe"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"MEMOQA_LLAMA_CPU": "avx2", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("CPU: ") and "llama.cpp build (avx2):" in result.stdout
    assert "-DGGML_AVX512=OFF" in result.stdout


def test_greedy_grammar_sampler_picks_the_same_tokens_as_llama_cpp():
    """The fast path checks only the best token against the grammar; it must
    decode exactly what masking the whole vocabulary first decodes."""
    import json

    from service.llm.local import LocalLLM
    from service.settings import get_settings

    settings = get_settings()
    llm = LocalLLM(settings.llm.model_path, n_ctx=2048, threads=settings.llm.threads)
    fast = llm.llama._init_sampler
    chain = type(llm.llama)._init_sampler.__get__(llm.llama)
    schema = {
        "type": "object",
        "properties": {
            "items": {
                "type": "array",
                "minItems": 1,
                "maxItems": 3,
                "items": {
                    "type": "object",
                    "properties": {
                        "fact": {"type": "string", "maxLength": 40},
                        "verdict": {"type": "integer"},
                    },
                    "required": ["fact", "verdict"],
                },
            }
        },
        "required": ["items"],
    }
    prompt = [{"role": "user", "content": "Give three facts about the SCO, each with verdict 1."}]
    try:
        for penalty in (1.0, 1.1):
            replies = []
            for init in (chain, fast):
                llm.llama._init_sampler = init
                llm.llama.reset()  # the same prompt evaluation for both
                reply = llm.chat(prompt, schema=schema, max_tokens=160, repeat_penalty=penalty)
                replies.append(reply["choices"][0]["message"]["content"])
            assert replies[0] == replies[1]
            items = json.loads(replies[1])["items"]
            assert 1 <= len(items) <= 3 and all(len(i["fact"]) <= 40 for i in items)
    finally:
        llm.close()


def test_the_packaged_model_reads_only_words_of_the_candidates():
    """Under the span grammar the real model replies NONE or a run of one
    candidate's words, and the reading finds the sentence that holds them."""
    from service.answer.reader import NONE, SpanReader
    from service.llm.local import LocalLLM
    from service.settings import get_settings

    settings = get_settings()
    llm = LocalLLM(settings.llm.model_path, n_ctx=2048, threads=settings.llm.threads)
    try:
        reader = SpanReader(llm)
        sentences = ["Its budget grew in 2010.", "The fund was set up in Lisbon in 1998."]
        reading = reader.read("Where was the fund set up?", "place", sentences)
        assert reading.sentence == 1 and "Lisbon" in reading.words
        assert reading.words in sentences[1] and reading.prompt_tokens > 0
        other = reader.read("How many staff does the fund employ?", "quantity", sentences[:1])
        assert other.words == "" or other.words in sentences[0]
        assert other.sentence is None or other.words != NONE
    finally:
        llm.close()
