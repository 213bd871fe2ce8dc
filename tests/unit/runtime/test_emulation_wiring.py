"""The edge service seeds each in-process link emulator per direction (``link_seed``): its
uplink to the master and each worker link draw their own jitter and loss. Regression test:
every emulator used to be seeded 0, so the master's download and the edge's upload of an
iteration were lost together. Real endpoints (zmq sockets), no messages needed."""

from __future__ import annotations

import pytest

from common.perf.system import Link
from common.runtime.emulation import LinkEmulator, link_seed
from common.runtime.messages import NO_ITERATION, EdgeSetup
from services.edge.service import start_edge

pytestmark = pytest.mark.timeout(30)

LOSSY = {"latency_s": 0.01, "jitter_s": 0.005, "loss": 0.3, "retransmit_s": 1.0}


def releases(em: LinkEmulator, n: int = 200) -> list[float]:
    return [em.schedule(0, now=10.0 * k) for k in range(n)]


def test_edge_seeds_its_uplink_and_worker_links_per_direction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HGC_INPROCESS_LINK", "1")
    runner, _ = start_edge(3, "tcp://127.0.0.1:9")  # connects lazily: nobody needs to listen
    try:
        spec = {"edge-3": {"link": LOSSY}, "worker-3-0": {"link": LOSSY}}
        runner._set_links(EdgeSetup(NO_ITERATION, 3, {}, {}, {}, spec))
        assert runner.up is not None and runner.down is not None
        up = runner.up._links["master"]
        down = runner.down._links["worker-3-0"]
        link = Link(**LOSSY)
        assert releases(up) == releases(LinkEmulator(link, link_seed("edge-3", "master")))
        assert releases(down) == releases(LinkEmulator(link, link_seed("edge-3", "worker-3-0")))
        # negative control: the old shared seed draws differently
        fresh = LinkEmulator(link, link_seed("edge-3", "master"))
        assert releases(fresh) != releases(LinkEmulator(link, 0))
    finally:
        runner.close()
