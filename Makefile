# ggcn-book: `make book` builds the book (smoke profile), `make test` runs every test.
# Both set up .venv from pyproject.toml / environment.yml first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEPS_HASH := $(shell cat pyproject.toml environment.yml 2>/dev/null | sha256sum | cut -c1-16)
STAMP := $(VENV)/.deps-$(DEPS_HASH)
MATHJAX := _vendor/mathjax/tex-mml-chtml.js

NB ?=
PROFILE ?= smoke
DEVICE ?= auto
SEED ?= 0
DATA_ROOT ?=
PYTEST_ARGS ?=
JOBS ?= 2

.PHONY: venv book test test-fast nbval chapter clean mathjax chromium

venv: $(STAMP)

$(STAMP):
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[book,test]"
	@rm -f $(VENV)/.deps-*
	@touch $@

# MathJax 3 from the npm registry, served from _vendor/ so maths renders offline.
mathjax: $(MATHJAX)
$(MATHJAX):
	@command -v npm >/dev/null || { echo "npm is needed to fetch MathJax (apt-get install npm)"; exit 1; }
	rm -rf _vendor/npm && mkdir -p _vendor/npm
	npm install --silent --no-audit --no-fund --prefix _vendor/npm mathjax@3
	rm -rf _vendor/mathjax && cp -r _vendor/npm/node_modules/mathjax/es5 _vendor/mathjax && rm -rf _vendor/npm

# A real browser for the page tests (Debian's chromium, plus an emoji font for the status page's
# ticks in the screenshots), installed when missing and possible.
chromium:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null); } || echo "chromium not installed: the browser tests will say so"

# The chapters show the recorded teach runs (artifacts/<chapter>/teach/), also when recorded by older code
# (their captions say so); a chapter without one trains at teach. BOOK_PROFILE=smoke executes everything quickly.
BOOK_PROFILE ?= teach
book: venv mathjax
	GGCN_PROFILE=$(call quote,$(BOOK_PROFILE)) GGCN_ACCEPT_RECORDED=1 $(VENV)/bin/jupyter-book build . -W -n --keep-going

# Two workers, one torch/OpenMP thread each (a two-thread OpenMP region on a shared core waits for a
# descheduled thread at every operation); test_book.py, with its one book build, stays on one worker.
test: venv mathjax chromium
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n $(JOBS) --dist loadfile $(PYTEST_ARGS)

test-fast: venv
	$(PY) -m pytest -q -m "not notebooks and not book" $(PYTEST_ARGS)

# nbval (lax) on every chapter, or on one with NB=03_wgcn; tests/conftest.py teaches nbval to read jupytext.
nbval: venv
	cd tests && ../$(PY) -m pytest -p conftest --nbval-lax --nbval-current-env -p no:cacheprovider --rootdir .. $(if $(NB),$(call quote,../notebooks/$(NB).md),../notebooks/)

# $(call quote,VALUE): VALUE as one shell word, whatever it holds (spaces, quotes, ;, $).
quote = '$(subst ','\'',$(1))'

# Rerun one chapter with papermill, e.g. make chapter NB=03_wgcn PROFILE=paper DEVICE=cuda DATA_ROOT=~/data
# (every variable reaches python -m ggcn as one argument; it expands a leading ~ itself).
chapter: venv
	@test -n $(call quote,$(NB)) || { echo "usage: make chapter NB=03_wgcn PROFILE=smoke|teach|paper [DEVICE=cuda] [DATA_ROOT=...]"; exit 2; }
	$(PY) -m ggcn chapter $(call quote,$(NB)) --profile $(call quote,$(PROFILE)) --device $(call quote,$(DEVICE)) --seed $(call quote,$(SEED)) $(if $(DATA_ROOT),--data-root $(call quote,$(DATA_ROOT)))

clean:
	rm -rf _build runs .cache _vendor .pytest_cache
