# One image for every role: HGC_ROLE=master|edge|worker picks `python -m services.<role>`.
#
#   make wheels image                       # here: BASE_IMAGE=hgc-base:bookworm (no registry)
#   docker build -t hgc-edge .              # elsewhere: the official slim Python image
#
# Dependencies come only from ./wheelhouse (built on the host by `make wheels`): no network is
# needed during the build, which is also what an offline Raspberry Pi cluster needs. See
# docs/containers.md (multi-arch with buildx) and docs/raspberry-pi.md.
ARG BASE_IMAGE=python:3.11-slim-bookworm

# Third-party dependencies alone, in a stage of their own: it changes only when they do, so
# rebuilding after a code change reuses it. That matters most for an emulated arm64 build,
# which spends nearly all its time here (scripts/stack.sh tags this stage hgc-deps:<arch> so
# that clean-up of untagged images never drops the cache).
FROM ${BASE_IMAGE} AS deps
COPY wheelhouse/requirements.txt wheelhouse/*.whl /tmp/wheelhouse/
# `python3 -m venv` works in both bases (/usr/bin/python3 in Debian's, /usr/local/bin/python3
# in the official image); everything after uses the venv's own interpreter.
RUN python3 -m venv /opt/hgc \
 && /opt/hgc/bin/python -m pip install --no-index --no-cache-dir --find-links /tmp/wheelhouse \
        -r /tmp/wheelhouse/requirements.txt \
 && /opt/hgc/bin/python -c "import numpy, zmq, msgpack, prometheus_client, yaml"
# The label lets clean-up find this project's untagged stage images (docker image prune). It
# comes last here: an image pruned while a long emulated step still runs breaks the build.
LABEL org.hgc-edge.image=deps

# The project itself: one pure-Python wheel on top (seconds, even emulated).
FROM deps AS build
LABEL org.hgc-edge.image=build
COPY wheelhouse/project/ /tmp/project/
RUN /opt/hgc/bin/python -m pip install --no-index --no-deps --no-cache-dir /tmp/project/*.whl \
 && /opt/hgc/bin/python -c "import numpy, zmq, msgpack, prometheus_client, yaml, common, services"

FROM ${BASE_IMAGE}
LABEL org.hgc-edge.image=node
# tc (iproute2) applies each node's link profile at start-up. hgc-base already has it; the
# official slim image does not, and Debian's mirror is reachable where that image is used.
RUN if ! [ -x /usr/sbin/tc ] && ! [ -x /sbin/tc ]; then \
        apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            iproute2 && rm -rf /var/lib/apt/lists/*; \
    fi \
 && useradd --system --uid 10001 --user-group --create-home --home-dir /home/hgc hgc
COPY --from=build /opt/hgc /opt/hgc
ENV PATH=/opt/hgc/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 \
    HGC_ROLE=worker \
    HGC_METRICS_PORT=9100
WORKDIR /home/hgc
# The entry point starts as root only to run tc (needs cap_add NET_ADMIN), then switches to
# the user hgc (uid 10001) for good before exec'ing the service. `--user hgc` skips shaping
# and leaves the whole link profile to the in-process emulation.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-m", "services.common.health"]
ENTRYPOINT ["python", "-m", "services.common.entrypoint"]
