# Recipes CI also uses (.ci/run calls `make test`).
CARGO ?= cargo

.PHONY: test check fmt clippy unit generate run bench-unit

## The full test suite: formatting, lints, then every test.
test: check bench-unit
	$(CARGO) test

## Pure parts of the peers benchmark (bench/peers/run.py); stdlib only.
bench-unit:
	python3 -m unittest discover -s bench/peers

check: fmt clippy

fmt:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --all-targets -- -D warnings

unit:
	$(CARGO) test --lib

## Run the product on this machine: agent + viewer, no cluster.
run:
	$(CARGO) run --release -- local
