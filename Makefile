# viva — the two commands are `make demo` and `make test`; both set up .venv first.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: install demo test test-all browser clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first, as an exact pair (a local CPU torch wheel must not be mixed with PyPI torchvision).
	$(PIP) install -q "torch==2.14.1" "torchvision==0.29.1"
	$(PIP) install -q -e ".[test]"
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/viva grpo --config configs/grpo/toy.yaml

test: $(VENV)/.installed browser
	$(PY) -m pytest -q

# The web page test drives Debian's chromium (never a downloaded browser); installed here when apt-get is usable.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "note: chromium is not installed and cannot be installed here; tests/inference/test_web.py will skip"; fi; }

test-all: $(VENV)/.installed
	$(PY) -m pytest -q -m "not gpu"

clean:
	rm -rf $(VENV) runs .pytest_cache
