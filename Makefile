# Warden: `make run` (console + demo) and `make test` (the whole suite).
# Both create .venv and install the pinned dependencies on first use; only Python is needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8000
STAMP  := $(VENV)/.installed

.PHONY: run test lint check bench soak clean

$(STAMP): requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py bootstrap_demo > /dev/null
	@# --demo: the demo fleet starts once the console answers, and prints what to look at first
	$(BIN)/python manage.py serve --port $(PORT) --demo

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

check: $(STAMP)
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/python manage.py check

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

# The long soak (bench/soak.py: 200 simulated agents for 10 minutes on a private production
# stack); `make soak SOAK_ARGS="--minutes 2"` for a shorter one.
soak: $(STAMP)
	$(BIN)/python bench/soak.py $(SOAK_ARGS)

clean:
	rm -rf $(VENV) var
