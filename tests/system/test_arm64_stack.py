"""A mixed-architecture stack: the same Dockerfile built for linux/arm64 (offline, from the
arm64 wheelhouse on the debootstrapped arm64 base; qemu-user runs it on this amd64 host) runs
one edge and one worker, the rest run the amd64 image. Same code, same wire format: training
matches local gradient descent exactly, ``docker inspect`` reports arm64 for those nodes'
images, and their emulated (Pi-class, ~10x slower) CPUs show in the metrics as straggling."""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import tempfile
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.system.docker_helpers import (  # noqa: F401 (fixtures)
    ROOT,
    TEST_IMAGE,
    Stack,
    build_image,
    docker_client,
    hgc_image,
    scenario_stack,
    sweep_leftovers,
    unavailable,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(3600)]
SCENARIO = ROOT / "scenarios" / "homogeneous.yaml"
ARM64_BASE = os.environ.get("HGC_ARM64_BASE_IMAGE", "hgc-base:bookworm-arm64")
ARM64_NODES = ("edge-1", "worker-0-1")
ITERATIONS = 20


@pytest.fixture(scope="module")
def arm64_image(docker_client: Any) -> Iterator[str]:  # noqa: F811
    """``make image PLATFORM=linux/arm64`` for this session: the repository's Dockerfile,
    ``--platform linux/arm64``, from a fresh arm64 wheelhouse, on the arm64 base. Its
    dependency stage comes from the cache (``hgc-deps:arm64``): emulated, a cold build takes
    about half an hour on this machine, a warm one under a minute."""
    from hgc.compose.generate import arch_image

    if (
        platform.machine() not in ("aarch64", "arm64")
        and not Path("/proc/sys/fs/binfmt_misc/qemu-aarch64").exists()
    ):
        unavailable("no qemu-aarch64 binfmt handler (scripts/provision.sh installs it)")
    try:
        docker_client.images.get(ARM64_BASE)
    except Exception:
        unavailable(f"no arm64 base image {ARM64_BASE} (scripts/provision.sh builds it)")
    tag = build_image("linux/arm64", ARM64_BASE, arch_image(TEST_IMAGE, "linux/arm64"), 3000)
    yield tag
    with contextlib.suppress(Exception):
        docker_client.images.remove(tag, force=True)
    with contextlib.suppress(Exception):
        docker_client.images.prune(filters={"dangling": True, "label": "org.hgc-edge.image"})


@pytest.fixture(autouse=True)
def _clean(docker_client: Any) -> Any:  # noqa: F811
    yield
    sweep_leftovers(docker_client)


def _address(container: Any) -> str:
    container.reload()
    nets = container.attrs["NetworkSettings"]["Networks"]
    return str(next(iter(nets.values()))["IPAddress"])


def _samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    from prometheus_client.parser import text_string_to_metric_families

    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name:
                out[tuple(sorted(s.labels.items()))] = float(s.value)
    return out


class MetricsPoller:
    """Keeps the last /metrics page of each node it can reach (the nodes exit with the run)."""

    def __init__(self, urls: dict[str, str]) -> None:
        self.urls = urls
        self.last: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            for node, url in self.urls.items():
                # a container this test started
                with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as resp:
                    self.last[node] = resp.read().decode()
            self._stop.wait(0.3)

    def __enter__(self) -> MetricsPoller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def test_mixed_arm64_amd64_stack_trains_exactly_and_the_arm64_nodes_straggle(
    docker_client: Any,  # noqa: F811
    hgc_image: str,  # noqa: F811
    arm64_image: str,
) -> None:
    from common.scenario import load_scenario
    from hgc.cluster import reference_trace
    from hgc.compose.generate import apply_platforms, node_platforms

    workdir = Path(tempfile.mkdtemp(prefix="hgct-arm64-stack-"))
    stack_dict, config = scenario_stack(
        SCENARIO,
        workdir,
        hgc_image,
        iterations=ITERATIONS,
        compute="off",  # no emulated delays: only the real (emulated-CPU) slowness
        master_overrides={"HGC_SAVE_PARAMS": "/out/params.npy"},
        linger_s=30.0,  # each node keeps /metrics up until scraped once more: final values
    )
    # The generator's own per-node platform (as `hgc compose --arm64 edge-1,worker-0-1`).
    platforms = node_platforms(load_scenario(SCENARIO), ARM64_NODES, list(stack_dict["services"]))
    apply_platforms(stack_dict, platforms, hgc_image)
    for node in ARM64_NODES:
        assert stack_dict["services"][node]["platform"] == "linux/arm64"
        stack_dict["services"][node]["image"] = arm64_image  # this session's arm64 build
    stack = Stack(workdir, stack_dict, config)
    try:
        stack.up()
        # The master's metrics (edge stragglers) and edge-0's (its workers, one of them arm64).
        master = stack.container(docker_client, "master")
        edge0 = stack.container(docker_client, "edge-0")
        urls = {n: f"http://{_address(c)}:9100/metrics" for n, c in
                (("master", master), ("edge-0", edge0))}  # fmt: skip
        with MetricsPoller(urls) as poller:
            code = stack.wait_master_exit(docker_client, timeout=420)
        assert code == 0, stack.logs("master")
        records = stack.records()
        remote = np.load(workdir / "out" / "params.npy")
        archs = {
            node: docker_client.images.get(
                stack.container(docker_client, node).attrs["Image"]
            ).attrs["Architecture"]
            for node in stack_dict["services"]
            if node.startswith(("master", "edge", "worker"))
        }
    finally:
        stack.down()
        shutil.rmtree(workdir, ignore_errors=True)

    # Same code, same wire format: exact training across architectures.
    assert [r["iteration"] for r in records if r["ok"]] == list(range(ITERATIONS))
    local = reference_trace(config, ITERATIONS)[-1]
    np.testing.assert_allclose(remote, local, rtol=1e-7, atol=1e-9)
    # docker inspect: the chosen nodes ran the arm64 image, the others amd64.
    assert {n for n, a in archs.items() if a == "arm64"} == set(ARM64_NODES), archs
    assert {a for n, a in archs.items() if n not in ARM64_NODES} == {"amd64"}

    # Straggling in the metrics (counts of iterations in which a node was not used).
    assert "master" in poller.last and "edge-0" in poller.last, sorted(poller.last)
    master_page, edge_page = poller.last["master"], poller.last["edge-0"]
    done = _samples(master_page, "hgc_master_iterations_total")[(("outcome", "ok"),)]
    edges = {dict(k)["edge"]: v for k, v in
             _samples(master_page, "hgc_master_edge_stragglers_total").items()}  # fmt: skip
    workers = {dict(k)["worker"]: v for k, v in
               _samples(edge_page, "hgc_edge_worker_stragglers_total").items()}  # fmt: skip
    print(f"after {done:g} iterations: edge stragglers {edges}, edge-0 worker stragglers {workers}")
    assert done == ITERATIONS  # the final page (the nodes linger until scraped)
    # s_e = s_w = 1: one edge and one worker of each edge are left out every iteration; the
    # emulated arm64 ones are the ones left out (most of the time; the amd64 ones compete).
    # (A counter label appears only once it is counted: a node never left out has none.)
    assert edges.get("1", 0) >= 0.6 * done, edges
    assert edges["1"] > max(edges.get("0", 0), edges.get("2", 0)), edges
    assert workers.get("1", 0) >= 0.6 * done, workers
    assert workers["1"] > max(workers.get("0", 0), workers.get("2", 0)), workers
