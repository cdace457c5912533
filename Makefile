# The two commands of the README: `make demo` and `make test`.
VENV := .venv/bin

.PHONY: setup demo test lint bench

setup:
	@scripts/bootstrap.sh

demo: setup
	$(VENV)/htmp-infer fit data/default_spectrum.npz --out out/default_fit.nc --plot out/default_fit.png

lint: setup
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .
	$(VENV)/mypy

test: lint
	$(VENV)/python -m pytest -q

bench: setup
	$(VENV)/python benchmarks/fit_vs_svd.py
