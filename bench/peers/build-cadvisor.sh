#!/usr/bin/env bash
# Builds the benchmark's cAdvisor (bench/peers/cadvisor, pinned in its go.mod)
# with the machine's Go into target/peers/bin/cadvisor. Skips the build when
# the binary is newer than its sources. Usage: bench/peers/build-cadvisor.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${FGM_PEERS_BIN:-$root/target/peers/bin}"
src="$here/cadvisor"
command -v go >/dev/null || { echo "go not found: install Go (the machine's toolchain) first" >&2; exit 1; }
mkdir -p "$out"
if [[ -x "$out/cadvisor" && "$out/cadvisor" -nt "$src/main.go" && "$out/cadvisor" -nt "$src/go.mod" && "$out/cadvisor" -nt "$src/go.sum" ]]; then
  echo "cadvisor up to date: $out/cadvisor"
  exit 0
fi
cd "$src"
CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$out/cadvisor.tmp" .
mv "$out/cadvisor.tmp" "$out/cadvisor"
echo "built $out/cadvisor ($("$out/cadvisor" -version))"
