# memoqa: `make run` installs, ingests the corpus and serves on 127.0.0.1:8000;
# `make test` runs the whole test suite with the network cut (loopback only).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: setup install ingest run test clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

setup: $(STAMP)
	$(BIN)/memoqa ingest

ingest: $(STAMP)
	$(BIN)/memoqa ingest

run: setup
	$(BIN)/memoqa serve --host $(HOST) --port $(PORT)

# Tests run in a fresh network namespace where only loopback exists, so any
# attempt to download a model or send telemetry fails the suite. Where no
# namespace can be made, the tests' own socket guard still refuses any
# connection outside loopback.
test: $(STAMP)
	@if command -v unshare >/dev/null && command -v ip >/dev/null && unshare -rn true 2>/dev/null; then \
		echo "running tests with the network cut (loopback only)"; \
		unshare -rn sh -c 'ip link set lo up && exec $(BIN)/python -m pytest'; \
	else \
		echo "no network namespace available: running tests behind the socket guard"; \
		$(BIN)/python -m pytest; \
	fi

clean:
	rm -rf .memoqa
