# cbplatform — the two set-up commands are `make run` and `make test`; both install what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements/*.txt | sha1sum | cut -c1-12)

.PHONY: run test lint bench venv migrate worker beat clean

$(STAMP): requirements/base.txt requirements/dev.txt requirements/production.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements/dev.txt
	rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

## Embedded default: SQLite, in-memory layers, simulated provider, on :3000 and :4000.
run: venv
	$(BIN)/python manage.py serve

## The test suite, against the local Postgres and Redis.
test: venv
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/lint-imports

bench: venv
	$(BIN)/python -m bench $(BENCH_ARGS)
	$(BIN)/python -m bench.workflows
	$(BIN)/python -m bench.realtime

migrate: venv
	$(BIN)/python manage.py migrate

worker: venv
	$(BIN)/celery -A cbplatform worker -l info

beat: venv
	$(BIN)/celery -A cbplatform beat -l info

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
