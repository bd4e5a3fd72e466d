# Both entry points work from a clean clone: they create .venv when absent and install into it.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Two workers (one per core): the suite spends half its time waiting on simulated
# clocks and subprocesses; a file stays on one worker so its module fixtures are shared.
.PHONY: demo test lint typecheck unit clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/ecsync demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy src/

# This machine kind may run PostgreSQL on 127.0.0.1:5432 (trust auth, database `test`): when
# it answers, the store tests run on it too (unless ECSYNC_TEST_POSTGRES_URL is already set);
# without it they skip with a visible reason.
PG_URL := postgresql://postgres@127.0.0.1:5432/test

unit: $(STAMP)
	@if [ -n "$$ECSYNC_TEST_POSTGRES_URL" ]; then \
	  echo "store tests also run on PostgreSQL (ECSYNC_TEST_POSTGRES_URL is set)"; \
	elif command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432; then \
	  echo "PostgreSQL answers on 127.0.0.1:5432: store tests also run on PostgreSQL"; \
	  export ECSYNC_TEST_POSTGRES_URL="$(PG_URL)"; \
	else \
	  echo "no PostgreSQL on 127.0.0.1:5432: PostgreSQL store tests will be skipped"; \
	fi; \
	$(BIN)/pytest -q -n 2 --dist loadfile

test: lint typecheck unit

clean:
	rm -rf $(VENV) ecsync-demo .pytest_cache .mypy_cache .ruff_cache
