#!/usr/bin/env bash
# Builds the upstream binaries the integration tests run as a real control plane (issue #3) and a
# real node (issue #16): kube-apiserver, kube-controller-manager, kube-scheduler, kubectl,
# kubelet, kube-proxy, etcd, kwok, helm, promtool, containerd (with its runc shim and ctr), runc
# and the CNI plugins bridge, host-local, loopback and portmap, from their Go modules (Go module
# proxy only), into target/envtest/bin (or $FGM_ENVTEST_BIN; CNI plugins in its cni/ folder).
#
# Each Go module lives in its own folder under tools/envtest/ so their dependency graphs never
# have to agree. A module is rebuilt only when its stamp (pinned version + hash of go.mod, go.sum,
# the folder's Go files, ldflags and tags) differs, so a warm run is a few hash checks. Prints
# how long each build and the whole run took, and the disk the binaries use.
#
# runc links libseccomp through cgo (Debian: libseccomp-dev, pkg-config), as release runc does.
#
# Usage: tools/envtest/build.sh [all|kubernetes,etcd,kwok,helm,promtool,containerd,runc,cni]
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN=${FGM_ENVTEST_BIN:-$ROOT/target/envtest/bin}
# Pinned versions; each folder's go.mod requires the same one.
K8S_VERSION=v1.37.2
ETCD_VERSION=v3.6.16
KWOK_VERSION=v0.8.0
HELM_VERSION=v4.3.1
PROMETHEUS_VERSION=v0.316.0
# Prometheus 3.x releases are tagged v0.3XX.Y as Go modules: v0.316.0 is 3.16.0.
PROMETHEUS_RELEASE=3.16.0
# containerd 2.x: kubelet 1.36+ no longer supports containerd 1.x.
CONTAINERD_VERSION=v2.4.2
RUNC_VERSION=v1.5.3
CNI_PLUGINS_VERSION=v1.10.0
# Two build jobs: the machine has 2 cores shared with cargo.
JOBS=${FGM_ENVTEST_JOBS:-2}
# Every module builds with the machine's Go (1.26); never fetch another toolchain unasked.
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}
export GOFLAGS="-mod=mod -buildvcs=false"

command -v go >/dev/null || {
  echo "envtest: the go command is needed (Go 1.26; the Debian machine has it in /usr/local/go/bin)" >&2
  exit 1
}
mkdir -p "$BIN"
start=$(date +%s%N)
built=()
reused=()

# build NAME DIR "PKGS..." VERSION [extra ldflags] [output dir]
# Builds every package in PKGS (relative to the module in tools/envtest/DIR) into $BIN (or the
# output dir).
build() {
  local name=$1 dir=$2 pkgs=$3 version=$4 ldflags=${5:-} out=${6:-$BIN}
  local moddir="$HERE/$dir" stamp="$BIN/.$name.stamp" want
  mkdir -p "$out"
  want="$version $({ cat "$moddir"/go.mod "$moddir"/go.sum "$moddir"/*.go 2>/dev/null
    echo "$ldflags ${BUILD_TAGS:-}"; } | sha256sum | cut -c1-16)"
  local all_there=1 p
  for p in $pkgs; do [[ -x "$out/$(basename "$p")" ]] || all_there=0; done
  if [[ $all_there == 1 && -f $stamp && "$(cat "$stamp")" == "$want" ]]; then
    reused+=("$name")
    return
  fi
  echo "envtest: building $name $version ($pkgs)" >&2
  # No stamp while building: an interrupted build is redone next time.
  rm -f "$stamp"
  local t0
  t0=$(date +%s)
  # shellcheck disable=SC2086 # pkgs is a word list on purpose
  (cd "$moddir" && go build -p "$JOBS" -trimpath ${BUILD_TAGS:+-tags "$BUILD_TAGS"} \
    -ldflags "-s -w $ldflags" -o "$out/" $pkgs)
  echo "$want" >"$stamp"
  echo "envtest: built $name in $(($(date +%s) - t0))s" >&2
  built+=("$name")
}

