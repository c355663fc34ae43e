"""The llama.cpp build helper runs before the project's dependencies exist."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_cmake_args_need_no_installed_dependencies():
    # `make install` runs it with the system Python, before llama-index and the
    # rest are installed; -S leaves out every site-packages folder to match.
    result = subprocess.run(
        [sys.executable, "-S", "-m", "service.local_llm", "cmake-args"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "-DGGML_NATIVE=OFF" in result.stdout and "-DGGML_AMX_TILE=OFF" in result.stdout
