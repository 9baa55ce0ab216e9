# xuptime: `make run` to try it, `make test` for the whole suite, `make bench` for the claims.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
SOURCES := pyproject.toml setup.py $(wildcard ext/*.pyx ext/*.pxd)

.PHONY: install run test screenshots lint bench bench-quick fuzz clean

install: $(STAMP)

# Re-runs only when packaging or Cython sources change; `pip install -e` rebuilds ext/.
$(STAMP): $(SOURCES)
	@command -v cc >/dev/null 2>&1 || { echo "xuptime: a C compiler is needed (apt-get install gcc python3-dev)"; exit 1; }
	@test -f /usr/include/openssl/ssl.h || { echo "installing Debian's libssl-dev (the compiled engine's TLS)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libssl-dev; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

# `make run PORT=9000 HOST=0.0.0.0` to serve elsewhere (default 127.0.0.1:8080).
HOST ?= 127.0.0.1
PORT ?= 8080
run: install
	@$(VENV)/bin/xuptime serve --demo --host $(HOST) --port $(PORT)

lint: install
	$(VENV)/bin/ruff check .

# The browser tests drive Debian's Chromium (never a downloaded browser): installed when missing.
test: install lint
	@test -x /usr/bin/chromium || { echo "installing Debian's chromium for the browser tests"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }
	$(PY) -m pytest -q

# Screenshots of the main pages (taken by the browser tests) into docs/screenshots.
screenshots: install
	XUPTIME_SCREENSHOTS=docs/screenshots $(PY) -m pytest -q tests/e2e

bench: install
	$(PY) -m bench.wheel
	$(PY) -m bench.engine
	$(PY) -m bench.api
	$(PY) -m bench.alerts
	$(PY) -m bench.web
	$(PY) -m bench.agents
	$(PY) -m bench.storage
	$(PY) -m bench.history
	$(PY) -m bench.upkeep
	$(PY) -m bench.scale

bench-quick: install
	$(PY) -m bench.wheel --quick
	$(PY) -m bench.engine --quick
	$(PY) -m bench.api --quick
	$(PY) -m bench.alerts --quick
	$(PY) -m bench.web --quick
	$(PY) -m bench.agents --quick
	$(PY) -m bench.storage --quick
	$(PY) -m bench.history --quick
	$(PY) -m bench.upkeep --quick
	$(PY) -m bench.scale --quick

# Coverage-guided fuzzing of the compiled HTTP parser (atheris, libFuzzer, AddressSanitizer),
# against the general checker. FUZZ_SECONDS=600 for a longer run; new findings are left as
# crash-* here: move them to tests/fuzz/regressions/ (make test replays them).
FUZZ_SECONDS ?= 300
FUZZ_BUILD := build/fuzz
fuzz: install
	@command -v clang >/dev/null 2>&1 || { apt-get update -q && apt-get install -y -q clang; }
	@$(PY) -c 'import atheris' 2>/dev/null || $(PY) -m pip install -q 'atheris>=2.3'
	@$(PY) -c 'import Cython' 2>/dev/null || $(PY) -m pip install -q 'Cython>=3.1'  # (the install built in isolation)
	XUPTIME_FUZZ=1 CC=clang LDSHARED='clang -shared' $(PY) setup.py -q build_ext --build-lib $(FUZZ_BUILD) --build-temp $(FUZZ_BUILD)/tmp
	cp ext/*.py $(FUZZ_BUILD)/ext/
	mkdir -p $(FUZZ_BUILD)/corpus && cp tests/fuzz/corpus/* tests/fuzz/regressions/* $(FUZZ_BUILD)/corpus/ 2>/dev/null || true
	ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 XUPTIME_FUZZ_BUILD=$(FUZZ_BUILD) \
	LD_PRELOAD=$$($(PY) -c 'import atheris, os; print(os.path.join(atheris.path(), "asan_with_fuzzer.so"))') \
	$(PY) -m tests.fuzz.fuzz_http -max_total_time=$(FUZZ_SECONDS) -max_len=8192 -timeout=10 $(FUZZ_BUILD)/corpus

clean:
	rm -rf build $(VENV) ext/*.c ext/*.so ext/*.html *.egg-info
