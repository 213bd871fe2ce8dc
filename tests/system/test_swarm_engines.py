"""A Swarm of three real Docker engines on this machine (hgc.testbed.engines: one dockerd per
network namespace, each with its own address, data root and socket): the generated stack is
placed by node label across engines over an overlay network, Prometheus on the manager
scrapes every node on every engine, a worker engine stopped mid-run (one edge group: within
s_e = 1) costs no iteration, and teardown leaves nothing behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from hgc.testbed.engines import EngineSwarm, leftovers
from hgc.testbed.records import read_records
from tests.conftest import poll_for
from tests.system.docker_helpers import (  # noqa: F401 (fixtures)
    LABEL,
    PROJECT_PREFIX,
    ROOT,
    docker_client,
    hgc_image,
    prometheus_image,
    scenario_stack,
    unavailable,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(1200)]
SCENARIO = ROOT / "scenarios" / "homogeneous.yaml"
COMPOSE_ONLY = ("build", "restart", "depends_on", "container_name")
PREFIX = "hgcpit"  # not make swarm-up's hgcpi: the two may coexist
SUBNET = "10.231.1"
BED_ROOT = Path("/var/lib/hgcpit")
ITERATIONS = 120  # ~0.45 s each here: long enough to see every node scraped, then lose one


@pytest.fixture
def testbed(docker_client: Any, hgc_image: str, prometheus_image: str) -> Any:  # noqa: F811
    if os.geteuid() != 0:
        unavailable("the multi-engine swarm needs root (network namespaces, dockerd)")
    for tool in ("nsenter", "dockerd", "ip"):
        if shutil.which(tool) is None:
            unavailable(f"{tool} is not installed")
    EngineSwarm(3, PREFIX, SUBNET, BED_ROOT).down()  # a killed earlier session's leftovers
    bed = EngineSwarm(3, PREFIX, SUBNET, BED_ROOT)
    t0 = time.monotonic()
    # One tar, loaded into the three engines at once (the two images share their base layers).
    bed.up(edges=3, images=[hgc_image, prometheus_image])
    print(f"testbed up with images loaded in {time.monotonic() - t0:.1f} s")
    try:
        yield bed
    finally:
        left = bed.down()
        assert left == [], f"left behind after teardown: {left}"


def _query(bed: EngineSwarm, promql: str) -> list[dict[str, Any]]:
    url = f"http://{bed.manager.address}:9090/api/v1/query?" + urllib.parse.urlencode(
        {"query": promql}
    )
    with urllib.request.urlopen(url, timeout=10) as resp:  # the manager's address: ours
        body = json.loads(resp.read())
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def _up_by_node(bed: EngineSwarm, promql: str) -> dict[str, float]:
    try:
        return {r["metric"]["node"]: float(r["value"][1]) for r in _query(bed, promql)}
    except OSError:
        return {}


def test_three_engine_swarm_runs_across_engines_and_survives_a_lost_engine(
    testbed: EngineSwarm,
    hgc_image: str,  # noqa: F811
    prometheus_image: str,  # noqa: F811
) -> None:
    bed = testbed
    m = bed.manager
    workdir = Path(tempfile.mkdtemp(prefix="hgct-engines-"))
    name = f"{PROJECT_PREFIX}-{uuid.uuid4().hex[:8]}"
    stack, config = scenario_stack(
        SCENARIO,
        workdir,
        hgc_image,
        iterations=ITERATIONS,
        training={"deadline_s": 20.0, "on_failure": "stop"},
        prometheus_image=prometheus_image,
    )
    stack["services"].pop("grafana")  # no registry here to pull it from
    for svc in stack["services"].values():
        for key in COMPOSE_ONLY:
            svc.pop(key, None)
        svc.pop("ports", None)
        svc.setdefault("deploy", {}).setdefault("labels", {})[LABEL] = name
        if "hgc.node" in svc.get("labels", {}):
            # Swarm (unlike compose) kills a task whose HEALTHCHECK fails: the image's 5 s
            # timeout was exceeded by healthy edges on a loaded 2-core machine (load ~40).
            svc["healthcheck"] = {"test": ["CMD", "python", "-m", "services.common.health"],
                                  "interval": "10s", "timeout": "30s", "retries": 6,
                                  "start_period": "60s"}  # fmt: skip
    # Reach Prometheus on the manager engine's own address (host-mode port: no routing mesh).
    stack["services"]["prometheus"]["ports"] = [
        {"target": 9090, "published": 9090, "protocol": "tcp", "mode": "host"}
    ]
    stack["services"]["master"]["volumes"] = [
        {"type": "bind", "source": str(workdir / "out"), "target": "/out"}
    ]
    stack["networks"] = {"hgc": {"driver": "overlay", "labels": {LABEL: name}}}
    file = workdir / "stack.yaml"
    file.write_text(yaml.safe_dump(stack, sort_keys=False))
    (workdir / "master.json").write_text(json.dumps(config))
    record = workdir / "out" / "record.jsonl"
    nodes = [s for s in stack["services"] if s != "prometheus"]
    # engine_labels: edge groups round-robin over engines 1..2 -> edge-1's group alone on 2.
    victim = bed.engines[2]
    lost = {"edge-1", "worker-1-0", "worker-1-1", "worker-1-2"}

    def rows() -> list[dict[str, Any]]:
        return read_records(record)

    def diagnose(what: str) -> str:
        ps = m.docker("stack", "ps", "--no-trunc", name, check=False)
        logs = subprocess.run(
            ["docker", "-H", m.host, "service", "logs", "--tail", "30", f"{name}_master"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        return f"{what}\n{ps}\n{logs.stdout}{logs.stderr}"

    try:
        m.docker("stack", "deploy", "--resolve-image", "never", "-c", str(file), name,
                 timeout=180)  # fmt: skip
        try:
            poll_for(lambda: len([r for r in rows() if r["ok"]]) >= 3, timeout=240,
                     interval=0.5, what="3 iterations on the swarm")  # fmt: skip
            # Every node on every engine scraped by the manager's Prometheus (over overlay).
            poll_for(
                lambda: sorted(n for n, v in _up_by_node(bed, "up").items() if v == 1)
                == sorted(nodes),
                timeout=90, interval=1.0, what="Prometheus scraping every node",
            )  # fmt: skip
        except TimeoutError as exc:
            pytest.fail(diagnose(str(exc)))
        # Placement by label, across the three engines (hostnames = engine namespaces).
        where = {}
        for line in m.docker("stack", "ps", "--format", "{{.Name}} {{.Node}}", name).splitlines():
            task, node = line.split()
            where[task.removeprefix(f"{name}_").rsplit(".", 1)[0]] = node
        assert where["master"] == where["prometheus"] == m.netns
        assert {where[n] for n in lost} == {victim.netns}
        assert {where[n] for n in ("edge-0", "edge-2", "worker-0-0", "worker-2-2")} == {
            bed.engines[1].netns
        }
        done_before = len(rows())
        assert done_before < ITERATIONS, "the run ended before the engine could be stopped"

        victim_pid = victim.pid()  # dockerd removes its pidfile when it stops
        assert victim_pid is not None and Path(f"/proc/{victim_pid}").exists()
        victim_stopped = time.monotonic()
        bed.stop_engine(victim)
        print(f"engine {victim.netns} stopped after {done_before} iterations "
              f"({time.monotonic() - victim_stopped:.1f} s)")  # fmt: skip
        try:
            poll_for(lambda: len(rows()) >= ITERATIONS, timeout=240, interval=1.0,
                     what=f"{ITERATIONS} iterations")  # fmt: skip
        except TimeoutError as exc:
            pytest.fail(diagnose(str(exc)))
        records = rows()
        assert all(r["ok"] for r in records), [r["error"] for r in records if not r["ok"]]
        assert [r["iteration"] for r in records] == list(range(ITERATIONS))
        assert all(r["attempt"] == 0 for r in records)
        # Negative control: the stop took effect — edge-1's group is absent at the end and
        # its engine is gone — while Prometheus had scraped every node before.
        for r in records[-5:]:
            assert "edge-1" not in r["edges_used"]
        assert not Path(f"/proc/{victim_pid}").exists()
        ever = _up_by_node(bed, "max_over_time(up[15m])")
        assert sorted(n for n, v in ever.items() if v == 1) == sorted(nodes)
    finally:
        m.docker("stack", "rm", name, check=False, timeout=120)
        shutil.rmtree(workdir, ignore_errors=True)


def test_teardown_removes_a_half_made_testbed() -> None:
    """``down`` works from names alone: after a crash between steps it still removes all."""
    if os.geteuid() != 0:
        unavailable("needs root (network namespaces)")
    bed = EngineSwarm(2, "hgcpiu", "10.231.2", Path("/var/lib/hgcpiu"))
    bed.down()
    bed.make_network()  # namespaces and interfaces, but no engine yet
    (bed.root / "0").mkdir(parents=True)
    assert leftovers(bed.prefix, bed.root)  # the control: something to remove
    assert bed.down() == []
