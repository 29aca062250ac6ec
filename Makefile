# Two commands do all the set-up on a fresh machine:
#   make demo   the sandbox + SQLite + a real `airflow dags test`
#   make test   lint, types, the docs and the whole test suite (latest Airflow, 2.11 and 3.0)
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python

.PHONY: install demo test lint docs check-wheel unit bench bench-cluster chaos soak clean

# pip's own chatter (some package indexes print a warning per package) goes to a log that
# is shown only when the install fails, so what the demo prints is the demo's own summary.
INSTALL_LOG = .ci/logs/install.log
QUIETLY = > $(INSTALL_LOG) 2>&1 || { cat $(INSTALL_LOG); exit 1; }

$(VENV)/.installed: pyproject.toml
	bash scripts/system-deps.sh
	@mkdir -p .ci/logs
	@echo "installing into $(VENV) (log: $(INSTALL_LOG))..."
	@$(PYTHON) -m venv $(VENV) $(QUIETLY)
	@$(PY) -m pip install -q --upgrade pip $(QUIETLY)
	@$(PY) -m pip install -q -e ".[test,cluster,docs]" $(QUIETLY)
	touch $@

install: $(VENV)/.installed

# An older-Airflow lane (make .venv-2.11/.installed): its own venv, from its lock file.
.venv-%/.installed: .ci/airflow/constraints-%.txt pyproject.toml
	bash scripts/system-deps.sh
	rm -rf .venv-$*
	@mkdir -p .ci/logs
	@$(PYTHON) -m venv .venv-$* > .ci/logs/install-$*.log 2>&1
	@.venv-$*/bin/python -m pip install -q --upgrade pip >> .ci/logs/install-$*.log 2>&1 \
		|| { cat .ci/logs/install-$*.log; exit 1; }
	@.venv-$*/bin/python -m pip install -q -c .ci/airflow/constraints-$*.txt \
		-r .ci/airflow/pins-$*.txt -e ".[test]" >> .ci/logs/install-$*.log 2>&1 \
		|| { cat .ci/logs/install-$*.log; exit 1; }
	touch $@

demo: install
	$(PY) scripts/demo.py

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

# The docs site (docs/, Sphinx + MyST), warnings as errors: HTML in docs/_build/html.
docs: install
	$(PY) -m sphinx -W --keep-going -q -b html docs docs/_build/html
	@echo "docs: docs/_build/html/index.html"

# The package as users get it (make test runs it too): scripts/check-wheel.sh.
check-wheel: install
	bash scripts/check-wheel.sh

# The whole suite on the latest Airflow, and on 2.11 and 3.0 in parallel (docs/compatibility.md).
test: lint docs
	bash scripts/test-all.sh

unit: install
	$(PY) -m pytest -m "not integration"

$(VENV)/.bench-installed: $(VENV)/.installed
	@mkdir -p .ci/logs
	@$(PY) -m pip install -q -e ".[test,bench]" $(QUIETLY)
	touch $@

# Benchmarks: figures and ratios into benchmarks/RESULTS.md (BENCH_ARGS=--large for 1M rows).
bench: $(VENV)/.bench-installed
	$(PY) benchmarks/run_all.py $(BENCH_ARGS)

# A 1,000,000-message campaign on the cluster harness, unpaced and paced: its figures into
# benchmarks/RESULTS.md (section 8). Not in CI (about 6 minutes on 2 cores).
bench-cluster: $(VENV)/.bench-installed
	$(PY) benchmarks/run_all.py --only 8

# The fault matrix on the cluster harness, both on_uncertain modes (CI runs one of each):
# its table into benchmarks/RESULTS.md (section 9).
chaos: $(VENV)/.bench-installed
	$(PY) benchmarks/run_all.py --only 9

# The long fault soak: 100,000 messages under 20% injected faults (CI runs 10,000).
soak: install
	CASCADE_SOAK_MESSAGES=100000 $(PY) -m pytest tests/reliability/test_fault_soak.py

clean:
	rm -rf $(VENV) .venv-* .ci/logs .demo build *.egg-info docs/_build docs/_generated
