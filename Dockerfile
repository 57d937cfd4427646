# syntax=docker/dockerfile:1
#
# The fine-grained-monitor image: one image for the operator, the node agent
# and the viewer. Build from the repository root:
#
#   docker build -t ghcr.io/fine-grained-monitor/fine-grained-monitor:$(cargo pkgid | cut -d'#' -f2) .
#
# The tag follows the crate version (Cargo.toml), which the Helm chart's
# appVersion and the operator's default agent image also use.

# Build stage: Debian 12 (bookworm), the same glibc as the runtime image.
ARG RUST_VERSION=1.95
FROM docker.io/library/rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
# The whole crate: sources, declared bench/test targets and embedded assets
# (.dockerignore keeps build output, charts, docs and Go tools out; a test
# checks nothing the build needs is ignored). --locked: exactly Cargo.lock.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bins \
    && mkdir -p /out \
    && cp target/release/fine-grained-monitor target/release/fgm-viewer target/release/kubectl-fgm /out/
# cap_sys_ptrace, permitted only: the agent raises it when --processes is on (other users'
# smaps_rollup) and drops it otherwise (docs/security.md). COPY keeps the xattr.
RUN apt-get update && apt-get install -y --no-install-recommends libcap2-bin \
    && setcap cap_sys_ptrace+p /out/fine-grained-monitor

# Runtime stage: glibc and libgcc only, no shell, no package manager;
# user 65532 (nonroot) by default. The operator's DaemonSet sets what the
# agent needs to read the host's cgroups and /proc.
FROM gcr.io/distroless/cc-debian12:nonroot
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="fine-grained-monitor" \
      org.opencontainers.image.description="Per-second container metrics for Kubernetes nodes: operator, node agent and viewer" \
      org.opencontainers.image.source="https://github.com/fine-grained-monitor/fine-grained-monitor" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/fine-grained-monitor /usr/local/bin/fine-grained-monitor
COPY --from=build /out/fgm-viewer /usr/local/bin/fgm-viewer
# The kubectl plugin (docs/kubectl-fgm.md): every binary of the crate is in the image.
COPY --from=build /out/kubectl-fgm /usr/local/bin/kubectl-fgm
USER 65532:65532
# Viewer (8050), agent metrics (9810), operator metrics and probes (8080).
EXPOSE 8050 9810 8080
ENTRYPOINT ["/usr/local/bin/fine-grained-monitor"]
CMD ["--help"]
