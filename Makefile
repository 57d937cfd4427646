# Recipes CI also uses (.ci/run calls `make test`).
CARGO ?= cargo

.PHONY: test check fmt clippy unit generate run sync-crds chart-lint bench-unit

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

## Regenerate checked-in files from the Rust types (tests check they are current).
generate:
	$(CARGO) run -q -- crd > crds/nodemonitors.fgm.dev.yaml
	FGM_UPDATE_GOLDEN=1 $(CARGO) test -q --lib operator_rbac_file_is_current
	$(MAKE) sync-crds

## Run the product on this machine: agent + viewer, no cluster.
run:
	$(CARGO) run --release -- local

## Go-built tools (tools/envtest/build.sh).
ENVTEST_BIN ?= $(if $(FGM_ENVTEST_BIN),$(FGM_ENVTEST_BIN),target/envtest/bin)
HELM ?= $(ENVTEST_BIN)/helm
CHART := charts/fine-grained-monitor-operator

## Copy the generated CRD into the chart and the kustomize base (tests check they match).
sync-crds:
	cp crds/nodemonitors.fgm.dev.yaml $(CHART)/crds/nodemonitors.fgm.dev.yaml
	cp crds/nodemonitors.fgm.dev.yaml config/crd/nodemonitors.fgm.dev.yaml

## Lint the chart strictly with its defaults and every example values file.
chart-lint:
	@test -x $(HELM) || { echo "missing $(HELM): run tools/envtest/build.sh" >&2; exit 1; }
	$(HELM) lint --strict $(CHART)
	for f in $(CHART)/ci/*.yaml; do $(HELM) lint --strict $(CHART) --values $$f || exit 1; done
