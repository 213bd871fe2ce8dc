#!/usr/bin/env bash
# The containerised testbed behind `make image | up | down` (docs/containers.md):
#   scripts/stack.sh image   wheelhouse -> one image ($IMAGE); no untagged image left behind
#   scripts/stack.sh up      [generate $STACK from $STACK_SCENARIO] -> image -> registry or not
#                            -> docker compose up -> (WAIT=1) follow the master, then write the
#                            run folder's summary and report on the host
#   scripts/stack.sh down    remove the stack's containers and network
#
# With a registry the stack runs the official Prometheus and Grafana images. Without one
# (detected: images not present locally and a short pull attempt fails; HGC_OFFLINE=1|0
# forces it), Prometheus runs from an image built once from Debian's package
# (scripts/prometheus-image.sh, cached by its tag) and Grafana is left out, with one line
# saying so. Variables (the Makefile sets them):
#   IMAGE=hgc-edge:latest  STACK=compose/default.yaml  STACK_NAME=hgc  STACK_SCENARIO=
#   STACK_ARGS= (more `hgc compose` flags)  RUNS_DIR=runs/$STACK_NAME  BUILD=1  WAIT=1
#   HGC_OFFLINE=auto|1|0  HGC_PROMETHEUS_IMAGE  HGC_GRAFANA_IMAGE  HGC_BASE_IMAGE  PYTHON
set -Eeuo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
IMAGE=${IMAGE:-hgc-edge:latest}
STACK=${STACK:-compose/default.yaml}
STACK_NAME=${STACK_NAME:-hgc}
STACK_SCENARIO=${STACK_SCENARIO:-}
STACK_ARGS=${STACK_ARGS:-}
RUNS_DIR=${RUNS_DIR:-runs/$STACK_NAME}
BUILD=${BUILD:-1}
WAIT=${WAIT:-1}
HGC_OFFLINE=${HGC_OFFLINE:-auto}
PYTHON=${PYTHON:-.venv/bin/python}
WHEELHOUSE=${WHEELHOUSE:-wheelhouse}
PLATFORM=${PLATFORM:-linux/amd64}
PULL_TIMEOUT_S=${HGC_PULL_TIMEOUT_S:-10}
# What the generated stack names by default (hgc.compose.generate).
PROMETHEUS_OFFICIAL=$(sed -n 's/^PROMETHEUS_IMAGE = "\(.*\)"/\1/p' hgc/compose/generate.py)
PROMETHEUS_LOCAL=$(sed -n 's/^LOCAL_PROMETHEUS_IMAGE = "\([^"]*\)".*/\1/p' hgc/compose/generate.py)
GRAFANA_OFFICIAL=$(sed -n 's/^GRAFANA_IMAGE = "\(.*\)"/\1/p' hgc/compose/generate.py)

say() { echo "stack: $*" >&2; }
die() { say "error: $*"; exit 1; }
abspath() { case "$1" in /*) echo "$1" ;; *) echo "$ROOT/$1" ;; esac; }
STACK=$(abspath "$STACK")
RUNS_DIR=$(abspath "$RUNS_DIR")
compose() { docker compose -p "$STACK_NAME" -f "$STACK" "$@"; }
have_image() { docker image inspect "$1" >/dev/null 2>&1; }

# The classic builder keeps the build stage, and a re-tagged image loses its tag: remove this
# project's untagged images (the Dockerfile labels both stages org.hgc-edge.image), never
# anyone else's.
prune_untagged() {
    docker image prune -f --filter dangling=true --filter label=org.hgc-edge.image >/dev/null
}

image() {
    PYTHON="$PYTHON" bash scripts/wheels.sh "$PLATFORM" "$WHEELHOUSE" >/dev/null
    local base=${HGC_BASE_IMAGE:-python:3.11-slim-bookworm}
    local arch=${PLATFORM#*/}
    # linux/arm64 (Raspberry Pi): the arm64 base, and the per-architecture tag a multi-arch
    # manifest is made of (docs/raspberry-pi.md)
    [ "$arch" = arm64 ] && base=${HGC_BASE_IMAGE_ARM64:-python:3.11-slim-bookworm}
    local tags=(-t "$IMAGE")
    [ -n "${VERSION:-}" ] && tags+=(-t "hgc-edge:$VERSION-$arch")
    say "building $IMAGE for $PLATFORM (base $base)"
    local log build=(docker build --quiet --platform "$PLATFORM" --build-arg "BASE_IMAGE=$base")
    # The dependency stage first, tagged: a tagged image keeps its layers, so the next build
    # (any code change) reuses them however often untagged images are pruned.
    log=$("${build[@]}" --target deps -t "hgc-deps:$arch" . 2>&1) \
        || { echo "$log" >&2; die "docker build of the dependency stage (hgc-deps:$arch) failed"; }
    log=$("${build[@]}" "${tags[@]}" . 2>&1) \
        || { echo "$log" >&2; die "docker build of $IMAGE failed"; }
    prune_untagged
}

