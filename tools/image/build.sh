#!/usr/bin/env bash
# Builds the images the real node runs, as OCI archives, without a container engine or registry
# (issue #16), into target/images (or $FGM_IMAGES_DIR):
#
#   fine-grained-monitor.tar  ghcr.io/fine-grained-monitor/fine-grained-monitor:<crate version>
#                             the product image: the release binaries and the shared libraries
#                             they load, laid out like the Dockerfile's runtime stage (same
#                             entrypoint, user 65532, labels, ports; tests/packaging checks
#                             they agree). No shell.
#   fgm-pause.tar             localhost/fgm-pause:test, the pod sandbox (tools/image/testimages/pause)
#   fgm-stress.tar            localhost/fgm-stress:test, the workload (--cpu CORES --memory SIZE)
#
# Load them into a cluster's containerd with `ctr -n k8s.io images import <archive>` (kind:
# `kind load image-archive <archive>`), or push to a registry with `skopeo copy
# oci-archive:<archive> docker://<registry>/<name>:<tag>`. `docker build .` remains the way to
# build the product image where a container engine runs.
#
# Usage: tools/image/build.sh [all|product|test] [--no-cargo-build]
#   FGM_IMAGE_BINARIES=DIR  take the two binaries from DIR instead of building the release
#                           (e.g. target/debug, to iterate on the real-node test quickly)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=${FGM_IMAGES_DIR:-$ROOT/target/images}
what=${1:-all}
cargo_build=1
[[ ${2:-} == --no-cargo-build || ${1:-} == --no-cargo-build ]] && cargo_build=0
[[ $what == --no-cargo-build ]] && what=all
mkdir -p "$OUT/bin"
start=$(date +%s)

version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)

if [[ $what == all || $what == test ]]; then
  command -v go >/dev/null || { echo "image: the go command builds the test images" >&2; exit 1; }
  # Static binaries: the images hold nothing else.
  (cd "$HERE/testimages" && GOTOOLCHAIN=local CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" \
    -o "$OUT/bin/" ./pause ./stress)
  python3 "$HERE/assemble.py" --name localhost/fgm-pause:test --out "$OUT/fgm-pause.tar" \
    --file "$OUT/bin/pause:/pause" --entrypoint /pause --user 65535:65535
  python3 "$HERE/assemble.py" --name localhost/fgm-stress:test --out "$OUT/fgm-stress.tar" \
    --file "$OUT/bin/stress:/usr/local/bin/fgm-stress" \
    --entrypoint /usr/local/bin/fgm-stress --user 65532:65532
fi

if [[ $what == all || $what == product ]]; then
  release=${FGM_IMAGE_BINARIES:-${CARGO_TARGET_DIR:-$ROOT/target}/release}
  if [[ $cargo_build == 1 && -z ${FGM_IMAGE_BINARIES:-} ]]; then
    (cd "$ROOT" && cargo build --release --locked --bins)
  fi
  for bin in fine-grained-monitor fgm-viewer kubectl-fgm; do
    [[ -x $release/$bin ]] || { echo "image: $release/$bin missing: cargo build --release --bins" >&2; exit 1; }
  done
  # What the Dockerfile's runtime stage (distroless cc-debian12:nonroot) provides that the
  # binaries use: glibc and libgcc (found by ldd), the nonroot user's passwd and group entries,
  # a writable-by-all /tmp. Labels, user, ports, entrypoint and command as in the Dockerfile.
  python3 "$HERE/assemble.py" \
    --name "ghcr.io/fine-grained-monitor/fine-grained-monitor:$version" \
    --out "$OUT/fine-grained-monitor.tar" \
    --file "$release/fine-grained-monitor:/usr/local/bin/fine-grained-monitor" \
    --file "$release/fgm-viewer:/usr/local/bin/fgm-viewer" \
    --file "$release/kubectl-fgm:/usr/local/bin/kubectl-fgm" \
    --file-cap /usr/local/bin/fine-grained-monitor=sys_ptrace \
    --with-libs \
    --text "/etc/passwd=root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n" \
    --text "/etc/group=root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n" \
    --dir /tmp:1777 --dir /home/nonroot:755 \
    --entrypoint '["/usr/local/bin/fine-grained-monitor"]' --cmd '["--help"]' \
    --user 65532:65532 \
    --label org.opencontainers.image.title=fine-grained-monitor \
    --label "org.opencontainers.image.description=Per-second container metrics for Kubernetes nodes: operator, node agent and viewer" \
    --label org.opencontainers.image.source=https://github.com/fine-grained-monitor/fine-grained-monitor \
    --label org.opencontainers.image.licenses=Apache-2.0 \
    --label "org.opencontainers.image.version=$version" \
    --expose 8050/tcp --expose 9810/tcp --expose 8080/tcp
fi
echo "image: archives in $OUT ($(($(date +%s) - start))s)" >&2
