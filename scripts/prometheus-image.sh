#!/usr/bin/env bash
# Build a local Prometheus image where no registry is reachable (the build machines): Debian's
# prometheus binary from the host package (scripts/provision.sh installs it) on the local
# base image. Users with a registry get the official prom/prometheus image instead.
#   scripts/prometheus-image.sh [TAG]        default TAG: hgc-prometheus:local
# `make up` builds it by itself, once, where no registry is reachable (scripts/stack.sh).
set -Eeuo pipefail
TAG=${1:-hgc-prometheus:local}
BASE=${HGC_BASE_IMAGE:-hgc-base:bookworm}
binary=$(command -v prometheus) || { echo "prometheus-image.sh: no prometheus binary on the host (run scripts/provision.sh)" >&2; exit 1; }

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp "$binary" "$ctx/prometheus"
cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $BASE
COPY prometheus /bin/prometheus
RUN mkdir -p /prometheus /etc/prometheus && chown nobody:nogroup /prometheus
USER nobody
EXPOSE 9090
# Same entry point as the official image, so the stack's command works with either.
ENTRYPOINT ["/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
DOCKERFILE
# Quiet unless it fails (the classic builder's deprecation notice is noise here).
log=$(docker build --quiet -t "$TAG" "$ctx" 2>&1) || { echo "$log" >&2; exit 1; }
echo "built $TAG from $binary on $BASE"
