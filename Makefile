# xuptime: `make run` to try it, `make test` for the whole suite, `make bench` for the claims.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
SOURCES := pyproject.toml setup.py $(wildcard ext/*.pyx ext/*.pxd)

.PHONY: install run test lint bench bench-quick clean

install: $(STAMP)

# Re-runs only when packaging or Cython sources change; `pip install -e` rebuilds ext/.
$(STAMP): $(SOURCES)
	@command -v cc >/dev/null 2>&1 || { echo "xuptime: a C compiler is needed (apt-get install gcc python3-dev)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

run: install
	$(VENV)/bin/xuptime serve --demo

lint: install
	$(VENV)/bin/ruff check .

test: install lint
	$(PY) -m pytest -q

bench: install
	$(PY) -m bench.wheel
	$(PY) -m bench.engine
	$(PY) -m bench.api
	$(PY) -m bench.alerts

bench-quick: install
	$(PY) -m bench.wheel --quick
	$(PY) -m bench.engine --quick
	$(PY) -m bench.api --quick
	$(PY) -m bench.alerts --quick

clean:
	rm -rf build $(VENV) ext/*.c ext/*.so ext/*.html *.egg-info