# "online" when the official monitoring images can be had, else "offline".
registry_mode() {
    case "$HGC_OFFLINE" in
        1 | yes | true) echo offline; return ;;
        0 | no | false) echo online; return ;;
        auto) ;;
        *) die "HGC_OFFLINE=$HGC_OFFLINE: must be auto, 1 or 0" ;;
    esac
    local prom=${HGC_PROMETHEUS_IMAGE:-$PROMETHEUS_OFFICIAL}
    local graf=${HGC_GRAFANA_IMAGE:-$GRAFANA_OFFICIAL}
    if have_image "$prom" && have_image "$graf"; then echo online; return; fi
    if timeout "$PULL_TIMEOUT_S" docker pull --quiet "$prom" >/dev/null 2>&1; then
        echo online
    else
        echo offline
    fi
}

local_prometheus() {
    local tag=${HGC_PROMETHEUS_IMAGE:-$PROMETHEUS_LOCAL}
    if ! have_image "$tag"; then
        command -v prometheus >/dev/null \
            || die "no registry and no local Prometheus image: install Debian's prometheus (apt-get install prometheus, or scripts/provision.sh) and rerun"
        local base=hgc-base:bookworm
        have_image "$base" || base=${HGC_BASE_IMAGE:-python:3.11-slim-bookworm}
        HGC_BASE_IMAGE=$base bash scripts/prometheus-image.sh "$tag" >&2
        prune_untagged
    fi
    echo "$tag"
}

# A previous run's files are kept, moved aside; the master appends to its record otherwise.
fresh_runs_dir() {
    if [ -d "$RUNS_DIR" ] && [ -n "$(ls -A "$RUNS_DIR" 2>/dev/null)" ]; then
        local old
        old="$RUNS_DIR.$(date -r "$RUNS_DIR" +%Y%m%d-%H%M%S)"
        mv "$RUNS_DIR" "$old"
        say "previous run moved to $old"
    fi
    mkdir -p "$RUNS_DIR"
}

up() {
    if [ -n "$STACK_SCENARIO" ]; then
        # shellcheck disable=SC2086 # STACK_ARGS: several flags
        "$PYTHON" -m hgc.cli compose "$STACK_SCENARIO" -o "$STACK" $STACK_ARGS >&2
    fi
    [ -f "$STACK" ] || die "$STACK: no such compose file (STACK_SCENARIO=... generates one)"
    local keys="${STACK%.*}.keys"
    if grep -q "$(basename "$keys")/" "$STACK" && [ ! -d "$keys" ]; then
        local run_info="${STACK%.*}.run.json" scenario=scenarios/homogeneous.yaml
        [ -f "$run_info" ] && scenario=$(dirname "$STACK")/$("$PYTHON" -c \
            'import json,sys; print(json.load(open(sys.argv[1]))["scenario"])' "$run_info")
        "$PYTHON" -m hgc.cli keys "$keys" --scenario "$scenario" >&2
    fi
    [ "$BUILD" = 0 ] || image
    have_image "$IMAGE" || die "image $IMAGE not found (BUILD=0 needs a built image)"

    local mode services
    mode=$(registry_mode)
    services=$(HGC_IMAGE=$IMAGE compose config --services)
    if [ "$mode" = offline ]; then
        HGC_PROMETHEUS_IMAGE=$(local_prometheus)
        export HGC_PROMETHEUS_IMAGE
        if grep -qx grafana <<<"$services"; then
            services=$(grep -vx grafana <<<"$services")
            say "grafana: left out: no registry reachable for $GRAFANA_OFFICIAL; to add it, docker load a saved image (HGC_GRAFANA_IMAGE=its tag) and rerun make up HGC_OFFLINE=0"
        fi
    fi
    fresh_runs_dir
    # shellcheck disable=SC2086 # one word per service
    HGC_IMAGE=$IMAGE HGC_RUNS_DIR=$RUNS_DIR compose up -d --no-build $services
    say "up ($mode): $(wc -w <<<"$services") services; Prometheus http://localhost:${HGC_PROMETHEUS_PORT:-9090}$(grep -qx grafana <<<"$services" && echo ", Grafana http://localhost:${HGC_GRAFANA_PORT:-3000}")"
    [ "$WAIT" = 1 ] || return 0
    finish
}

# Follow the master until it exits, then write the summary and the report beside its record.
finish() {
    local master status
    master=$(compose ps -a -q master)
    [ -n "$master" ] || die "no master container in stack $STACK_NAME"
    docker logs -f "$master" 2>&1 | grep -v '^HGC_READY' || true
    status=$(docker wait "$master")
    local run_info="${STACK%.*}.run.json"
    if [ -f "$run_info" ]; then
        "$PYTHON" -m hgc.compose.results "$RUNS_DIR" "$run_info" >&2 \
            || say "no summary written (see above)"
    fi
    say "master exited with status $status; run folder $RUNS_DIR; make down removes the stack"
    [ "$status" = 0 ]
}

down() {
    compose down --remove-orphans --volumes --timeout 10
    prune_untagged
}

case "${1:-}" in
    image) image ;;
    up) up ;;
    down) down ;;
    *) echo "usage: scripts/stack.sh image|up|down" >&2; exit 2 ;;
esac
