# Recipes CI also uses (.ci/run calls `make test`).
CARGO ?= cargo

.PHONY: test check fmt clippy unit generate run

## The full test suite: formatting, lints, then every test.
test: check
	$(CARGO) test

check: fmt clippy

fmt:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --all-targets -- -D warnings

unit:
	$(CARGO) test --lib

## Regenerate checked-in files from the Rust types (tests check they are current).
generate:
	$(CARGO) run -q -- crd > crds/nodemonitors.fgm.dev.yaml
	FGM_UPDATE_GOLDEN=1 $(CARGO) test -q --lib operator_rbac_file_is_current

## Run the product on this machine: agent + viewer, no cluster.
run:
	$(CARGO) run --release -- local
