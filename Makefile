# Two commands do all the set-up from a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test install lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Run the demo crisis end to end on the embedded broker.
run: $(STAMP)
	@$(BIN)/crisiswatch run $(ARGS)

## Run the whole test suite against a real (embedded) broker; TEST_WORKERS processes share the files.
TEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/crisiswatch bench pipeline
	$(BIN)/crisiswatch bench detectors
	$(BIN)/crisiswatch bench control

clean:
	rm -rf $(VENV) build *.egg-info
