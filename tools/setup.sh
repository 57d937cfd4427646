#!/usr/bin/env bash
# Installs and builds everything `make test` needs on a fresh machine (Debian 12 with Rust, Go,
# Python and Node.js, as root or with sudo), and does nothing that is already done:
#
#   Debian packages  openssl, util-linux (setpriv, nsenter, flock), iproute2, iptables, conntrack,
#                    libseccomp-dev + pkg-config (runc), chromium, libfaketime, nodejs/npm when missing
#   npm              playwright-core for the viewer's browser test (tests/browser)
#   Go-built tools   control plane and real node, SeaweedFS (tools/envtest/build.sh)
#   PyPI             DuckDB + httpfs and pyspark for the query examples, in target/py
#   Maven Central    the S3A jars of the Spark example, in target/spark-jars
#   images           product, pause and workload OCI archives (tools/image/build.sh)
#
# Prints how long each step took. Usage: tools/setup.sh [--no-images]
set -euo pipefail
cd "$(dirname "$0")/.."

step_start=$(date +%s)
step() {
  local now
  now=$(date +%s)
  echo "setup: $1 ($((now - step_start))s)" >&2
  step_start=$now
}

# The build, the images and the test world's node take several GiB: a run that fails on a
# nearly full disk says so here first (a warning, not a stop: the disk may be freed meanwhile).
free_gib=$(df -Pk . | awk 'NR == 2 { print int($4 / 1048576) }')
echo "setup: ${free_gib} GiB free on the disk of $(pwd)" >&2
if [ "${free_gib:-0}" -lt 5 ]; then
  echo "setup: warning: less than 5 GiB free: the build, the images or the test world may run out of space" >&2
fi

apt_install() {
  # Installs the Debian packages that are missing; does nothing when all are present.
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing ${missing[*]}" >&2
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
}

# python3 (peers benchmark unit tests, image assembly), openssl (test certificates),
# util-linux (setpriv ties test children to the test; nsenter, flock for the real node),
# iproute2 + iptables + conntrack (the node's network namespace, kube-proxy), libseccomp-dev and
# pkg-config (runc with seccomp), chromium (the viewer's browser test), libfaketime (the agent's
# clock-step fault tests step the wall clock one process sees; the machine's clock is never touched).
packages=(openssl util-linux iproute2 iptables conntrack libseccomp-dev pkg-config chromium libfaketime)
command -v python3 >/dev/null || packages+=(python3)
# Node.js from another source brings its own npm; Debian's npm would conflict with it.
command -v node >/dev/null || packages+=(nodejs)
command -v npm >/dev/null || packages+=(npm)
apt_install "${packages[@]}"
step "Debian packages"

if [ ! -d tests/browser/node_modules/playwright-core ]; then
  npm ci --prefix tests/browser --no-audit --no-fund
fi
step "npm packages"

tools/envtest/build.sh
step "Go-built tools"

# DuckDB and its S3 extension from PyPI for the query examples' tests (issue #19), and the MCP
# client library for the viewer's MCP test (examples/mcp), in a venv
# of their own (target/py); reinstalled only when one of the requirements files changes.
py_stamp=target/py/.requirements
if ! cat examples/queries/requirements.txt examples/queries/spark/requirements.txt examples/mcp/requirements.txt | cmp -s - "$py_stamp" 2>/dev/null; then
  python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv
  python3 -m venv target/py
  target/py/bin/pip install -q --disable-pip-version-check -r examples/queries/requirements.txt \
    -r examples/queries/spark/requirements.txt -r examples/mcp/requirements.txt
  cat examples/queries/requirements.txt examples/queries/spark/requirements.txt examples/mcp/requirements.txt >"$py_stamp"
fi
step "Python packages (DuckDB, pyspark, mcp)"

# The S3A jars of the Spark example, matching pyspark's Hadoop (examples/queries/spark).
spark_jars=(org.apache.hadoop:hadoop-aws:3.5.0 software.amazon.awssdk:bundle:2.35.4
  software.amazon.s3.analyticsaccelerator:analyticsaccelerator-s3:1.3.1)
for artifact in "${spark_jars[@]}"; do
  IFS=: read -r _ name version <<<"$artifact"
  if [ ! -f "target/spark-jars/$name-$version.jar" ]; then
    command -v mvn >/dev/null || apt_install maven
    mvn -q dependency:copy -Dartifact="$artifact" -DoutputDirectory=target/spark-jars
  fi
done
command -v java >/dev/null || apt_install openjdk-17-jre-headless
step "Spark S3A jars"

if [[ ${1:-} != --no-images ]]; then
  tools/image/build.sh
  step "images"
fi
