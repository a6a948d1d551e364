# The two commands an operator or developer needs: `make demo` and `make test`.
# Both bootstrap .venv on first use (and again whenever pyproject.toml changes).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck layers pytest bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "error: Python 3.11 or newer is needed (set PYTHON=...)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -m pip install --quiet -e '.[test]'
	@# Bytecode for lapnode's own modules now: where PYTHONDONTWRITEBYTECODE is set (some CI images and
	@# these machines), every `lapnode` command otherwise compiles them all again (0.3-0.5 s each).
	@$(BIN)/python -m compileall -q keys protocol lapnode >/dev/null
	@touch $(STAMP)

demo: $(STAMP)
	@$(BIN)/python -m lapnode.demo

lint: $(STAMP)
	$(BIN)/ruff check keys protocol lapnode bench tests
	$(BIN)/ruff format --check keys protocol lapnode bench tests

typecheck: $(STAMP)
	$(BIN)/mypy

layers: $(STAMP)
	$(BIN)/lint-imports

# Files go to workers in collection order (--no-loadscope-reorder): xdist's default hands out the files
# with the most tests first, which left the integration files, few tests but minutes each, for the end.
pytest: $(STAMP)
	$(BIN)/python -m pytest -q -rs -p no:cacheprovider -n 3 --dist loadfile --no-loadscope-reorder

test: lint typecheck layers pytest

clean:
	rm -rf $(VENV) build *.egg-info
