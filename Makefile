# The two commands of the README: `make demo` and `make test`.
VENV := .venv/bin

.PHONY: setup demo test test-fast lint bench docs

setup:
	@scripts/bootstrap.sh

demo: setup
	$(VENV)/htmp-infer scan data/minilm_spectra.npz --out out/minilm

lint: setup
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .
	$(VENV)/mypy

# The CI command: lint, the documentation site, the whole test suite.
test: lint docs
	$(VENV)/python -m pytest -q -n 2 --dist loadfile

# The same checks without the statistical suites (tests marked slow): < 3 minutes.
test-fast: lint
	$(VENV)/python -m pytest -q -n 2 --dist loadfile -m "not slow"

bench: setup
	$(VENV)/pip install -q -e ".[dev,bench]"
	OPENBLAS_NUM_THREADS=1 $(VENV)/python benchmarks/scan.py
	$(VENV)/python benchmarks/fit_vs_svd.py

# The documentation site, offline, into site/ (a broken link or reference fails it).
docs: setup
	NO_MKDOCS_2_WARNING=1 $(VENV)/mkdocs build --strict --quiet --site-dir site
