"""The same stack on a single-node swarm with ``docker stack deploy``: placement by node
label, configs, CPU limits, and training to the end. The swarm is left afterwards (when this
test created it) and the node's labels removed."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from hgc.testbed.records import read_records
from tests.conftest import poll_for
from tests.system.docker_helpers import (  # noqa: F401 (fixtures)
    LABEL,
    PROJECT_PREFIX,
    ROOT,
    docker_client,
    hgc_image,
    prometheus_image,
    run,
    scenario_stack,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(420)]
SCENARIO = ROOT / "scenarios" / "homogeneous.yaml"
LABELS = ["hgc.master=true", "hgc.edge-0=true", "hgc.edge-1=true", "hgc.edge-2=true"]
COMPOSE_ONLY = ("build", "restart", "depends_on", "container_name")


def swarm_state() -> str:
    return run(["docker", "info", "--format", "{{.Swarm.LocalNodeState}}"]).strip()


@pytest.fixture
def single_node_swarm(docker_client: Any) -> Any:  # noqa: F811
    created = swarm_state() != "active"
    if created:
        run(["docker", "swarm", "init", "--advertise-addr", "127.0.0.1"], timeout=120)
    node = run(["docker", "info", "--format", "{{.Swarm.NodeID}}"]).strip()
    label_args = [a for label in LABELS for a in ("--label-add", label)]
    run(["docker", "node", "update", *label_args, node])
    try:
        yield node
    finally:
        if created:
            run(["docker", "swarm", "leave", "--force"], timeout=120, check=False)
            # swarm init made this bridge; leaving does not remove it
            run(["docker", "network", "rm", "docker_gwbridge"], check=False)
        else:
            rm = [a for label in LABELS for a in ("--label-rm", label.split("=")[0])]
            run(["docker", "node", "update", *rm, node], check=False)


def test_stack_deploy_on_a_single_node_swarm_trains(
    single_node_swarm: str,
    hgc_image: str,  # noqa: F811
    prometheus_image: str,  # noqa: F811
) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="hgct-swarm-"))
    name = f"{PROJECT_PREFIX}-{uuid.uuid4().hex[:8]}"
    iterations = 12
    stack, config = scenario_stack(
        SCENARIO,
        workdir,
        hgc_image,
        iterations=iterations,
        compute="off",
        prometheus_image=prometheus_image,
    )
    stack["services"].pop("grafana")  # no registry here to pull it from
    for svc in stack["services"].values():
        for key in COMPOSE_ONLY:
            svc.pop(key, None)
        svc.pop("ports", None)
        svc.setdefault("deploy", {}).setdefault("labels", {})[LABEL] = name
    # Bind mounts in a stack need absolute paths (one node: the record lands here).
    stack["services"]["master"]["volumes"] = [
        {"type": "bind", "source": str(workdir / "out"), "target": "/out"}
    ]
    stack["networks"] = {"hgc": {"driver": "overlay", "labels": {LABEL: name}}}
    file = workdir / "stack.yaml"
    file.write_text(yaml.safe_dump(stack, sort_keys=False))
    (workdir / "master.json").write_text(json.dumps(config))
    record = workdir / "out" / "record.jsonl"

    def ok_rows() -> list[dict[str, Any]]:
        return [r for r in read_records(record) if r["ok"]]

    try:
        run(
            ["docker", "stack", "deploy", "--resolve-image", "never", "-c", str(file), name],
            cwd=workdir,
            timeout=180,
        )
        try:
            poll_for(lambda: len(ok_rows()) >= iterations, timeout=240, interval=1.0,
                     what=f"{iterations} iterations in the swarm")  # fmt: skip
        except TimeoutError:
            logs = subprocess.run(
                ["docker", "service", "logs", "--tail", "40", f"{name}_master"],
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            ps = run(["docker", "stack", "ps", "--no-trunc", name], check=False)
            pytest.fail(f"swarm run incomplete\n{ps}\n{logs.stdout}{logs.stderr}")
        assert [r["iteration"] for r in ok_rows()] == list(range(iterations))
        # Placement and limits were honoured: every node task ran on this (labelled) node,
        # and the workers' CPU limits from the device profile reached the swarm service.
        inspect = json.loads(run(["docker", "service", "inspect", f"{name}_worker-0-0"]))
        limits = inspect[0]["Spec"]["TaskTemplate"]["Resources"]["Limits"]
        assert limits["NanoCPUs"] == 500_000_000  # rpi4 profile: cpu_fraction 0.5
        constraints = inspect[0]["Spec"]["TaskTemplate"]["Placement"]["Constraints"]
        assert constraints == ["node.labels.hgc.edge-0==true"]
    finally:
        run(["docker", "stack", "rm", name], check=False, timeout=120)

        def gone() -> bool:
            out = run(["docker", "network", "ls", "-q", "--filter", f"label={LABEL}={name}"])
            tasks = run(
                ["docker", "ps", "-aq", "--filter", f"label=com.docker.stack.namespace={name}"]
            )
            return not out.strip() and not tasks.strip()

        with contextlib.suppress(TimeoutError):
            poll_for(gone, timeout=90, interval=1.0, what="the stack's containers and network")
        shutil.rmtree(workdir, ignore_errors=True)
