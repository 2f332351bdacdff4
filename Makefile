# One venv, made from pyproject.toml; every target installs what it needs first.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
ARGS   ?=

.PHONY: run test lint typecheck proto bench brokers tools clean venv fuzz

venv: $(STAMP)

# setup.py and the C source: the editable install builds the compiled core in place.
$(STAMP): pyproject.toml setup.py xtcp_async/_ext/fastcore.c
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip==25.3
	$(PY) -m pip install -q -e '.[kafka,nsq,metrics,dev]'
	touch $(STAMP)

## run: stream every TCP socket of this machine as JSON lines to stdout (Ctrl-C stops it)
run: venv
	@$(VENV)/bin/xtcp-async $(ARGS)

## brokers: install (once, cached) the real Kafka and nsqd the tests start
brokers:
	bash scripts/install_kafka.sh
	bash scripts/install_nsq.sh

## tools: build (once, cached) promtool and helm, which the deploy-file tests run (minutes the first time)
tools:
	bash scripts/install_tools.sh

## lint: ruff and mypy strict
lint: venv
	$(VENV)/bin/ruff check xtcp_async tests bench scripts setup.py
	$(VENV)/bin/mypy

## proto: regenerate the protobuf code from proto/ (a test fails when it is stale)
proto: venv
	$(PY) scripts/protogen.py

## test: every test, after lint, with real brokers
test: venv brokers tools lint
	$(PY) -m pytest $(ARGS)

## bench: cost at 20k/60k/120k sockets against ss (prints a table, writes bench/results/)
bench: venv
	$(PY) -m bench $(ARGS)

## fuzz: the compiled core under ASan/UBSan, fed mutated netlink bytes for FUZZ_SECONDS (default 600)
FUZZ_SECONDS ?= 600
fuzz: venv
	XTCP_FUZZ_SECONDS=$(FUZZ_SECONDS) $(PY) -m pytest tests/unit/native/test_sanitized.py -v $(ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build xtcp_async/*.so
