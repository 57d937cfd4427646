# Recipes CI also uses (.ci/run calls `make test`).
CARGO ?= cargo

.PHONY: test setup images check fmt clippy unit generate run sync-crds chart-lint chart-readme bench-unit cluster cluster-down

## The full test suite on a fresh machine: installs and builds what it needs (tools/setup.sh:
## Debian packages, npm packages, Go-built control plane and node, images), then formatting,
## lints and every test.
test: setup check bench-unit
	$(CARGO) test

## What the tests need that a fresh machine lacks; quick when all is there.
setup:
	tools/setup.sh

## The product image (from the release binaries) and the test images, as OCI archives in target/images.
images:
	tools/image/build.sh

## The test world's cluster (control plane + real nodes + images), left running; prints
## KUBECONFIG=<path> last. `make cluster NODES=2` starts two real nodes (fgm-node, fgm-node-2).
## `make cluster-down` stops it and removes what it made.
NODES ?= 1
cluster: setup
	$(CARGO) build -q --example fgm-cluster
	FGM_NODES=$(NODES) target/debug/examples/fgm-cluster up

cluster-down:
	$(CARGO) build -q --example fgm-cluster
	target/debug/examples/fgm-cluster down

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

## Regenerate charts/fine-grained-monitor-operator/README.md from values.yaml (every value, its
## default and its comment); tests/packaging checks it is current.
chart-readme:
	python3 tools/chart-readme.py
