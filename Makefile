# Two commands for a fresh clone:  `make run` (the bot, its simulator and the staff console)  and
# `make test` (everything).
# Both create .venv on first use: `make run` installs only what running needs (requirements.txt),
# `make test` adds the test tools (requirements-dev.txt). Each set has its own stamp, named by a
# checksum of its files, so an edited requirements file installs again.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install --quiet --disable-pip-version-check
RUN_STAMP   := $(VENV)/.run-$(shell cat requirements.txt | cksum | cut -d' ' -f1)
TEST_STAMP  := $(VENV)/.test-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
BENCH_STAMP := $(VENV)/.bench-$(shell cat requirements.txt requirements-dev.txt requirements-bench.txt | cksum | cut -d' ' -f1)
SAMPLE := $(wildcard ../shared/eval/sample-messages.yaml)
# The tuning sets: every set of tests/eval but the held-out ones (whose misses are never printed).
HELD_OUT := tests/eval/heldout.yaml tests/eval/hard.yaml tests/eval/triage.yaml tests/eval/two_questions.yaml
TUNING_SETS := $(filter-out $(HELD_OUT),$(sort $(wildcard tests/eval/*.yaml)))

.PHONY: run chat test evaluate bench kb-check screenshots clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(RUN_STAMP): requirements.txt | $(BIN)/python
	$(PIP) -r requirements.txt
	rm -f $(VENV)/.run-*
	touch $@

$(TEST_STAMP): $(RUN_STAMP) requirements-dev.txt
	$(PIP) -r requirements-dev.txt
	rm -f $(VENV)/.test-*
	touch $@

run: $(RUN_STAMP)
	$(BIN)/python -m bot dev

chat: $(RUN_STAMP)
	$(BIN)/python -m bot chat --via-webhook

test: $(TEST_STAMP)
	$(BIN)/python -m pytest
	$(BIN)/python -m bot evaluate --errors 0 tests/eval/heldout.yaml tests/eval/hard.yaml tests/eval/triage.yaml $(SAMPLE)

# The held-out sets' misses are not printed: reading them would make its figures optimistic.
evaluate: $(RUN_STAMP)
	$(BIN)/python -m bot evaluate $(TUNING_SETS)
	$(BIN)/python -m bot evaluate --baseline --errors 0 tests/eval/heldout.yaml tests/eval/hard.yaml $(SAMPLE)
	$(BIN)/python -m bot evaluate --errors 0 tests/eval/triage.yaml tests/eval/two_questions.yaml

# Benchmarks print figures (never pass/fail) and write them to docs/perf/ with the plots of
# docs/PERFORMANCE.md. Needs wrk (apt-get install -y wrk) and PostgreSQL; about 12 minutes.
$(BENCH_STAMP): $(TEST_STAMP) requirements-bench.txt
	$(PIP) -r requirements-bench.txt
	rm -f $(VENV)/.bench-*
	touch $@

bench: $(BENCH_STAMP)
	$(BIN)/python bench/matcher_latency.py --json docs/perf/matcher_latency.json
	$(BIN)/python bench/memory.py --json docs/perf/memory.json
	$(BIN)/python bench/webhook_throughput.py --json docs/perf/webhook_throughput.json
	$(BIN)/python bench/soak.py --patients 300 --messages 5000 --database sqlite
	$(BIN)/python bench/soak.py --patients 300 --messages 5000 --database postgresql
	$(BIN)/python bench/plot.py docs/perf

kb-check: $(RUN_STAMP)
	$(BIN)/python -m bot kb check

# docs/simulator-*.png and docs/laporan-*.png for the README, written by the browser tests.
screenshots: $(TEST_STAMP)
	KLINIK_SCREENSHOTS=docs $(BIN)/python -m pytest -q tests/test_simulator_browser.py tests/test_report_browser.py

clean:
	rm -rf $(VENV) .pytest_cache
