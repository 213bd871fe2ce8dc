"""A compose stack's master killed with ``docker kill`` mid-run and started again resumes
from its checkpoint on the host: the edges re-register with the new run epoch, the iterations
after the checkpoint are recomputed once, and the final parameters equal plain gradient
descent. (Docker ignores restart policies after ``docker kill``/``docker stop``, so the
restart is the operator's ``docker start``; see docs/operations.md, Recovery.)"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.conftest import poll_for
from tests.system.docker_helpers import (  # noqa: F401 (fixtures)
    ROOT,
    docker_client,
    hgc_image,
    running_stack,
    sweep_leftovers,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(420)]
SCENARIO = ROOT / "scenarios" / "homogeneous.yaml"
ITERATIONS = 60
EVERY = 5  # checkpoint every 5 completed iterations


@pytest.fixture(autouse=True)
def _clean(docker_client: Any) -> Any:  # noqa: F811
    yield
    sweep_leftovers(docker_client)


def test_docker_kill_of_the_master_then_start_resumes_and_stays_gradient_descent(
    docker_client: Any,  # noqa: F811
    hgc_image: str,  # noqa: F811
) -> None:
    from hgc.cluster import reference_trace

    with running_stack(
        SCENARIO,
        hgc_image,
        iterations=ITERATIONS,
        training={"deadline_s": 30.0, "on_failure": "stop"},
        master_overrides={
            "HGC_SAVE_PARAMS": "/out/params.npy",
            "HGC_CHECKPOINT_EVERY": str(EVERY),
        },
    ) as stack:
        ok = lambda: [r for r in stack.records() if r["ok"]]  # noqa: E731
        poll_for(lambda: len(ok()) >= 2 * EVERY + 2, timeout=180, interval=0.2, what="12 its")
        master = stack.container(docker_client, "master")
        master.kill()  # SIGKILL, as `docker kill`: no clean-up, no final checkpoint
        master.reload()
        killed_at = len(ok())
        assert killed_at < ITERATIONS, "the run ended before the kill: nothing was tested"
        assert (stack.workdir / "out" / "checkpoint.npz").is_file()
        master.start()  # the operator's (or a supervisor's) restart of the same container
        code = stack.wait_master_exit(docker_client, timeout=300)
        log = stack.logs("master", tail=400)
        records = stack.records()
        remote = np.load(stack.workdir / "out" / "params.npy")
        config = stack.config
        checkpoint_left = (stack.workdir / "out" / "checkpoint.npz").exists()
    assert code == 0, log
    assert "resuming from checkpoint" in log, log
    # Every iteration exactly once in the record: the resumed master truncated the record to
    # its checkpoint, so the recomputed iterations are not doubled and none is missing.
    assert [r["iteration"] for r in records if r["ok"]] == list(range(ITERATIONS))
    assert not checkpoint_left  # a finished run removes its checkpoint
    local = reference_trace(config, ITERATIONS)[-1]
    np.testing.assert_allclose(remote, local, rtol=1e-9, atol=1e-12)
    with pytest.raises(AssertionError):  # negative control: the check can fail
        np.testing.assert_allclose(remote, local * 1.001, rtol=1e-9, atol=1e-12)