kube_ldflags() {
  local major=${K8S_VERSION#v}
  local minor=${major#*.}
  major=${major%%.*}
  minor=${minor%%.*}
  local flags="" pkg
  for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    flags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$flags"
}

only=${1:-all}
want() { [[ $only == all || ",$only," == *",$1,"* ]]; }

want kubernetes && build kubernetes kubernetes \
  "k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy" \
  "$K8S_VERSION" "$(kube_ldflags)"
want etcd && build etcd etcd "fine-grained-monitor/tools/envtest/etcd" "$ETCD_VERSION"
want kwok && build kwok kwok "sigs.k8s.io/kwok/cmd/kwok" "$KWOK_VERSION"
# The kwok binary has no built-in stages (kwokctl normally writes them): gather the "fast"
# node/pod lifecycle and the lease heartbeat from the same module version into one config file.
if want kwok; then
  kwok_dir=$(cd "$HERE/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
  for f in "$kwok_dir"/kustomize/stage/node/fast/node-initialize.yaml \
    "$kwok_dir"/kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
    "$kwok_dir"/kustomize/stage/pod/fast/pod-*.yaml; do
    echo "---"
    cat "$f"
  done >"$BIN/kwok-stages.yaml.tmp"
  mv "$BIN/kwok-stages.yaml.tmp" "$BIN/kwok-stages.yaml"
fi
want helm && build helm helm "helm.sh/helm/v4/cmd/helm" "$HELM_VERSION" \
  "-X helm.sh/helm/v4/internal/version.version=$HELM_VERSION -X helm.sh/helm/v4/internal/version.gitTreeState=clean"
# promtool without the service-discovery plugins keeps it small (issue #8 uses it).
want promtool && BUILD_TAGS=remove_all_sd build promtool promtool \
  "github.com/prometheus/prometheus/cmd/promtool" "$PROMETHEUS_VERSION" \
  "-X github.com/prometheus/common/version.Version=$PROMETHEUS_RELEASE"
# The real node's runtime: containerd without the snapshotters that need C headers or devices.
want containerd && BUILD_TAGS="no_btrfs no_devmapper no_zfs" build containerd containerd \
  "github.com/containerd/containerd/v2/cmd/containerd github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 github.com/containerd/containerd/v2/cmd/ctr" \
  "$CONTAINERD_VERSION" "-X github.com/containerd/containerd/v2/version.Version=$CONTAINERD_VERSION"
if want runc; then
  pkg-config --exists libseccomp 2>/dev/null || {
    echo "envtest: runc needs libseccomp's headers: apt-get install libseccomp-dev pkg-config" >&2
    exit 1
  }
  CGO_ENABLED=1 BUILD_TAGS=seccomp build runc runc "github.com/opencontainers/runc" "$RUNC_VERSION" \
    "-X main.version=${RUNC_VERSION#v}"
fi
want cni && build cni cni \
  "github.com/containernetworking/plugins/plugins/main/bridge github.com/containernetworking/plugins/plugins/ipam/host-local github.com/containernetworking/plugins/plugins/main/loopback github.com/containernetworking/plugins/plugins/meta/portmap" \
  "$CNI_PLUGINS_VERSION" "-X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=$CNI_PLUGINS_VERSION" "$BIN/cni"

ms=$((($(date +%s%N) - start) / 1000000))
echo "envtest: binaries in $BIN; built: ${built[*]:-none}; reused: ${reused[*]:-none};" \
  "took $((ms / 1000)).$(printf %03d $((ms % 1000)))s ($([[ ${#built[@]} -gt 0 ]] && echo "cold: ${#built[@]} module(s) built" || echo "warm: all reused"))"
du -sh "$BIN" | sed 's/^/envtest: disk used by binaries: /'
